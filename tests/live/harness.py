#!/usr/bin/python3
"""harness.py: the parts the live tests share.

A live test runs a real Apache on a loopback port with a private
configuration and the built module loaded, attaches a real bpftrace to the
module's path, sends real requests, and then judges what the probes reported.

  Apache    a private server: temp ServerRoot, config, document root, logs
  Tracer    bpftrace running one of the .bt programs beside the tests
  Http1     an HTTP/1.1 client on a raw socket (keep-alive, exact bytes)
  curl(), nghttp()
            the command-line clients, for IPv6 and HTTP/2 (h2c)
  Tap       TAP output: plan, ok / not ok, diagnostics, skips

Each test file is an executable that prints TAP and exits 1 if a check
failed, 0 otherwise (skips included):

  USDT_MODULE=$PWD/src/.libs/mod_usdt.so srcdir=$PWD tests/live/test_request_done.py
  prove --exec '' tests/live/test_*.py          # all of them, with a summary

Environment: USDT_MODULE is the module to load (default
$srcdir/src/.libs/mod_usdt.so), srcdir the top of the source tree (default:
two levels up from this file), CI=true turns every skip into a failure,
KEEP_TMP=1 keeps each server's temp dir (config, logs) for a post-mortem.
Only the Python standard library is used.

Licensed under the Apache License, Version 2.0.
"""

import ctypes
import fnmatch
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get('srcdir') or os.path.join(HERE, '..', '..'))
MODULE = os.path.abspath(os.environ.get('USDT_MODULE')
                         or os.path.join(SRCDIR, 'src', '.libs', 'mod_usdt.so'))
APACHE_BIN = '/usr/sbin/apache2'
APACHE_MODULES = '/usr/lib/apache2/modules'
RUN_USER = 'www-data'
SERVER_NAME = 'usdt.test'
IN_CI = os.environ.get('CI') == 'true'


def log(*args):
    """A TAP diagnostic line (stdout, so it stays in order with the results)."""
    for line in ' '.join(str(a) for a in args).splitlines() or ['']:
        print('# ' + line)
    sys.stdout.flush()


def wait_until(pred, timeout, interval=0.05):
    """Poll pred() until it is true or timeout seconds have passed; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------------------
# What a live test needs

def missing(needs):
    """Why this machine cannot run a test that needs `needs`, or None.

    needs is a subset of {'root', 'bpftrace', 'module', 'apache', 'nghttp', 'curl',
    'perf', 'bcc', 'tmux', 'openssl'}.
    """
    if 'root' in needs and os.geteuid() != 0:
        return 'not root (live tracing needs root)'
    if 'bpftrace' in needs and not shutil.which('bpftrace'):
        return 'no bpftrace in PATH'
    if 'apache' in needs and not os.access(APACHE_BIN, os.X_OK):
        return 'no %s (apache2-bin)' % APACHE_BIN
    if 'module' in needs and not os.path.isfile(MODULE):
        return 'module not built: %s' % MODULE
    if 'nghttp' in needs and not shutil.which('nghttp'):
        return 'no nghttp (nghttp2-client)'
    if 'curl' in needs and not shutil.which('curl'):
        return 'no curl'
    if 'perf' in needs and not shutil.which('perf'):
        return 'no perf (linux-perf)'
    if 'bcc' in needs and not shutil.which('trace-bpfcc'):
        return 'no trace-bpfcc (bpfcc-tools)'
    if 'tmux' in needs and not shutil.which('tmux'):
        return 'no tmux'
    if 'openssl' in needs and not shutil.which('openssl'):
        return 'no openssl (to make a test certificate)'
    return None


LIVE = ('root', 'bpftrace', 'apache', 'module', 'curl', 'nghttp')


# ---------------------------------------------------------------------------
# TAP

class Failure(Exception):
    """A check failed; the message becomes the diagnostic."""


class Skip(Exception):
    """A check cannot run here; the message is the reason."""


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def expect_eq(got, want, what):
    if got != want:
        raise Failure('%s: got %r, want %r' % (what, got, want))


class Tap:
    """One test file: named checks run in order over data that setup() gathers.

        t = Tap()
        @t.check('name')
        def _(d): expect(...)
        t.run(setup, needs=LIVE)

    setup() does all the live work (server, tracer, traffic) and returns what
    the checks judge.  If setup fails, every check fails with its traceback;
    if the machine lacks what the file needs, every check is skipped with a
    one-line reason, or fails when CI=true.
    """

    def __init__(self):
        self.checks = []
        self.failed = 0
        self.n = 0

    def check(self, name):
        def deco(fn):
            self.checks.append((name, fn))
            return fn
        return deco

    def _line(self, ok, name, directive=None, diag=None):
        self.n += 1
        if not ok:
            self.failed += 1
        out = '%s %d - %s' % ('ok' if ok else 'not ok', self.n, name)
        if directive:
            out += ' # ' + directive
        print(out)
        if diag:
            log(diag)
        sys.stdout.flush()

    def run(self, setup, needs=LIVE, live=True):
        """live=False for a test that reads files only (a static test):
        USDT_LIVE_TESTS=no does not turn it off."""
        # a test killed with SIGTERM (make's timeout, CI) unwinds its with
        # blocks, so its server and tracer are stopped
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        print('1..%d' % len(self.checks))
        sys.stdout.flush()
        why = missing(needs)
        if live and os.environ.get('USDT_LIVE_TESTS') == 'no':
            # An explicit opt-out (tests/run.sh's distcheck, after the live
            # tests already ran on the same sources): a skip even in CI.
            for name, _ in self.checks:
                self._line(True, name, 'SKIP live tests turned off (USDT_LIVE_TESTS=no)')
            sys.exit(0)
        if why:
            for name, _ in self.checks:
                if IN_CI:
                    self._line(False, name, diag='%s (CI=true: live tests must not skip)' % why)
                else:
                    self._line(True, name, 'SKIP ' + why)
            sys.exit(1 if self.failed else 0)
        try:
            data = setup()
        except Exception:
            tb = traceback.format_exc()
            for i, (name, _) in enumerate(self.checks):
                self._line(False, name, diag=('setup failed:\n' + tb) if i == 0
                           else 'setup failed (see test 1)')
            sys.exit(1)
        for name, fn in self.checks:
            try:
                fn(data)
            except Skip as e:
                self._line(True, name, 'SKIP %s' % e)
            except Failure as e:
                self._line(False, name, diag=str(e))
            except Exception:
                self._line(False, name, diag=traceback.format_exc())
            else:
                self._line(True, name)
        sys.exit(1 if self.failed else 0)


# ---------------------------------------------------------------------------
# Apache

def free_port():
    """A TCP port free on both 127.0.0.1 and ::1 (bound to port 0, then released)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(('::1', port))
        except OSError:
            continue
        return port
    raise RuntimeError('no free port on both 127.0.0.1 and ::1')


