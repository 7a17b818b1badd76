#!/usr/bin/python3
"""rel.py: what the reliability tests share, on top of tests/live/harness.py.

  MapTracer   bpftrace whose output goes to a file, read as bytes: a program
              that counts in maps and prints them at END (no event can be
              lost under load), or one that prints lines per event
              (parse with events()); stop() with SIGINT, or kill() with SIGKILL
  h2load(), ab(), h2load_bg(), ab_bg()
              the load generators, bounded in count and time, with what they
              report parsed
  PrivateModule
              a copy of the module that only this test's servers and tracers use
  load_apache()
              a private Apache (harness.Apache) sized for a given concurrency
  check_ids() the pairing rules over @s / @d maps
  probe_state(), live_state()
              the semaphores and the probe sites in a live process ('trap'
              while a uprobe is there, 'nop' when it has gone)
  no_crash()  the error log has no "exit signal" and no segmentation fault

Every test here needs root, bpftrace, Apache and the load tools; without them
it skips with a one-line reason, and fails under CI=true (harness.Tap).

Licensed under the Apache License, Version 2.0.
"""

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(HERE, '..', 'live'))
import harness  # noqa: E402
from harness import log, wait_until, expect, expect_eq, Failure  # noqa: E402,F401

NEEDS = harness.LIVE + ('h2load', 'ab')
# what harness.missing() knows; any other need is a command that must be in PATH
HARNESS_NEEDS = ('root', 'bpftrace', 'module', 'apache', 'nghttp', 'curl')


_harness_missing = harness.missing


def missing(needs=NEEDS):
    """harness.missing() plus commands (h2load, ab, ...); installed as
    harness.missing, so that harness.Tap.run skips (or fails under CI=true)
    when they are absent too."""
    why = _harness_missing(needs)
    if why:
        return why
    packages = {'h2load': 'nghttp2-client', 'ab': 'apache2-utils'}
    for n in needs:
        if n not in HARNESS_NEEDS and not shutil.which(n):
            return 'no %s%s' % (n, ' (%s)' % packages[n] if n in packages else '')
    return None


harness.missing = missing


# ---------------------------------------------------------------------------
# A private copy of the module

class PrivateModule:
    """The built module copied to a file of this test's own, for the servers
    and tracers of the test (harness.MODULE points there meanwhile).

    A uprobe belongs to a file (its inode): a tracer that other tests attach
    to the built module meanwhile (make -j check) neither enables this
    test's probes nor counts this test's requests, and this test's tracers
    see only its own servers."""

    def __enter__(self):
        self.orig = harness.MODULE
        self.dir = tempfile.mkdtemp(prefix='usdt-rel-mod-')
        os.chmod(self.dir, 0o755)       # children run as www-data
        path = os.path.join(self.dir, os.path.basename(self.orig))
        shutil.copy2(self.orig, path)
        os.chmod(path, 0o644)
        harness.MODULE = path
        return path

    def __exit__(self, *exc):
        harness.MODULE = self.orig
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


# ---------------------------------------------------------------------------
# Apache sized for a load

def mpm_conf(mpm, conns):
    """MPM directives for `conns` concurrent connections: enough workers that
    no connection waits or is closed early (event closes keep-alive
    connections when it runs out of workers; h2load does not reconnect), and
    fixed, so that no child is replaced during a run."""
    if mpm == 'prefork':
        n = conns + 8
        return ('ServerLimit %d\nMaxRequestWorkers %d\nStartServers %d\n'
                'MinSpareServers %d\nMaxSpareServers %d\nMaxConnectionsPerChild 0\n'
                % (n, n, n, n, n))
    # event closes idle keep-alive connections of a child whose workers are
    # all busy, and one child may accept most connections: give each child
    # a thread per connection and some to spare
    per = conns + 16
    return ('ServerLimit 2\nThreadLimit %d\nThreadsPerChild %d\nMaxRequestWorkers %d\n'
            'StartServers 2\nMinSpareThreads %d\nMaxSpareThreads %d\n'
            'MaxConnectionsPerChild 0\n' % (per, per, 2 * per, per, 2 * per))


