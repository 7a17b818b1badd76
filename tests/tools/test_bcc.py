#!/usr/bin/python3
"""test_bcc.py: the BCC route of docs/tracers.md (bpfcc-tools 0.26), run for real.

A private Apache with the built module, two children, and a second access
log that says which child served each request (%P).  The test runs the
commands docs/tracers.md gives an operator:

  tplist-bpfcc -l SO, tplist-bpfcc -vv -l SO
                     the probes, and their six arguments numbered from 1
  trace-bpfcc -p CHILD 'u:SO:request__done "%d %d %s %s", arg1, arg2, arg3, arg4'
                     id, status, method and URI of each request that child
                     serves; stopped with SIGINT (Ctrl-C)
  argdist-bpfcc -p CHILD -i 1 -C 'u:SO:request__done():int:arg2'
                     requests of that child by status, every second
  trace-bpfcc ... then SIGKILL
                     the semaphore stays set in the child, until a graceful
                     restart (SIGUSR1, apache2ctl graceful) replaces it

and judges their output against the access log: each tool sees exactly the
requests of the child it was given, and no other process has its semaphore
set.  BCC compiles its programs against kernel headers: those of the
running kernel (/lib/modules/RELEASE/build), or, where the running kernel
has no headers package (this machine's 6.18), a tree merged from Debian's
linux-headers-*-common and linux-headers-*-ARCH (linux-headers-amd64)
handed over in BCC_KERNEL_SOURCE, as docs/tracers.md says.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_bcc.py
Needs root and bpfcc-tools (skips otherwise, fails under CI=true).  Prints TAP.
"""

import collections
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

# %P: the child that served the request; %r: the request line as sent (a
# 404's %U%q would be that of the ErrorDocument's redirect)
PIDLOG = 'CustomLog logs/pid.log "%P %>s %r"'
TRACE_LINE = re.compile(r'^(\d+)\s+(\d+)\s+(\S+)\s+request__done\s+(\d+) (-?\d+) (\S*) (.*)$')
ARGDIST_LINE = re.compile(r'^\s+(\d+)\s+arg2 = (-?\d+)$')


def kernel_source(tmp):
    """(env for BCC, None) or (None, why not).  BCC finds the running
    kernel's headers by itself; else a merged tree of Debian's headers."""
    release = os.uname().release
    if os.path.isdir('/lib/modules/%s/build' % release):
        return {}, None
    for common in sorted(glob.glob('/usr/src/linux-headers-*-common'), reverse=True):
        ver = common[len('/usr/src/linux-headers-'):-len('-common')]
        arch = [d for d in glob.glob('/usr/src/linux-headers-%s-*' % ver)
                if not d.endswith(('-common', '-common-rt')) and os.path.isdir(d)]
        if arch:
            tree = os.path.join(tmp, 'kernel-headers')
            os.mkdir(tree)
            # docs/tracers.md's two cp -rs: common first, the ARCH tree over it
            for src in (common, sorted(arch)[0]):
                subprocess.run(['cp', '-rs', '--remove-destination', src + '/.', tree + '/'],
                               check=True, timeout=120)
            return {'BCC_KERNEL_SOURCE': tree}, None
    return None, ('no kernel headers for %s: no /lib/modules/%s/build, no '
                  '/usr/src/linux-headers-*-common (linux-headers-amd64)' % (release, release))