DOCS = {
    'index.html': '<html><body>top</body></html>\n',
    'static.txt': 'static file for mod_usdt live tests\n',
    'dir/index.html': '<html><body>directory index</body></html>\n',
    'errors/404.html': '<html><body>not here</body></html>\n',
}

CONF = """\
# mod_usdt live test server: generated by tests/live/harness.py
ServerRoot "{root}"
ServerName {server_name}
PidFile "{root}/run/httpd.pid"
DefaultRuntimeDir "{root}/run"
Mutex file:{root}/run default
ErrorLog "{root}/logs/error.log"
LogLevel {loglevel}
CoreDumpDirectory "{root}/cores"
User {user}
Group {group}
Listen 127.0.0.1:{port}
Listen [::1]:{port}

LoadModule mpm_{mpm}_module {moddir}/mod_mpm_{mpm}.so
LoadModule authz_core_module {moddir}/mod_authz_core.so
LoadModule mime_module {moddir}/mod_mime.so
LoadModule dir_module {moddir}/mod_dir.so
LoadModule rewrite_module {moddir}/mod_rewrite.so
LoadModule reqtimeout_module {moddir}/mod_reqtimeout.so
LoadModule http2_module {moddir}/mod_http2.so
LoadModule usdt_module {module}

StartServers {start_servers}
{mpm_conf}
Timeout 10
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 10
RequestReadTimeout header=2 body=5
Protocols h2c http/1.1
H2Direct on

TypesConfig /etc/mime.types
LogFormat "%>s %m %U%q %B" usdt
CustomLog "{root}/logs/access.log" usdt

DocumentRoot "{root}/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{root}/htdocs">
    Options FollowSymLinks
    Require all granted
    # per-directory rewrites are internal redirects: /old serves static.txt,
    # /gone goes to a missing page (original status 200, final 404)
    RewriteEngine On
    RewriteRule ^old$ /static.txt [L]
    RewriteRule ^gone$ /nowhere [L]
</Directory>
DirectoryIndex index.html
ErrorDocument 404 /errors/404.html
{extra}
"""

MPM_CONF = {
    'event': 'ServerLimit 4\nThreadsPerChild 8\nMaxRequestWorkers 32\n'
             'MinSpareThreads 8\nMaxSpareThreads 32',
    'worker': 'ServerLimit 4\nThreadsPerChild 8\nMaxRequestWorkers 32\n'
              'MinSpareThreads 8\nMaxSpareThreads 32',
    'prefork': 'ServerLimit 8\nMaxRequestWorkers 8\nMinSpareServers 3\nMaxSpareServers 8',
}