class LoadApache(harness.Apache):
    """harness.Apache with the MPM sized for `conns` connections and LogLevel
    warn (at info, each 404 is an error-log line)."""

    def __init__(self, mpm, conns, extra='', **kw):
        self.fixed = mpm_conf(mpm, conns)
        m = re.search(r'StartServers (\d+)', self.fixed)
        kw.setdefault('loglevel', 'warn')
        super().__init__(mpm=mpm, start_servers=int(m.group(1)), extra=self.fixed + extra, **kw)


def load_apache(mpm, conns, extra='', **kw):
    return LoadApache(mpm, conns, extra, **kw)


CRASH = re.compile(r'exit signal|[Ss]egmentation fault|seg fault|core dump')


def no_crash(httpd, foreign_ok=False):
    """'' if the error log shows no crash, else the offending lines and what
    the cores left behind say (gdb backtraces).

    With foreign_ok, a crash is let pass (and logged) when its core shows
    that mod_usdt had no part in it: every crash left a core that gdb read,
    and no thread of any has a frame in the module.  For Apache's own
    crashes during `-k restart` (the event MPM's child main thread dies in
    its shutdown path, in apr_os_sock_get, now and then): without a core,
    or with a frame of ours anywhere, a crash still fails."""
    bad = [l for l in httpd.errors().splitlines() if CRASH.search(l)]
    if not bad:
        return ''
    report = httpd.crash_report()
    if foreign_ok:
        read = report.count('Program terminated with signal')
        frames = '\n'.join(l for l in report.splitlines() if l.startswith('#'))
        ours = os.path.basename(harness.MODULE) in frames or re.search(r'\busdt_\w+ \(', frames)
        if read >= len(bad) and not ours:
            log('a crash that is not mod_usdt\'s (no frame of it in any thread):\n'
                + '\n'.join(bad[:5] + report.splitlines()[:60]))
            return ''
    return '\n'.join(bad[:20] + [report])


# ---------------------------------------------------------------------------
# bpftrace with its output in a file

