"""benchlib.py: what the two mod_usdt benchmarks share.

A bench Apache is a private server on a loopback port, configured the same
way for every variant of a comparison: event MPM with one child process of
16 threads (so the CPU of a run is easy to add up and no child is forked or
reaped in the middle of it), keep-alive, one small static file.  The
variants differ only in the lines the caller adds: the LoadModule of
mod_usdt, or an access log.

Only loopback traffic; only processes started here are stopped, by pid.

Licensed under the Apache License, Version 2.0.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get('srcdir') or os.path.join(HERE, '..'))
BUILDDIR = os.path.abspath(os.environ.get('builddir') or os.path.join(SRCDIR, '_build'))
MODULE = os.path.abspath(os.environ.get('USDT_MODULE')
                         or os.path.join(BUILDDIR, 'src', '.libs', 'mod_usdt.so'))
# a module with no hooks and no configuration (bench/mod_empty.c)
EMPTY_MODULE = os.path.abspath(os.environ.get('USDT_EMPTY_MODULE')
                               or os.path.join(BUILDDIR, 'bench', '.libs', 'mod_empty.so'))
APACHE_BIN = '/usr/sbin/apache2'
APACHE_MODULES = '/usr/lib/apache2/modules'
RUN_USER = 'www-data'
BODY = 'x' * 100 + '\n'     # the static file every request fetches

CONF = """\
ServerRoot {root}
ServerName bench.test
PidFile {root}/httpd.pid
ErrorLog {root}/error.log
LogLevel warn
Listen 127.0.0.1:{port}
User {user}
Group {user}
LoadModule mpm_event_module {moddir}/mod_mpm_event.so
LoadModule authz_core_module {moddir}/mod_authz_core.so
{extra}
# One child of 16 threads for the whole run: nothing forks or exits while
# the CPU time is counted.
StartServers 1
ServerLimit 1
ThreadsPerChild 16
ThreadLimit 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
DocumentRoot {root}/htdocs
<Directory {root}/htdocs>
    Require all granted
</Directory>
"""

WITH_MODULE = 'LoadModule usdt_module {module}'
WITH_EMPTY = 'LoadModule empty_module {empty}'
ACCESS_LOG_D = 'CustomLog {root}/access.log "%h %l %u %t \\"%r\\" %>s %b %D"'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


class Apache:
    """A bench server; `extra` holds the variant's configuration lines, in
    which {root} and {module} are filled in.  With `argv_prefix` (e.g. a
    valgrind command line) it runs single-process (-X) under that."""

    def __init__(self, extra='', argv_prefix=(), single_process=False):
        self.root = tempfile.mkdtemp(prefix='usdt-bench-')
        os.chmod(self.root, 0o755)
        os.mkdir(os.path.join(self.root, 'htdocs'), 0o755)
        with open(os.path.join(self.root, 'htdocs', 'index.html'), 'w') as f:
            f.write(BODY)
        os.chmod(os.path.join(self.root, 'htdocs', 'index.html'), 0o644)
        self.port = free_port()
        extra = extra.format(root=self.root, module=MODULE, empty=EMPTY_MODULE)
        with open(os.path.join(self.root, 'httpd.conf'), 'w') as f:
            f.write(CONF.format(root=self.root, port=self.port, user=RUN_USER,
                                moddir=APACHE_MODULES, extra=extra))
        self.argv = list(argv_prefix) + [APACHE_BIN, '-f', os.path.join(self.root, 'httpd.conf'),
                                         '-DFOREGROUND'] + (['-X'] if single_process else [])
        self.proc = None

    def start(self, timeout=60):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.root, 'stdout.log'), 'w'),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(lambda: self.proc.poll() is not None or self._answers(), timeout, 0.1):
            self.stop()
            raise RuntimeError('apache did not answer in %ss: %s' % (timeout, self.log()))
        if self.proc.poll() is not None:
            raise RuntimeError('apache exited: %s' % self.log())
        return self

    def _answers(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1):
                return True
        except OSError:
            return False

    def log(self):
        out = []
        for name in ('stdout.log', 'error.log'):
            try:
                with open(os.path.join(self.root, name)) as f:
                    out.append(f.read()[-2000:])
            except OSError:
                pass
        return '\n'.join(out)

    def pids(self):
        """The parent and its children (the server's processes)."""
        pids = [self.proc.pid]
        try:
            with open('/proc/%d/task/%d/children' % (self.proc.pid, self.proc.pid)) as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def url(self, path='/index.html'):
        return 'http://127.0.0.1:%d%s' % (self.port, path)

    def stop(self, timeout=60):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def cpu_ns(pids):
    """On-CPU time, in ns, of every thread of the given processes, from
    /proc/PID/task/TID/schedstat: exact (not 10 ms ticks), and it includes
    the kernel time a thread spends in uprobe handlers and BPF programs."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir('/proc/%d/task' % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open('/proc/%d/task/%s/schedstat' % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return float('nan')
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def need(cmd, package):
    if not shutil.which(cmd):
        sys.exit('bench: %s not found: apt-get install %s' % (cmd, package))