class Apache:
    """A private Apache on 127.0.0.1:PORT and [::1]:PORT with the module loaded.

    with Apache() as httpd: ...   starts it, and stops it (only the process it
    started) on the way out.  The temp dir is removed unless KEEP_TMP is set.
    """

    def __init__(self, mpm='event', start_servers=2, extra='', loglevel='info'):
        self.mpm = mpm
        self.start_servers = start_servers
        self.root = tempfile.mkdtemp(prefix='usdt-live-')
        os.chmod(self.root, 0o755)      # children run as www-data
        self.port = free_port()
        for sub in ('run', 'logs', 'htdocs'):
            os.mkdir(os.path.join(self.root, sub))
            os.chmod(os.path.join(self.root, sub), 0o755)
        # a child that crashes leaves its core here (see crash_report())
        os.mkdir(os.path.join(self.root, 'cores'), 0o700)
        pw = pwd.getpwnam(RUN_USER) if os.geteuid() == 0 else None
        if pw:
            os.chown(os.path.join(self.root, 'cores'), pw.pw_uid, pw.pw_gid)
        self.docroot = os.path.join(self.root, 'htdocs')
        for rel, text in DOCS.items():
            path = os.path.join(self.docroot, rel)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, 0o644)
        self.conf = os.path.join(self.root, 'httpd.conf')
        with open(self.conf, 'w') as f:
            f.write(CONF.format(root=self.root, server_name=SERVER_NAME, port=self.port,
                                mpm=mpm, mpm_conf=MPM_CONF[mpm], moddir=APACHE_MODULES,
                                module=MODULE, user=RUN_USER, group=RUN_USER,
                                start_servers=start_servers,
                                extra=extra.replace('{root}', self.root),
                                loglevel=loglevel))
        self.proc = None
        self.pidfile = os.path.join(self.root, 'run', 'httpd.pid')

    def path(self, *rel):
        return os.path.join(self.root, *rel)

    def start(self, timeout=10):
        out = open(self.path('logs', 'stdout.log'), 'w')
        check = subprocess.run([APACHE_BIN, '-t', '-f', self.conf], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError('apache2 -t failed:\n' + check.stdout)
        self.proc = subprocess.Popen([APACHE_BIN, '-f', self.conf, '-DFOREGROUND'],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'},
                                     # prefork signals its whole process group on
                                     # shutdown: give it a group of its own
                                     start_new_session=True, preexec_fn=_server_preexec)
        out.close()
        ok = wait_until(lambda: self.proc.poll() is not None
                        or (self._answers(socket.AF_INET, '127.0.0.1')
                            and self._answers(socket.AF_INET6, '::1')), timeout, 0.1)
        if self.proc.poll() is not None:
            raise RuntimeError('apache2 exited with %s:\n%s\n%s' % (
                self.proc.returncode, self.read('logs', 'stdout.log'), self.errors()))
        if not ok:
            self.stop()
            raise RuntimeError('apache2 did not answer on port %d within %ss:\n%s'
                               % (self.port, timeout, self.errors()))
        # every child of StartServers forked: the tests read their memory
        wait_until(lambda: len(self.children()) >= self.expected_children(), timeout, 0.1)
        return self

    def expected_children(self):
        return self.start_servers

    def _answers(self, family, host):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect((host, self.port))
            return True
        except OSError:
            return False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def children(self):
        """Pids of the parent's child processes (the server processes)."""
        if not self.proc:
            return []
        kids = []
        for ent in os.listdir('/proc'):
            if not ent.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % ent) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(')') + 2:].split()
            if int(fields[1]) == self.proc.pid and fields[0] != 'Z':
                kids.append(int(ent))
        return sorted(kids)

    def graceful(self, timeout=10):
        """Graceful restart (SIGUSR1 to our parent); wait for a new generation of children."""
        old = set(self.children())
        os.kill(self.proc.pid, signal.SIGUSR1)
        ok = wait_until(lambda: len(set(self.children()) - old) >= self.expected_children()
                        and self._answers(socket.AF_INET, '127.0.0.1'), timeout, 0.1)
        if not ok:
            raise RuntimeError('no new children %ss after a graceful restart:\n%s'
                               % (timeout, self.errors()))
        return sorted(set(self.children()) - old)

    def stop(self, timeout=10):
        """SIGTERM to the parent we started, then wait; SIGKILL it only if it hangs."""
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            with open(self.pidfile) as f:
                filepid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            filepid = None
        if filepid not in (None, self.proc.pid):
            log('PidFile says %s, we started %s: signalling ours' % (filepid, self.proc.pid))
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log('apache2 %d ignored SIGTERM for %ss: SIGKILL' % (self.proc.pid, timeout))
            self.proc.kill()
            self.proc.wait(5)

    def cores(self):
        d = self.path('cores')
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except OSError:
            return []

    def crash_report(self, limit=3):
        """What the cores in cores/ say: for each (at most limit), gdb's
        backtrace of the crashed thread, the libraries and every thread's
        innermost frames, or why there is none.  Empty if no core."""
        cores = self.cores()
        out = []
        for core in cores[:limit]:
            if not shutil.which('gdb'):
                out.append('%s: %d bytes (no gdb to read it)' % (core, os.path.getsize(core)))
                continue
            try:
                bt = subprocess.run(['gdb', '-q', '-batch', '-nx', '-ex', 'bt 40',
                                     '-ex', 'info sharedlibrary', '-ex', 'thread apply all bt 8',
                                     APACHE_BIN, core],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    universal_newlines=True, errors='replace', timeout=120).stdout
            except subprocess.TimeoutExpired:
                bt = '(gdb timed out)'
            lines = [l for l in bt.splitlines() if not l.startswith(('[New LWP', 'warning:'))]
            out.append('== %s (the crashed thread first, then every thread)\n%s'
                       % (core, '\n'.join(lines[:600])))
        with open('/proc/sys/kernel/core_pattern') as f:
            pattern = f.read().strip()
        if not cores and pattern.startswith('|'):
            out.append('(no core here: kernel.core_pattern pipes cores to %s)' % pattern)
        return '\n'.join(out)

    def read(self, *rel):
        try:
            with open(self.path(*rel), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def errors(self):
        return self.read('logs', 'error.log')

    def client_access_log(self):
        """access_log() less Apache's internal dummy connections (OPTIONS *)."""
        return [row for row in self.access_log() if row[1:3] != ('OPTIONS', '*')]

    def access_log(self):
        """The CustomLog lines, as (status, method, uri, bytes sent) tuples
        (format "%>s %m %U%q %B"; status and bytes as ints where they are numbers)."""
        rows = []
        for line in self.read('logs', 'access.log').splitlines():
            status, _, rest = line.partition(' ')
            method, _, rest = rest.partition(' ')
            uri, _, sent = rest.rpartition(' ')
            rows.append((int(status) if status.isdigit() else status, method, uri,
                         int(sent) if sent.isdigit() else sent))
        return rows

    def url(self, path='/', host='127.0.0.1'):
        if ':' in host:
            host = '[%s]' % host
        return 'http://%s:%d%s' % (host, self.port, path)

    def __enter__(self):
        try:
            return self.start()
        except Exception:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.cleanup()
        return False

    def cleanup(self):
        if os.environ.get('KEEP_TMP'):
            log('kept', self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------------------
# bpftrace

NUMERIC = {'id', 'status', 'elapsed', 'lport', 'rport', 'ipversion', 'pid', 'tid',
           'bytes_sent', 'bytes_received', 'r_id', 'r_status', 'r_elapsed', 't',
           'conn_id', 'conn_request', 'flags', 'status_first', 'handler_us', 'first_byte_us',
           'last_byte_us', 'requests', 'generation', 'backend_us', 'r_conn_id', 'r_requests',
           'r_elapsed_us', 'r_backend_us', 'r_ptr_size', 'ptr_size', 'r_flags'}


def _die_with_us(sig=signal.SIGTERM):
    """In a child before exec: get `sig` when the test process dies, so that no
    server or tracer outlives a test that was killed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)        # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _unlimited(limit):
    try:
        resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def _server_preexec():
    """Apache's: die with us, and leave a core where CoreDumpDirectory says."""
    _die_with_us()
    _unlimited(resource.RLIMIT_CORE)


def _tracer_preexec():
    _die_with_us()
    _unlimited(resource.RLIMIT_MEMLOCK)


class Tracer:
    """bpftrace running a .bt program from this directory against MODULE.

    The program names the module as @MODULE@, replaced here with its absolute
    path, and includes "dthttpd.h" from $srcdir/src.  Its output lines are

        <probe> <id> <t> key=value[<TAB>key=value...]

    with <probe> S (request-start) or D (request-done), <t> the event's nsecs
    (shared by all lines of one event), fields separated by tabs;
    parse_events() joins them and ignores other lines (.lines has them all).
    The program's BEGIN prints "READY".  bpftrace 0.17 runs BEGIN before it
    attaches the USDT probes, so start() also waits until the kernel has
    bpftrace's programs attached to every probe the program names: only then
    is tracing on and a request sure to be seen.
    """

    def __init__(self, bt, strlen=200, attach_timeout=60):
        self.bt = bt if os.path.isabs(bt) else os.path.join(HERE, bt)
        self.strlen = strlen
        self.attach_timeout = attach_timeout
        self.proc = None
        self.lines = []
        self.errlines = []
        self.lock = threading.Lock()
        self.tmp = None

    def start(self):
        with open(self.bt) as f:
            text = f.read().replace('@MODULE@', MODULE)
        self.tmp = tempfile.NamedTemporaryFile('w', prefix='usdt-', suffix='.bt', delete=False)
        self.tmp.write(text)
        self.tmp.close()
        env = dict(os.environ, BPFTRACE_STRLEN=str(self.strlen))
        probes = probes_used(text)
        self.proc = subprocess.Popen(
            ['bpftrace', '-B', 'line', '-I', os.path.join(SRCDIR, 'src'), self.tmp.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            universal_newlines=True, errors='replace', env=env, preexec_fn=_tracer_preexec)
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines)),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.errlines))]
        for th in self._readers:
            th.daemon = True
            th.start()
        # "Attaching N probes..." then the program's BEGIN line "READY"
        ok = wait_until(lambda: self.proc.poll() is not None or 'READY' in self.snapshot(),
                        self.attach_timeout, 0.05)
        self._unlink_program()          # read by now; nothing left behind if we are killed
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError('bpftrace did not attach within %ss (exit %s):\n%s\n%s' % (
                self.attach_timeout, self.proc.returncode,
                '\n'.join(self.lines), self.stderr()))
        if not wait_attached(self.proc.pid, probes, self.attach_timeout):
            self.stop()
            raise RuntimeError('bpftrace printed READY, but had not attached to %s within '
                               '%ss: it has %r' % (probes, self.attach_timeout,
                                                   uprobes_of(self.proc.pid)))
        return self

    def _pump(self, stream, into):
        for line in stream:
            with self.lock:
                into.append(line.rstrip('\n'))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def stderr(self):
        """bpftrace's stderr, less the harmless RLIMIT_MEMLOCK complaint."""
        with self.lock:
            return '\n'.join(l for l in self.errlines if 'RLIMIT_MEMLOCK' not in l)

    def events(self):
        return parse_events(self.snapshot())

    def wait_for(self, pred, timeout=10):
        """Wait until pred(events) is true (bounded); return the events."""
        last = []

        def probe():
            last[:] = [self.events()]
            return pred(last[0])
        wait_until(probe, timeout, 0.1)
        return last[0]

    def stop(self, timeout=15):
        """SIGINT to our bpftrace, wait for it to print what it has and exit.

        bpftrace 0.17 leaves its poll loop only when epoll_wait() fails with
        EINTR: a SIGINT that arrives while it is printing events sets its exit
        flag and is then ignored (seen here after bursts of traffic).  So the
        signal is repeated every 2 s; SIGKILL only if it still runs after
        timeout."""
        if self.proc and self.proc.poll() is None:
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(min(2, max(0.1, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                log('bpftrace %d ignored SIGINT for %ss: SIGKILL' % (self.proc.pid, timeout))
                self.proc.kill()
                self.proc.wait(5)
        for th in getattr(self, '_readers', []):
            th.join(5)
        self._unlink_program()
        return self.events()

    def _unlink_program(self):
        if self.tmp:
            try:
                os.unlink(self.tmp.name)
            except OSError:
                pass
            self.tmp = None

    def lost(self):
        """bpftrace's own report of lost events, if any."""
        return [l for l in self.snapshot() + self.errlines if re.search(r'[Ll]ost \d+ events', l)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# The first word of a tracer's line: which probe the event is from.  <id>
# is the request id, or the connection id (C, E), or the pid (K, X).
PROBE_LETTERS = {'S': 'start', 'D': 'done', 'H': 'request-header', 'R': 'handler',
                 'P': 'proxy-start', 'Q': 'proxy-done', 'O': 'response-header',
                 'C': 'conn-start', 'E': 'conn-done', 'K': 'child-start', 'X': 'child-done'}


def parse_events(lines):
    """Join a tracer's lines into events: one dict per (probe, id, t), in time order."""
    events = {}
    for line in lines:
        head = line.split('\t', 1)
        words = head[0].split(' ')
        if len(words) != 3 or words[0] not in PROBE_LETTERS:
            continue
        try:
            key = (words[0], int(words[1]), int(words[2]))
        except ValueError:
            continue
        ev = events.setdefault(key, {'probe': PROBE_LETTERS[words[0]],
                                     'id': key[1], 't': key[2]})
        for field in (head[1].split('\t') if len(head) > 1 else []):
            k, _, v = field.partition('=')
            if k in NUMERIC or k.startswith('p_'):
                try:
                    v = int(v)
                except ValueError:
                    pass
            ev[k] = v
    return sorted(events.values(), key=lambda e: e['t'])


def is_dummy(ev):
    """Apache's internal dummy connection (OPTIONS * from the parent)."""
    return ev.get('method') == 'OPTIONS' and ev.get('uri') == '*'


def client_events(events):
    return [e for e in events if not is_dummy(e)]


def starts(events):
    return [e for e in events if e['probe'] == 'start']


def dones(events):
    return [e for e in events if e['probe'] == 'done']


def settled(events, n):
    """At least n client request-dones, and every client start has its done:
    what a test waits for (bounded) before it stops the tracer, because
    log_transaction may run after the client has read the response."""
    evs = client_events(events)
    return (len(dones(evs)) >= n
            and {e['id'] for e in starts(evs)} <= {e['id'] for e in dones(evs)})


def fmt(ev):
    keys = [k for k in ('probe', 'id', 'status', 'method', 'uri', 'protocol', 'raddr', 'rport',
                        'lport', 'elapsed', 'agent', 'pid') if k in ev]
    return ' '.join('%s=%r' % (k, ev[k]) for k in keys)


def fmt_all(events, limit=40):
    out = [fmt(e) for e in events[:limit]]
    if len(events) > limit:
        out.append('... %d more' % (len(events) - limit))
    return '\n'.join(out)


# ---------------------------------------------------------------------------
# Clients

class Response:
    def __init__(self, status, headers, body, raw_head):
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def __repr__(self):
        return '<Response %s %d bytes>' % (self.status, len(self.body))


class Http1:
    """HTTP/1.1 on one raw TCP connection: exact bytes, keep-alive, its own port.

        with Http1(port, '::1') as c:
            c.local_port; r = c.get('/x', agent='t'); c.send(b'GARBAGE\\r\\n\\r\\n')
    """

    def __init__(self, port, host='127.0.0.1', timeout=10):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.local_port = self.sock.getsockname()[1]
        self.local_addr = self.sock.getsockname()[0]
        self.buf = b''

    def send(self, data):
        self.sock.sendall(data)

    def wait_read(self, timeout=5):
        """Wait (bounded) until the server has read all that was sent: in
        /proc/net/tcp{,6}, this end has nothing unacknowledged and the
        server's end an empty receive queue.  True if so in time."""
        peer = self.sock.getpeername()[1]

        def drained():
            ends = {}
            for local, remote, _, tx, rx in tcp_sockets():
                if (local, remote) == (self.local_port, peer):
                    ends['client'] = tx
                elif (local, remote) == (peer, self.local_port):
                    ends['server'] = rx
            return ends.get('client') == 0 and ends.get('server') == 0
        return bool(wait_until(drained, timeout, 0.005))

    def request(self, method, target, agent=None, host='localhost', headers=(), body=b''):
        lines = ['%s %s HTTP/1.1' % (method, target), 'Host: %s' % host]
        if agent is not None:
            lines.append('User-Agent: %s' % agent)
        lines.extend(headers)
        if body:
            lines.append('Content-Length: %d' % len(body))
        self.send(('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body)
        return self.response(head_only=(method == 'HEAD'))

    def get(self, target, **kw):
        return self.request('GET', target, **kw)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError('connection closed by server')
        self.buf += chunk

    def _readline(self):
        while b'\r\n' not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _readn(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_only=False):
        """Read one response (Content-Length, chunked, or to close)."""
        while b'\r\n\r\n' not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split(' ')[1])
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(':')
            headers[k.strip().lower()] = v.strip()
        body = b''
        if head_only or status in (204, 304) or 100 <= status < 200:
            pass
        elif headers.get('transfer-encoding', '').lower() == 'chunked':
            while True:
                size = int(self._readline().split(b';')[0], 16)
                if size == 0:
                    while self._readline():
                        pass
                    break
                body += self._readn(size)
                self._readn(2)
        elif 'content-length' in headers:
            body = self._readn(int(headers['content-length']))
        else:
            body = self.read_to_close()
        return Response(status, headers, body, head)

    def read_to_close(self):
        """Everything until the server closes the connection (bounded by the socket timeout)."""
        data = self.buf
        self.buf = b''
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        return data

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def tcp_sockets():
    """Every TCP socket of /proc/net/tcp and tcp6: (local port, remote port,
    state as its two hex digits, send queue, receive queue)."""
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                local, remote, state, queues = row.split()[1:5]
                tx, rx = (int(q, 16) for q in queues.split(':'))
                yield (int(local.rsplit(':', 1)[1], 16), int(remote.rsplit(':', 1)[1], 16),
                       state, tx, rx)


def wait_closed(ports, timeout=10):
    """Wait (bounded) until no connection to these local ports is open on
    the server's side (none ESTABLISHED, SYN_RECV or CLOSE_WAIT; LISTEN and
    TIME_WAIT are not connections Apache holds).  True if so in time."""
    open_states = {'01', '03', '08'}
    return bool(wait_until(lambda: not any(state in open_states and local in ports
                                           for local, _, state, _, _ in tcp_sockets()),
                           timeout, 0.02))


def curl(url, *args, timeout=10):
    """curl a URL; return (status, local_port) from curl's own report."""
    cmd = ['curl', '-sS', '-g', '-o', '/dev/null', '--max-time', str(timeout),
           '-w', '%{http_code} %{local_port}\\n'] + list(args) + [url]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout + 5)
    if p.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(cmd), p.returncode, p.stderr))
    code, port = p.stdout.split()
    return int(code), int(port)


def nghttp(urls, *args, timeout=10):
    """nghttp (h2c with prior knowledge for http:// URLs, one connection, a stream
    per URL); return the :status of each stream from its verbose output."""
    cmd = ['nghttp', '-nv', '-t', str(timeout)] + list(args) + list(urls)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout + 5)
    if p.returncode != 0:
        raise RuntimeError('%s: exit %d:\n%s' % (' '.join(cmd), p.returncode, p.stdout))
    return [int(s) for s in re.findall(r'recv \(stream_id=\d+\) :status: (\d+)', p.stdout)], p.stdout


# ---------------------------------------------------------------------------
# Probe notes, semaphores (read from a live process) and a tracer's uprobes

SDT_NOTES_AWK = os.path.join(SRCDIR, 'tests', 'sdt_notes.awk')


def probe_notes(path):
    """[{'provider', 'name', 'location', 'base', 'semaphore', 'args'}] of the
    SDT notes of path (of any architecture), from `readelf -n` read by
    tests/sdt_notes.awk, the parser the shell tests use too; addresses are
    link-time ones, args the operands as written ('-4@[sp, 32]')."""
    out = subprocess.run(['readelf', '-n', path], stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=30, check=True).stdout
    parsed = subprocess.run(['awk', '-f', SDT_NOTES_AWK], input=out, stdout=subprocess.PIPE,
                            universal_newlines=True, timeout=30, check=True).stdout
    notes = []
    for line in parsed.splitlines():
        f = line.split('\t')
        notes.append({'provider': f[0], 'name': f[1], 'location': int(f[2], 16),
                      'base': int(f[3], 16), 'semaphore': int(f[4], 16), 'args': f[6:]})
        if int(f[5]) != len(notes[-1]['args']):
            raise RuntimeError('sdt_notes.awk: %d arguments, %d fields: %r'
                               % (int(f[5]), len(f) - 6, line))
    return notes


def arg_sizes(note):
    """The sizes of a note's arguments as <sys/sdt.h> wrote them before the
    '@' (negative: signed), as strings: ['8', '-4', '8', ...]."""
    return [a.split('@', 1)[0] for a in note['args']]


def stapsdt_notes(path):
    """[(provider, name, semaphore vaddr)] from `readelf -n`."""
    return [(n['provider'], n['name'], n['semaphore']) for n in probe_notes(path)]


def probes_used(program, module=None):
    """The httpd probes of module (default MODULE) a bpftrace program
    attaches to (names as in the ELF notes, request__start), from its
    usdt:...:httpd:NAME lines; a wildcard name stands for every probe it
    matches."""
    module = module or MODULE
    names = [n['name'] for n in probe_notes(module) if n['provider'] == 'httpd']
    used = set()
    for pat in re.findall(r'^\s*usdt:[^\n]*:httpd:([\w*?]+)', program, re.M):
        used.update(fnmatch.filter(names, pat))
    if not used:
        raise RuntimeError('the program attaches to none of the httpd probes of %s: %r'
                           % (module, names))
    return sorted(used)


# bpf(2) is called through libc's syscall(): its number per machine
_NR_BPF = {'x86_64': 321, 'aarch64': 280, 'riscv64': 280, 'i386': 357, 'i686': 357,
           'armv7l': 386, 'ppc64le': 361, 's390x': 351}
_BPF_TASK_FD_QUERY = 20
_BPF_FD_TYPE_UPROBE = 4
_TASK_FD_QUERY = '=IIIIQIIQQ'   # pid fd flags buf_len buf prog_id fd_type offset addr


def uprobes_of(pid):
    """{(realpath, file offset)} of the uprobes that process pid has a BPF
    program attached to: for each of its fds, bpf(BPF_TASK_FD_QUERY), what
    `bpftool perf` shows.  Only a program attached to the perf event counts,
    so a probe is in this set exactly when the tracer sees its events."""
    libc = ctypes.CDLL(None, use_errno=True)
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise RuntimeError('no bpf(2) syscall number known for %s' % platform.machine())
    found = set()
    try:
        fds = [int(fd) for fd in os.listdir('/proc/%d/fd' % pid)]
    except OSError:
        return found
    buf = ctypes.create_string_buffer(4096)
    for fd in fds:
        attr = ctypes.create_string_buffer(struct.pack(
            _TASK_FD_QUERY, pid, fd, 0, len(buf), ctypes.addressof(buf), 0, 0, 0, 0))
        if libc.syscall(nr, _BPF_TASK_FD_QUERY, attr, struct.calcsize(_TASK_FD_QUERY)) != 0:
            continue            # not a perf event with a BPF program
        fields = struct.unpack(_TASK_FD_QUERY, attr.raw[:struct.calcsize(_TASK_FD_QUERY)])
        if fields[6] == _BPF_FD_TYPE_UPROBE:
            found.add((os.path.realpath(buf.value.decode(errors='replace')), fields[7]))
    return found


def wait_attached(pid, probes, timeout, module=None):
    """Wait (bounded) until tracer pid has its programs attached to each of
    probes in module (default MODULE).  bpftrace 0.17 runs BEGIN before it
    attaches the USDT probes, and a semaphore tells only that some tracer
    enabled a probe, not that this one did: so ask the kernel what this
    tracer has attached."""
    module = module or MODULE
    where = dict((n['name'], file_offset(module, n['location']))
                 for n in probe_notes(module) if n['provider'] == 'httpd')
    want = set((os.path.realpath(module), where[name]) for name in probes)
    return wait_until(lambda: want <= uprobes_of(pid), timeout, 0.02)


# What a probe site holds, per ELF machine (e_machine): the nop that
# <sys/sdt.h> puts there, and what the kernel writes over it while a uprobe
# is on it (arch/*/include/asm/uprobes.h, probes.h).
SITE_BYTES = {
    3: ('i386', b'\x90', b'\xcc'),                              # nop; int3
    62: ('x86-64', b'\x90', b'\xcc'),                           # nop; int3
    183: ('arm64', b'\x1f\x20\x03\xd5', b'\xa0\x00\x20\xd4'),     # nop; brk #5 (BRK64_OPCODE_UPROBES)
}


def elf_machine(path):
    """e_machine of an ELF file (3 i386, 62 x86-64, 183 arm64, ...)."""
    with open(path, 'rb') as f:
        ident = f.read(20)
    if len(ident) < 20 or ident[:4] != b'\x7fELF':
        raise RuntimeError('%s is not an ELF file' % path)
    return int.from_bytes(ident[18:20], 'little' if ident[5] == 1 else 'big')


def site_bytes(path):
    """(architecture, nop, uprobe's breakpoint) of the probe sites of path."""
    machine = elf_machine(path)
    if machine not in SITE_BYTES:
        raise RuntimeError('%s: no probe-site bytes known for ELF machine %d: add its nop and '
                           'uprobe breakpoint to harness.SITE_BYTES' % (path, machine))
    return SITE_BYTES[machine]


def site_state(path, data):
    """'nop' or 'trap' for the bytes read at a probe site of path, else
    their hex (neither: a wrong address, or another tool's patch)."""
    arch, nop, trap = site_bytes(path)
    data = bytes(data[:len(nop)])
    return 'nop' if data == nop else 'trap' if data == trap else data.hex()


def load_segments(path):
    """[(vaddr, memsz, offset)] of the PT_LOAD segments, from `readelf -lW`."""
    out = subprocess.run(['readelf', '-lW', path], stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=30, check=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == 'LOAD':
            segs.append((int(f[2], 16), int(f[5], 16), int(f[1], 16)))
    return segs


def file_offset(path, vaddr, segments=None):
    """The file offset of link-time address vaddr of path."""
    for sv, sz, so in segments or load_segments(path):
        if sv <= vaddr < sv + sz:
            return vaddr - sv + so
    raise RuntimeError('0x%x is in no PT_LOAD segment of %s' % (vaddr, path))


def proc_addr(pid, path, vaddr, segments=None):
    """Where link-time address vaddr of path lives in process pid.

    The file offset of vaddr (via its PT_LOAD segment) is looked up in the
    process's accessible mappings of the same file (same path, device and
    inode)."""
    st = os.stat(path)
    fileoff = file_offset(path, vaddr, segments)
    mapped = set()
    real = os.path.realpath(path)       # /proc/PID/maps shows resolved paths
    with open('/proc/%d/maps' % pid) as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) < 6 or fields[5].rstrip('\n').split(' (deleted)')[0] != real:
                continue
            start, end = (int(x, 16) for x in fields[0].split('-'))
            off = int(fields[2], 16)
            major, minor = (int(x, 16) for x in fields[3].split(':'))
            inode = int(fields[4])
            mapped.add(inode)
            if inode != st.st_ino or os.makedev(major, minor) != st.st_dev:
                continue
            # A module whose segments are aligned to more than a page
            # (arm64: 64 KiB) is mapped with a ---p gap between them, whose
            # file range covers part of the next segment: nothing of the
            # file is there, so skip it.
            if fields[1].startswith('---'):
                continue
            if off <= fileoff < off + (end - start):
                return start + fileoff - off
    if mapped and st.st_ino not in mapped:
        raise RuntimeError('pid %d maps an older %s (inode %s, the file is now %d): '
                           'was the module rebuilt while the test ran?'
                           % (pid, path, sorted(mapped), st.st_ino))
    raise RuntimeError('%s is not mapped in pid %d' % (path, pid))


def read_semaphores(pid, path=None):
    """{probe name: semaphore value} in process pid (needs root)."""
    path = path or MODULE
    vals = {}
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for prov, name, vaddr in stapsdt_notes(path):
            if prov != 'httpd' or not vaddr:
                continue
            mem.seek(proc_addr(pid, path, vaddr))
            vals[name] = int.from_bytes(mem.read(2), sys.byteorder)
    return vals


def write_semaphores(pid, value, path=None, names=None):
    """Set every httpd semaphore of path (default MODULE) in process pid to
    value, as a tracer's attach does (needs root): the enabled path runs
    with no tracer, or stops running.  names: only those probes'."""
    path = path or MODULE
    with open('/proc/%d/mem' % pid, 'r+b', buffering=0) as mem:
        for prov, name, vaddr in stapsdt_notes(path):
            if prov == 'httpd' and vaddr and (names is None or name in names):
                mem.seek(proc_addr(pid, path, vaddr))
                mem.write(value.to_bytes(2, sys.byteorder))


# ---------------------------------------------------------------------------
# The traffic the start and done tests share, and their .expected files

AGENT = 'usdt-live/1'
LONG_URI = '/static.txt?pad=' + '0123456789' * 10     # longer than str()'s default 64


def standard_traffic(httpd):
    """Send a fixed set of requests, one after the other; return what the clients saw.

    IPv4 keep-alive connection 'ka' (User-Agent AGENT): GET with a query,
    HEAD, POST, a 404 served by ErrorDocument (internal redirect), a
    DirectoryIndex (/dir/, subrequests), a 301 (/dir), a long URI, and two
    mod_rewrite internal redirects: /old?r=1 (to static.txt) and /gone (to a
    missing page, so 404 through ErrorDocument).  Then a
    request without User-Agent ('noagent'), an HTTP/1.0 one ('http10'), curl
    over IPv6 ('v6'), and three h2c streams on one connection ('h2').
    Every request's file and status are in test_request_*.expected.
    """
    sent = {'responses': []}

    def note(name, resp):
        sent['responses'].append((name, resp.status))

    with Http1(httpd.port, '127.0.0.1') as c:
        sent['ka'] = c.local_port
        note('ka GET /static.txt?a=1&b=two', c.get('/static.txt?a=1&b=two', agent=AGENT))
        note('ka HEAD', c.request('HEAD', '/static.txt', agent=AGENT))
        note('ka POST', c.request('POST', '/static.txt', agent=AGENT, body=b'k=v'))
        note('ka 404', c.get('/missing?x=1', agent=AGENT))
        note('ka dir/', c.get('/dir/', agent=AGENT))
        note('ka dir', c.get('/dir', agent=AGENT))
        note('ka long', c.get(LONG_URI, agent=AGENT))
        note('ka old', c.get('/old?r=1', agent=AGENT))
        note('ka gone', c.get('/gone', agent=AGENT))
    with Http1(httpd.port, '127.0.0.1') as c:
        sent['noagent'] = c.local_port
        note('noagent', c.get('/static.txt'))
    with Http1(httpd.port, '127.0.0.1') as c:
        sent['http10'] = c.local_port
        c.send(('GET /static.txt?v=10 HTTP/1.0\r\nUser-Agent: %s.0\r\n\r\n' % AGENT).encode())
        note('http10', c.response())
    status, port = curl(httpd.url('/static.txt?v=6', '::1'), '-A', AGENT + '/curl')
    sent['v6'] = port
    sent['responses'].append(('v6 curl', status))
    statuses, out = nghttp([httpd.url('/static.txt?h2=1'), httpd.url('/dir/'),
                            httpd.url('/missing?h2=1')], '-H', 'user-agent: %s/h2' % AGENT)
    sent['h2'] = sorted(statuses)
    sent['h2_log'] = out
    return sent


def make_cert(directory, name='localhost'):
    """A self-signed certificate and key for name, made with openssl in
    directory; return (cert path, key path)."""
    crt, key = os.path.join(directory, 'tls.crt'), os.path.join(directory, 'tls.key')
    p = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                        '-subj', '/CN=%s' % name, '-addext', 'subjectAltName=DNS:%s' % name,
                        '-keyout', key, '-out', crt], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError('openssl req failed:\n' + p.stdout)
    os.chmod(key, 0o644)        # read by the parent as root, but keep it simple
    return crt, key