class MapTracer:
    """bpftrace running a program of this directory against module (default
    harness.MODULE, when start() runs), which @MODULE@ in it names.

    stdout and stderr go to files, read as bytes, so that no pipe can fill
    up and block the tracer, and no byte of a probe string is lost to
    decoding.  The program prints "READY" in BEGIN; start() waits for it,
    then for the kernel to have the program on every probe it names.
    """

    def __init__(self, bt, keys_max=1 << 18, strlen=None, rb_pages=None, attach_timeout=60,
                 subst=None, module=None):
        self.bt = bt if os.path.isabs(bt) else os.path.join(HERE, bt)
        self.module = module
        self.subst = dict(subst or {})
        self.keys_max = keys_max
        self.strlen = strlen
        self.rb_pages = rb_pages
        self.attach_timeout = attach_timeout
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix='usdt-rel-bt-')
        self.out = os.path.join(self.dir, 'out')
        self.err = os.path.join(self.dir, 'err')
        self.attached_at = self.stopped_at = None

    def start(self):
        """Start bpftrace and wait for its BEGIN ("READY"), then until the
        kernel has its programs on every probe the program names: bpftrace
        0.17 runs BEGIN before it attaches the USDT probes (under load,
        request-start fired first some 10 ms after BEGIN).  Then every
        request that starts is seen, in every child, old or new."""
        module = self.module or harness.MODULE
        with open(self.bt) as f:
            text = f.read().replace('@MODULE@', module)
        for k, v in self.subst.items():
            text = text.replace(k, str(v))
        prog = os.path.join(self.dir, 'prog.bt')
        with open(prog, 'w') as f:
            f.write(text)
        env = dict(os.environ, BPFTRACE_MAP_KEYS_MAX=str(self.keys_max))
        if self.strlen:
            env['BPFTRACE_STRLEN'] = str(self.strlen)
        if self.rb_pages:
            env['BPFTRACE_PERF_RB_PAGES'] = str(self.rb_pages)
        with open(self.out, 'wb') as out, open(self.err, 'wb') as err:
            self.proc = subprocess.Popen(
                ['bpftrace', '-B', 'line', '-I', os.path.join(harness.SRCDIR, 'src'), prog],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                preexec_fn=harness._tracer_preexec)
        ok = wait_until(lambda: self.proc.poll() is not None or b'READY' in self.output(),
                        self.attach_timeout, 0.02)
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError('bpftrace did not attach within %ss (exit %s):\n%s\n%s' % (
                self.attach_timeout, self.proc.returncode,
                self.output().decode(errors='replace')[-2000:], self.stderr()))
        probes = harness.probes_used(text, module)
        if not harness.wait_attached(self.proc.pid, probes, self.attach_timeout, module):
            self.stop()
            raise RuntimeError('bpftrace printed READY, but had not attached to %s within '
                               '%ss: it has %r' % (probes, self.attach_timeout,
                                                   harness.uprobes_of(self.proc.pid)))
        self.attached_at = time.monotonic()
        return self

    def output(self):
        try:
            with open(self.out, 'rb') as f:
                return f.read()
        except OSError:
            return b''

    def stderr(self):
        try:
            with open(self.err, 'rb') as f:
                text = f.read().decode(errors='replace')
        except OSError:
            return ''
        return '\n'.join(l for l in text.splitlines()
                         if 'RLIMIT_MEMLOCK' not in l and 'uprobe_events' not in l
                         and 'failed to detach probe' not in l)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGINT (repeated: bpftrace 0.17 may miss one while busy) until it has
        printed its maps and exited; SIGKILL only if it hangs.  Not repeated
        while it prints: a SIGINT in the middle of printing tens of thousands
        of map entries ends bpftrace there, and the maps after go missing."""
        if self.running():
            deadline = time.monotonic() + timeout
            printed = -1
            while self.proc.poll() is None and time.monotonic() < deadline:
                size = len(self.output())
                if size == printed or printed < 0:
                    self.proc.send_signal(signal.SIGINT)
                printed = size
                try:
                    self.proc.wait(min(2, max(0.1, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                log('bpftrace %d ignored SIGINT for %ss: SIGKILL' % (self.proc.pid, timeout))
                self.proc.kill()
                self.proc.wait(5)
        self.stopped_at = time.monotonic()
        return self

    def kill(self):
        """SIGKILL, as an operator's kill -9 or the OOM killer would."""
        if self.running():
            self.proc.kill()
            self.proc.wait(10)
        self.stopped_at = time.monotonic()
        return self

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def lost(self):
        text = self.output().decode(errors='replace') + self.stderr()
        return re.findall(r'[Ll]ost \d+ events', text)

    def maps(self):
        return parse_maps(self.output())

    def events(self):
        """Per-event lines (see hostile.bt): [{'probe', 'id', 't', fields}] in
        time order, string values as bytes, exactly as the probe carried them."""
        return parse_events(self.output())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()
        return False


EVENT_PROBES = {b'S': 'start', b'D': 'done', b'H': 'request-header',
                b'O': 'response-header'}


def parse_events(out):
    """Join per-event lines into events.  A line is "S|D|H|O <id> <nsecs>"
    (request-start, request-done, request-header, response-header), a TAB,
    then numeric fields "k=v<TAB>k=v..." (the first is status=) or one string
    field "k=value", the value running to the end of the line (bytes)."""
    events = {}
    for line in out.split(b'\n'):
        head, tab, rest = line.partition(b'\t')
        words = head.split(b' ')
        if not tab or len(words) != 3 or words[0] not in EVENT_PROBES:
            continue
        try:
            key = (words[0], int(words[1]), int(words[2]))
        except ValueError:
            continue
        ev = events.setdefault(key, {'probe': EVENT_PROBES[words[0]],
                                     'id': key[1], 't': key[2]})
        if rest.startswith(b'status='):
            for field in rest.split(b'\t'):
                k, _, v = field.partition(b'=')
                ev[k.decode()] = int(v)
        else:
            k, _, v = rest.partition(b'=')
            ev[k.decode()] = v
    return sorted(events.values(), key=lambda e: e['t'])


MAP_LINE = re.compile(rb'^@(\w+)(?:\[(.*)\])?: (-?\d+)$')


