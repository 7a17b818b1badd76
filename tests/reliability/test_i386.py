#!/usr/bin/python3
"""test_i386.py: the module as a 32-bit (i386) build, in a Debian i386 chroot.

  1. An i386 bookworm chroot (chroot.py, shared with test_arm64.py:
     debootstrap --variant=minbase --foreign, then every downloaded package
     unpacked with the host's dpkg-deb: running the second stage's dpkg and
     maintainer scripts under emulation takes more than 6 minutes on 2
     cores, unpacking 20 seconds).  It is cached in $USDT_I386_CACHE
     (default /var/cache/mod-usdt-i386-chroot) for 7 days.
  2. Running i386 programs: natively if the kernel can (IA32 emulation);
     otherwise through qemu-user (qemu-i386-static, unpacked from Debian's
     qemu-user-static package) registered with binfmt_misc for the test's
     duration only (flag F, so it works inside the chroot).
  3. In the chroot: the project's own configure (as tests/run.sh runs it,
     --enable-werror) on the files "make distdir" ships, make, and the unit
     tests and the static probe test: ids, record filling and the record
     layout, now for ILP32, and i386's own untraced hook-size limit.
  4. From the host: the built module is ELF32 i386; its probe notes are
     32-bit, every probe of dtrace/mod_usdt.d with the declared sizes (u64,
     int, 4-byte pointers; read by tests/sdt_notes.awk) and semaphores in
     its .probes section.
  5. The chroot's Apache (event MPM) loads it and serves requests; in the
     running 32-bit child the semaphores are 0 and the probe sites are nops;
     with both semaphores set (as a tracer would set them) the child takes
     the enabled path: it serves every request, its shared id counter moves
     by one per request, and the error log shows no crash.
  6. A tracer on the 64-bit host attached to the 32-bit process: only where
     i386 programs run natively.  Under qemu-user a uprobe's int3 is
     executed by the emulated CPU: the child dies with SIGTRAP (seen here:
     "child pid N exit signal Trace/BPT trap (5)"), so that case is skipped.

Slow (minutes): it runs only with USDT_SLOW_TESTS=1, which tests/run.sh sets
when CI=true.  Needs root, debootstrap and Debian's archive.  Prints TAP.

Run: USDT_SLOW_TESTS=1 builddir=$PWD srcdir=.. tests/reliability/test_i386.py
(builddir: a configured build tree; the sources come from its "make distdir").
"""

import os
import re
import shutil
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chroot  # noqa: E402
import rel  # noqa: E402
from rel import harness, expect, expect_eq, log  # noqa: E402

ARCH = chroot.I386
BUDGET = 9 * 60                 # seconds for the whole test, first run included
CHECK_TESTS = ('tests/unit/test_id tests/unit/test_record tests/unit/test_layout '
               'tests/static/test_probes.sh')
REQUESTS = 20

t = harness.Tap()
S = chroot.Session(ARCH, BUDGET)


def serve(httpd, n, tag):
    return chroot.serve(httpd, n, tag, 'i386')


def run_apache(root, r):
    with chroot.ChrootApache(root, S) as httpd:
        a = r['apache'] = chroot.enabled_path(httpd, r['module'], REQUESTS, 'i386')
        a['native'] = r['native']
        if r['native'] and shutil.which('bpftrace'):
            a['trace'] = trace(httpd, r['module'])


def trace(httpd, module):
    """Native i386 only: bpftrace on the host, attached by the module's path."""
    prog = ('BEGIN { printf("READY\\n"); }\n'
            'usdt:@MODULE@:httpd:request__done { @d = count(); @st[arg1] = count(); }\n')
    bt = os.path.join(httpd.root, 'i386.bt')
    with open(bt, 'w') as f:
        f.write(prog)
    tr = rel.MapTracer(bt, module=module)
    tr.start()
    try:
        statuses = serve(httpd, REQUESTS, 'traced')
        time.sleep(1)
    finally:
        tr.stop()
    m = tr.maps()
    tr.cleanup()
    return {'statuses': statuses, 'dones': rel.scalar(m, 'd'), 'st': m.get('st', {})}


# ---------------------------------------------------------------------------

def setup():
    if os.environ.get('USDT_SLOW_TESTS') != '1':
        return {'skip': 'slow test (an i386 chroot, minutes): set USDT_SLOW_TESTS=1 '
                        '(tests/run.sh does when CI=true)'}
    r = {}
    lock = chroot.locked(ARCH)
    try:
        binfmt = S.enter(r)
        try:
            S.build(r['root'], r, CHECK_TESTS)
            if os.path.exists(r['module']):
                run_apache(r['root'], r)
        finally:
            if binfmt:
                binfmt.__exit__()
    finally:
        lock.close()
    r['secs'] = time.monotonic() - S.t0
    log('i386: chroot %s; i386 programs ran %s; %.0fs in all' % (r['chroot'], r['exec'],
                                                                 r['secs']))
    return r


def need(d, *keys):
    if 'skip' in d:
        raise harness.Skip(d['skip'])
    for k in keys:
        if k not in d:
            raise harness.Failure('not reached (%s missing): see the first failure' % k)


def step(d, name):
    for s in d['steps']:
        if s[0] == name:
            return s
    raise harness.Failure('%s did not run' % name)


@t.check('an i386 %s chroot made by debootstrap runs i386 programs' % chroot.SUITE)
def _(d):
    need(d, 'root', 'exec')
    log('chroot %s: %s' % (d['root'], d['chroot']))
    expect(d['exec'], 'cannot run i386 programs')