TLS_CONF = """
LoadModule ssl_module {moddir}/mod_ssl.so
LoadModule socache_shmcb_module {moddir}/mod_socache_shmcb.so
SSLSessionCache "shmcb:{root}/run/ssl_scache(102400)"
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile "{crt}"
    SSLCertificateKeyFile "{key}"
    Protocols h2 http/1.1
</VirtualHost>
"""


def tls_conf(port, crt, key):
    """Configuration lines for Apache(extra=...): mod_ssl on 127.0.0.1:port,
    HTTP/1.1 and h2, with the certificate of make_cert().  Apache puts its
    ServerRoot in place of {root} in extra."""
    return TLS_CONF.format(moddir=APACHE_MODULES, port=port, crt=crt, key=key,
                           root='{root}')


def record_flag(name):
    """The value of a #define of src/dthttpd.h (a DTHTTPD_*_F_* flag)."""
    with open(os.path.join(SRCDIR, 'src', 'dthttpd.h')) as f:
        m = re.search(r'^#define\s+%s\s+(0x[0-9a-fA-F]+|\d+)' % re.escape(name), f.read(), re.M)
    if not m:
        raise RuntimeError('src/dthttpd.h defines no %s' % name)
    return int(m.group(1), 0)


# mod_proxy to a backend virtual host of the same server on bport: /px/ a
# ProxyPass to it, /lb/ a balancer with it as the only member, /dead/ a
# ProxyPass to dport, where nothing listens (503 from mod_proxy itself),
# /flaky/ a balancer whose first member is dport (mod_proxy tries again),
# /busy/ to the backend's /unavailable/, which answers 503 itself, and
# /busy-override/ the same with ProxyErrorOverride.  (The backend vhost
# inherits the ProxyPass lines: a backend path must match none of them.)
PROXY_CONF = """
LoadModule proxy_module {moddir}/mod_proxy.so
LoadModule proxy_http_module {moddir}/mod_proxy_http.so
LoadModule proxy_balancer_module {moddir}/mod_proxy_balancer.so
LoadModule lbmethod_byrequests_module {moddir}/mod_lbmethod_byrequests.so
LoadModule slotmem_shm_module {moddir}/mod_slotmem_shm.so
<IfModule !alias_module>
    LoadModule alias_module {moddir}/mod_alias.so
</IfModule>
Listen 127.0.0.1:{bport}
<VirtualHost 127.0.0.1:{bport}>
    ServerName backend.test
    DocumentRoot "{root}/htdocs"
    Redirect 503 /unavailable/
</VirtualHost>
ProxyPass /px/ http://127.0.0.1:{bport}/
ProxyPass /busy/ http://127.0.0.1:{bport}/unavailable/
ProxyPass /busy-override/ http://127.0.0.1:{bport}/unavailable/
<Location /busy-override/>
    ProxyErrorOverride On
</Location>
ProxyPass /dead/ http://127.0.0.1:{dport}/ retry=0
<Proxy balancer://pool>
    BalancerMember http://127.0.0.1:{bport}
</Proxy>
ProxyPass /lb/ balancer://pool/
<Proxy balancer://flaky>
    BalancerMember http://127.0.0.1:{dport} retry=0
    BalancerMember http://127.0.0.1:{bport}
</Proxy>
ProxyPass /flaky/ balancer://flaky/
"""