def parse_maps(out):
    """{map: {key: value}} from bpftrace's END print of its maps; a scalar map
    has the key None; a key of several values is a tuple; numbers are ints."""
    maps = collections.defaultdict(dict)
    for line in out.splitlines():
        m = MAP_LINE.match(line)
        if not m:
            continue
        name, key, val = m.group(1).decode(), m.group(2), int(m.group(3))
        if key is not None:
            parts = tuple(_num(p) for p in key.decode('utf-8', 'surrogateescape').split(', '))
            key = parts[0] if len(parts) == 1 else parts
        maps[name][key] = val
    return maps


def _num(s):
    try:
        return int(s)
    except ValueError:
        return s


def scalar(maps, name):
    return maps.get(name, {}).get(None, 0)


def check_ids(s, d, allow_unpaired_starts=0, allow_unpaired_dones=0):
    """The pairing rules over {id: starts} and {id: dones}; a list of problems.

    Every id fires request-start at most once and request-done at most once;
    every start has its done, and every done its start, except for the number
    allowed (requests in flight when the tracer attached or detached)."""
    bad = []
    rep_s = sorted(i for i, n in s.items() if n != 1)
    rep_d = sorted(i for i, n in d.items() if n != 1)
    if rep_s:
        bad.append('%d ids with more than one start, e.g. %r' % (len(rep_s), rep_s[:10]))
    if rep_d:
        bad.append('%d ids with more than one done, e.g. %r' % (len(rep_d), rep_d[:10]))
    us = sorted(set(s) - set(d))
    ud = sorted(set(d) - set(s))
    if len(us) > allow_unpaired_starts:
        bad.append('%d starts without a done (allowed %d), e.g. ids %r'
                   % (len(us), allow_unpaired_starts, us[:10]))
    if len(ud) > allow_unpaired_dones:
        bad.append('%d dones without a start (allowed %d), e.g. ids %r'
                   % (len(ud), allow_unpaired_dones, ud[:10]))
    if 0 in s or 0 in d:
        bad.append('id 0 reported')
    return bad


# ---------------------------------------------------------------------------
# Load generators: bounded in count (-n) and time (timeout)

def _h2load_cmd(urls, n, c, m, h1, extra):
    cmd = ['h2load', '-c', str(c), '-m', str(m), '-t', '1'] + list(extra)
    if n:
        cmd[1:1] = ['-n', str(n)]
    if h1:
        cmd.append('--h1')
    return cmd + list(urls)


def _h2load_parse(cmd, rc, out, secs):
    r = {'secs': secs, 'out': out, 'rc': rc}
    m1 = re.search(r'requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, '
                   r'(\d+) failed, (\d+) errored, (\d+) timeout', out)
    m2 = re.search(r'status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx', out)
    if not (m1 and m2):
        raise RuntimeError('%s: exit %s, no summary:\n%s' % (' '.join(cmd), rc, out[-3000:]))
    for k, v in zip(('total', 'started', 'done', 'succeeded', 'failed', 'errored', 'timeout'),
                    m1.groups()):
        r[k] = int(v)
    for k, v in zip(('2xx', '3xx', '4xx', '5xx'), m2.groups()):
        r[k] = int(v)
    return r


def h2load(urls, n, c, m=1, h1=False, timeout=180, extra=()):
    """h2load -n n -c c -m m over the URLs (round robin), h2c with prior
    knowledge or HTTP/1.1 keep-alive (h1).  {'total', 'done', 'succeeded',
    'failed' (h2load counts 4xx and 5xx as failed), 'errored', 'timeout',
    '2xx', '3xx', '4xx', '5xx', 'secs', 'out'}."""
    cmd = _h2load_cmd(urls, n, c, m, h1, extra)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout)
    return _h2load_parse(cmd, p.returncode, p.stdout, time.monotonic() - t0)