class BccTool:
    """A bpfcc tool with its output read by a thread; stop() is Ctrl-C."""

    def __init__(self, argv, env):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, universal_newlines=True,
                                     errors='replace', env=dict(os.environ, PYTHONUNBUFFERED='1',
                                                                **env),
                                     preexec_fn=harness._tracer_preexec)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._pump)
        self.reader.daemon = True
        self.reader.start()

    def _pump(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip('\n'))

    def out(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, pred, timeout):
        return harness.wait_until(lambda: self.proc.poll() is not None or pred(self.out()),
                                  timeout, 0.05) and self.proc.poll() is None

    def stop(self, sig=signal.SIGINT, timeout=15):
        """Send sig; SIGINT is repeated every 2 s, as toolrun.Tool.stop()
        does for bpftrace.  Seen once here: trace-bpfcc still ran 15 s
        after one SIGINT (ctypes drops an exception raised in a callback,
        so a KeyboardInterrupt that lands while BCC's perf-buffer callback
        prints an event is lost).  SIGKILL after timeout."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(min(2, max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            harness.log('%s ignored %s for %ss: SIGKILL' % (self.proc.args[0], sig, timeout))
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(5)
        return self.proc.returncode


def pid_log(httpd):
    """[(pid, status, method, uri)] of pid.log, dummies left out."""
    rows = []
    for line in httpd.read('logs', 'pid.log').splitlines():
        pid, status, method, uri, _ = line.split(' ')
        if (method, uri) != ('OPTIONS', '*'):
            rows.append((int(pid), int(status), method, uri))
    return rows


def served_by(httpd, child):
    return [r[1:] for r in pid_log(httpd) if r[0] == child]


def traffic(httpd, child, tag, want=4, limit=200):
    """New connections (each may land on any child) until `child` has served
    `want` requests of this batch and another child at least one; bounded."""
    n = 0
    seen = lambda: [r for r in pid_log(httpd) if ('-%s-' % tag) in r[3]]   # noqa: E731
    while n < limit:
        rows = seen()
        if (sum(1 for r in rows if r[0] == child) >= want
                and any(r[0] != child for r in rows)):
            break
        with harness.Http1(httpd.port, '127.0.0.1') as c:
            c.get(('/static.txt?bcc-%s-%d' if n % 3 else '/missing?bcc-%s-%d') % (tag, n))
        n += 1
        harness.wait_until(lambda: len(seen()) >= n, 5, 0.02)
    return n


def semaphores(httpd):
    return {pid: harness.read_semaphores(pid)['request__done']
            for pid in [httpd.pid] + httpd.children()}


def setup():
    so = harness.MODULE
    tmp = tempfile.mkdtemp(prefix='usdt-bcc-')
    d = {}
    try:
        env, why = kernel_source(tmp)
        if why:
            if harness.IN_CI:
                raise RuntimeError(why + ' (CI=true: live tests must not skip)')
            d['skip'] = why
            return d
        d['env'] = env
        d['tplist'] = subprocess.run(['tplist-bpfcc', '-l', so], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, universal_newlines=True,
                                     timeout=60).stdout
        d['tplist_vv'] = subprocess.run(['tplist-bpfcc', '-vv', '-l', so],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        universal_newlines=True, timeout=60).stdout
        with harness.Apache(extra=PIDLOG) as httpd:
            kids = httpd.children()
            child = kids[0]
            d['child'], d['others'] = child, [httpd.pid] + kids[1:]
            d['before'] = semaphores(httpd)
            probe = 'u:%s:request__done' % so
            tr = BccTool(['trace-bpfcc', '-p', str(child),
                          '%s "%%d %%d %%s %%s", arg1, arg2, arg3, arg4' % probe], env)
            try:
                # trace.py prints its header once every probe is attached
                ok = tr.wait_for(lambda ls: any(re.match(r'^PID\s+TID\s+COMM\s+FUNC', l)
                                                for l in ls), 120)
                expect(ok, 'trace-bpfcc did not start:\n' + '\n'.join(tr.out()))
                d['tracing'] = semaphores(httpd)
                d['trace_sent'] = traffic(httpd, child, 'trace')
                want = len([r for r in served_by(httpd, child) if '-trace-' in r[2]])
                tr.wait_for(lambda ls: sum(1 for l in ls if TRACE_LINE.match(l)) >= want, 10)
            finally:
                d['trace_rc'] = tr.stop()
            d['trace'] = tr.out()
            d['trace_log'] = [r for r in served_by(httpd, child) if '-trace-' in r[2]]
            d['trace_all'] = [r for r in pid_log(httpd) if '-trace-' in r[3]]
            d['after_int'] = semaphores(httpd)

            ad = BccTool(['argdist-bpfcc', '-p', str(child), '-i', '1',
                          '-C', '%s():int:arg2' % probe], env)
            try:
                # argdist prints a "[HH:MM:SS]" header every interval once attached
                ok = ad.wait_for(lambda ls: any(re.match(r'^\[\d\d:\d\d:\d\d\]$', l)
                                                for l in ls), 120)
                expect(ok, 'argdist-bpfcc did not start:\n' + '\n'.join(ad.out()))
                traffic(httpd, child, 'argdist')
                want = len([r for r in served_by(httpd, child) if '-argdist-' in r[2]])
                ad.wait_for(lambda ls: sum(int(m.group(1)) for m in map(ARGDIST_LINE.match, ls)
                                           if m) >= want, 10)
                # one more interval: a count printed just now is complete
                n = len(ad.out())
                ad.wait_for(lambda ls: any(re.match(r'^\[', l) for l in ls[n:]), 5)
            finally:
                ad.stop()
            d['argdist'] = ad.out()
            d['argdist_log'] = [r for r in served_by(httpd, child) if '-argdist-' in r[2]]

            killed = BccTool(['trace-bpfcc', '-p', str(child), '%s "%%d", arg2' % probe], env)
            try:
                ok = killed.wait_for(lambda ls: any(re.match(r'^PID\s+TID', l) for l in ls), 120)
                expect(ok, 'trace-bpfcc did not start:\n' + '\n'.join(killed.out()))
            finally:
                killed.stop(signal.SIGKILL)
            d['after_kill'] = semaphores(httpd)
            # docs/tracers.md's remedy: a graceful restart replaces the children
            new = httpd.graceful()
            d['after_graceful'] = {pid: harness.read_semaphores(pid)['request__done']
                                   for pid in [httpd.pid] + new}
            d['old_child_gone'] = harness.wait_until(
                lambda: child not in httpd.children(), 10, 0.1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return d


def need(d):
    if 'skip' in d:
        raise harness.Skip(d['skip'])


@t.check('tplist-bpfcc -l SO lists the probes; -vv numbers request-start\'s and -done\'s six '
         'arguments from 1')
def _(d):
    need(d)
    so = harness.MODULE
    want = {'%s httpd:%s' % (so, n['name']) for n in harness.probe_notes(so)
            if n['provider'] == 'httpd'}
    expect_eq(set(d['tplist'].split('\n')) - {''}, want, 'tplist -l against the module\'s notes')
    for name in ('request__done', 'request__start'):
        block = d['tplist_vv'].split('httpd:%s ' % name, 1)[1].split('httpd:', 1)[0]
        expect_eq(re.findall(r'argument #(\d+)', block), [str(i) for i in range(1, 7)],
                  'arguments of %s in tplist -vv' % name)
        expect(re.search(r'^\s*\[sema 0x[0-9a-f]+\]', block, re.M), 'semaphore of ' + name)


@t.check('trace-bpfcc -p CHILD sets the semaphore of that child only')
def _(d):
    need(d)
    expect(all(v == 0 for v in d['before'].values()), 'before: %r' % d['before'])
    expect(d['tracing'][d['child']] > 0, 'traced child: %r' % d['tracing'])
    expect(all(d['tracing'][p] == 0 for p in d['tracing'] if p != d['child']),
           'parent and other children: %r' % d['tracing'])


@t.check('trace-bpfcc: each request the child served, with its id, status, method, URI; '
         'none from other children')
def _(d):
    need(d)
    recs = [TRACE_LINE.match(l) for l in d['trace']]
    recs = [m.groups() for m in recs if m]
    expect(all(int(pid) == d['child'] for pid, *_ in recs), 'pids: %r' % recs)
    got = collections.Counter((int(st), meth, uri) for _, _, _, _, st, meth, uri in recs)
    expect_eq(got, collections.Counter(d['trace_log']), 'trace-bpfcc against pid.log of the child')
    ids = [int(r[3]) for r in recs]
    expect(len(set(ids)) == len(ids) and 0 not in ids, 'ids: %r' % ids)
    expect(len(d['trace_all']) > len(d['trace_log']) > 0,
           'requests: %d in all, %d by the traced child' % (len(d['trace_all']),
                                                             len(d['trace_log'])))


@t.check('trace-bpfcc stopped with SIGINT (Ctrl-C): the semaphore is 0 again')
def _(d):
    need(d)
    # trace.py 0.26 exits 1 on Ctrl-C: its run() reports KeyboardInterrupt
    # like an error (only SystemExit is 0); BPF's atexit cleanup has run
    expect_eq(d['trace_rc'], 1, 'trace-bpfcc exit status')
    expect(all(v == 0 for v in d['after_int'].values()), 'after Ctrl-C: %r' % d['after_int'])


@t.check('argdist-bpfcc -p CHILD -C ...:arg2: the child\'s requests by status')
def _(d):
    need(d)
    got = collections.Counter()
    for m in map(ARGDIST_LINE.match, d['argdist']):
        if m:
            got[int(m.group(2))] += int(m.group(1))
    expect_eq(dict(got), dict(collections.Counter(r[0] for r in d['argdist_log'])),
              'argdist counts against pid.log of the child:\n' + '\n'.join(d['argdist']))


@t.check('trace-bpfcc killed (SIGKILL): the semaphore stays set in the child; a graceful '
         'restart replaces the child')
def _(d):
    need(d)
    expect(d['after_kill'][d['child']] > 0, 'after SIGKILL: %r' % d['after_kill'])
    expect(all(d['after_kill'][p] == 0 for p in d['after_kill'] if p != d['child']),
           'after SIGKILL, the others: %r' % d['after_kill'])
    expect(all(v == 0 for v in d['after_graceful'].values()),
           'after a graceful restart: %r' % d['after_graceful'])
    expect(d['old_child_gone'], 'the old child %d still runs' % d['child'])


if __name__ == '__main__':
    t.run(setup, needs=('root', 'apache', 'module', 'bcc'))