def proxy_conf(bport, dport):
    """Configuration lines for Apache(extra=...): PROXY_CONF's backends."""
    return PROXY_CONF.format(moddir=APACHE_MODULES, bport=bport, dport=dport, root='{root}')


# mod_cgid with /cgi-bin/ for the scripts cgi_script() writes.
CGI_CONF = """
LoadModule cgid_module {moddir}/mod_cgid.so
<IfModule !alias_module>
    LoadModule alias_module {moddir}/mod_alias.so
</IfModule>
ScriptSock "{root}/run/cgid.sock"
ScriptAlias /cgi-bin/ "{root}/cgi-bin/"
<Directory "{root}/cgi-bin">
    Require all granted
</Directory>
"""
# A CGI script that waits before it answers: a slow handler.
SLOW_CGI_S = 0.3
SLOW_CGI = """#!/bin/sh
sleep {s}
printf 'Content-Type: text/plain\\r\\n\\r\\nslow handler\\n'
""".format(s=SLOW_CGI_S)


def cgi_conf():
    """Configuration lines for Apache(extra=...): CGI_CONF."""
    return CGI_CONF.format(moddir=APACHE_MODULES, root='{root}')


def cgi_script(httpd, name, text=SLOW_CGI):
    """Write an executable script (by default SLOW_CGI) as /cgi-bin/name of
    httpd, which has cgi_conf() in its extra configuration."""
    os.makedirs(httpd.path('cgi-bin'), 0o755, exist_ok=True)
    path = httpd.path('cgi-bin', name)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o755)