class Background:
    """A load generator running in the background, bounded in time (h2load
    -D, ab -t): a load that goes on while a test does something else.
    result() waits (bounded) and returns what h2load() or ab() return."""

    def __init__(self, cmd, parse, secs, nice=10):
        # niced, so that a tracer starting meanwhile gets the CPU it needs
        self.cmd, self.parse, self.secs = cmd, parse, secs
        if nice:
            cmd = ['nice', '-n', str(nice)] + cmd
        self.out = tempfile.TemporaryFile('w+')
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, universal_newlines=True,
                                     preexec_fn=harness._die_with_us)

    def running(self):
        return self.proc.poll() is None

    def result(self, timeout=None):
        try:
            self.proc.wait(timeout or self.secs + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.out.seek(0)
        out = self.out.read()
        self.out.close()
        return self.parse(self.cmd, self.proc.returncode, out, time.monotonic() - self.t0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def h2load_bg(urls, secs, c, m=1, h1=False):
    """h2load for secs seconds (-D), in the background."""
    return Background(_h2load_cmd(urls, None, c, m, h1, ('-D', str(secs))), _h2load_parse,
                      secs)


def ab_bg(url, secs, c):
    """ab for secs seconds (-t), in the background: a new connection per
    request, and it goes on after a connection is reset (-r)."""
    return Background(_ab_cmd(url, 1000000, c, False, ('-t', str(secs))), _ab_parse, secs)


def _ab_cmd(url, n, c, keepalive, extra=()):
    # extra first: ab's -t sets -n to 50000, unless a -n comes after it
    cmd = ['ab', '-q', '-r', '-s', '30'] + list(extra) + ['-n', str(n), '-c', str(c)]
    if keepalive:
        cmd.append('-k')
    return cmd + [url]


def _ab_parse(cmd, rc, out, secs):
    r = {'secs': secs, 'out': out, 'rc': rc}
    m = re.search(r'Complete requests:\s+(\d+)', out)
    if not m:
        raise RuntimeError('%s: exit %s:\n%s' % (' '.join(cmd), rc, out[-3000:]))
    r['complete'] = int(m.group(1))
    m = re.search(r'Failed requests:\s+(\d+)', out)
    r['failed'] = int(m.group(1)) if m else 0
    m = re.search(r'Non-2xx responses:\s+(\d+)', out)
    r['non2xx'] = int(m.group(1)) if m else 0
    return r


def ab(url, n, c, keepalive=False, timeout=180):
    """ab -n n -c c (HTTP/1.0; a new connection per request unless keepalive).
    {'complete', 'failed', 'non2xx', 'secs', 'out'}."""
    cmd = _ab_cmd(url, n, c, keepalive)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout)
    return _ab_parse(cmd, p.returncode, p.stdout, time.monotonic() - t0)


def status_class(status):
    return '%dxx' % (status // 100)


# ---------------------------------------------------------------------------
# Probe sites in a live process

_NOTES = {}


def module_notes(path):
    """(sites {probe: location}, semaphores {probe: vaddr}, PT_LOAD segments)
    of an httpd provider module, from readelf once per file."""
    st = os.stat(path)
    key = (path, st.st_ino, st.st_mtime)
    if key not in _NOTES:
        notes = [n for n in harness.probe_notes(path) if n['provider'] == 'httpd']
        _NOTES[key] = (dict((n['name'], n['location']) for n in notes),
                       dict((n['name'], n['semaphore']) for n in notes),
                       harness.load_segments(path))
    return _NOTES[key]


def probe_state(pid, path=None):
    """({probe: semaphore}, {probe: 'nop' or 'trap'}) in process pid: a
    semaphore is nonzero while a uprobe is on the probe's site (however
    many tracers share that uprobe); a site holds the file's nop when no
    uprobe is there, the architecture's breakpoint while one is
    (harness.site_state: x86 0x90 / int3 0xcc, arm64 nop / brk #5)."""
    path = path or harness.MODULE
    sites, sems, segs = module_notes(path)
    width = len(harness.site_bytes(path)[1])
    sem_vals, site_vals = {}, {}
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for name in sites:
            mem.seek(harness.proc_addr(pid, path, sems[name], segs))
            sem_vals[name] = int.from_bytes(mem.read(2), sys.byteorder)
            mem.seek(harness.proc_addr(pid, path, sites[name], segs))
            site_vals[name] = harness.site_state(path, mem.read(width))
    return sem_vals, site_vals


def live_state(httpd):
    """{pid: (semaphores, site bytes)} for every child of httpd; children
    that exit while we look are left out."""
    state = {}
    for pid in httpd.children():
        try:
            state[pid] = probe_state(pid)
        except (OSError, RuntimeError):
            pass
    return state


def rss_kib(pid):
    """VmRSS of a process in KiB, or None if it has gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