@t.check('the same configure, in the chroot, finds a 32-bit (ILP32) Apache and builds for it')
def _(d):
    need(d, 'steps')
    name, rc, secs, out = step(d, 'configure')
    expect_eq(rc, 0, 'configure exit code\n' + out[-3000:])
    summary = out[out.find('mod_usdt 0.1'):] if 'mod_usdt 0.1' in out else out[-1500:]
    log(summary)
    expect(re.search(r'data model \.+ ILP32', out), 'configure did not find ILP32')


@t.check('the module builds in the chroot with -Werror')
def _(d):
    need(d, 'steps')
    name, rc, secs, out = step(d, 'make')
    expect_eq(rc, 0, 'make exit code\n' + out[-3000:])


@t.check('in the chroot, the unit tests (ids, record, layout) and the static probe test pass')
def _(d):
    need(d, 'steps')
    name, rc, secs, out = step(d, 'make check')
    bad = []
    for test, text in d['check_logs'].items():
        if not text:
            bad.append('%s: no log' % test)
        bad += ['%s: %s' % (test, l) for l in text.splitlines() if l.startswith('not ok')]
        for line in text.splitlines():
            if line.startswith('# usdt_') and 'instructions' in line:
                log('i386: ' + line[2:])
    passed = sum(l.startswith('ok ') for text in d['check_logs'].values()
                 for l in text.splitlines())
    log('i386: %d checks passed in the chroot' % passed)
    expect(not bad and passed > 0, '\n'.join(bad) + '\n' + out[-2000:])


@t.check('the module is ELF32 i386, its probe notes are 32-bit: every probe of mod_usdt.d '
         'with the declared sizes (4-byte pointers), semaphores in .probes')
def _(d):
    need(d, 'module')
    m = d['module']
    expect(os.path.exists(m), 'no module built')
    rc, head = S.sh(['readelf', '-hW', m], cap=30)
    expect('ELF32' in head and 'Intel 80386' in head, 'not an i386 ELF32 file:\n' + head)
    rc, secs = S.sh(['readelf', '-SW', m], cap=30)
    probes = re.search(r'\.probes\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', secs)
    expect(probes, 'no .probes section:\n' + secs)
    lo, size = int(probes.group(1), 16), int(probes.group(2), 16)
    rc, notes_text = S.sh(['readelf', '-nW', m], cap=30)
    expect(re.search(r'Location: 0x[0-9a-f]{8}, Base: 0x[0-9a-f]{8}, Semaphore: 0x[0-9a-f]{8}$',
                     notes_text, re.M), 'addresses in the notes are not 32-bit:\n' + notes_text)
    notes = [n for n in harness.probe_notes(m) if n['provider'] == 'httpd']
    want = chroot.declared_sizes(4)
    expect_eq(sorted(n['name'] for n in notes), sorted(want), 'httpd probes in the notes')
    for n in notes:
        log('i386 note: %s %s' % (n['name'], ' | '.join(n['args'])))
        expect_eq(harness.arg_sizes(n), want[n['name']], '%s argument sizes' % n['name'])
        expect(lo <= n['semaphore'] < lo + size, '%s semaphore 0x%x not in .probes'
               % (n['name'], n['semaphore']))


@t.check('the chroot\'s Apache loads the 32-bit module and serves requests')
def _(d):
    need(d, 'apache')
    a = d['apache']
    expect('usdt_module (shared)' in a['modules'], 'apache2 -M:\n' + a['modules'])
    want = [200] * REQUESTS + [404]
    for k in ('plain', 'enabled'):
        expect_eq(a[k], want, '%s statuses' % k)
    expect_eq(a['plain2'], [200] * 5 + [404], 'statuses after the semaphores went back to 0')
    expect_eq(len(a['access']), 2 * (REQUESTS + 1) + 6, 'access log lines')
    expect(not a['crash'], a['crash'])


@t.check('in the running 32-bit child, untraced: semaphores 0, probe sites nops')
def _(d):
    need(d, 'apache')
    bad = {pid: st for pid, st in d['apache']['state0'].items()
           if any(st[0].values()) or any(b != 'nop' for b in st[1].values())}
    expect(d['apache']['state0'] and not bad, 'pid: (semaphores, sites): %r'
           % (bad or d['apache']['state0']))


@t.check('with its semaphores set, the 32-bit child takes the enabled path for every '
         'request (one id each), without a crash')
def _(d):
    need(d, 'apache')
    a = d['apache']
    expect_eq(a['state1'][0], dict((k, 1) for k in chroot.declared_sizes(4)), 'semaphores set')
    expect_eq(a['counter_moves'], [REQUESTS + 1], 'moves of the shared id counter '
              '(a one-page shared mapping) over %d enabled requests' % (REQUESTS + 1))
    expect(not a['counter_still'], 'the counter moved while untraced again')
    expect(a['same_child'], 'the child is gone')
    expect(not a['crash'], a['crash'])


@t.check('a tracer on the 64-bit host sees the 32-bit process\'s request-done probes')
def _(d):
    need(d, 'apache')
    a = d['apache']
    if not a['native']:
        raise harness.Skip('i386 programs ran %s: under emulation a uprobe\'s int3 is executed '
                           'by the emulated CPU and the child dies with SIGTRAP'
                           % d['exec'].replace('\n', ' ')[:160])
    if 'trace' not in a:
        harness.require('bpftrace')
    tr = a['trace']
    log('i386 traced statuses: %r' % tr['st'])
    expect_eq(tr['statuses'], [200] * REQUESTS + [404], 'statuses')
    expect_eq(tr['dones'], REQUESTS + 1, 'request-done hits')


if __name__ == '__main__':
    t.run(setup, needs=('root', 'debootstrap', 'dpkg-deb', 'apt-get', 'readelf'))