def curl_many(urls, *args, timeout=10):
    """curl several URLs in one run (one connection where curl can reuse it);
    return [(status, local_port)] per URL."""
    cmd = ['curl', '-sS', '-g', '--max-time', str(timeout),
           '-w', '%{http_code} %{local_port}\\n'] + list(args)
    for u in urls:
        cmd += ['-o', '/dev/null', u]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout + 5)
    if p.returncode != 0:
        raise RuntimeError('%s: exit %d: %s' % (' '.join(cmd), p.returncode, p.stderr))
    return [tuple(int(x) for x in l.split()) for l in p.stdout.splitlines() if l.strip()]


def read_expected(path):
    """Lines of a .expected file, without comments and blank lines."""
    path = path if os.path.isabs(path) else os.path.join(HERE, path)
    with open(path) as f:
        return [l.rstrip('\n') for l in f if l.strip() and not l.startswith('#')]


def compare_lines(got, want, label='trace'):
    """Compare two multisets of lines; a readable difference, or '' when equal."""
    import collections
    g, w = collections.Counter(got), collections.Counter(want)
    if g == w:
        return ''
    out = []
    for line in sorted(w - g):
        out.append('missing from %s: %s (x%d)' % (label, line, (w - g)[line]))
    for line in sorted(g - w):
        out.append('unexpected in %s: %s (x%d)' % (label, line, (g - w)[line]))
    return '\n'.join(out)


def require(*what):
    """Inside a check: Skip (Failure under CI=true) unless the machine has `what`."""
    why = missing(what)
    if why:
        if IN_CI:
            raise Failure('%s (CI=true: live tests must not skip)' % why)
        raise Skip(why)
