#!/usr/bin/python3
"""test_arm64.py: the module built for arm64 (AArch64), in a Debian arm64
chroot run under qemu-user, as a Debian buildd for arm64 would build it.

  1. An arm64 bookworm chroot (chroot.py: debootstrap's first stage, then
     the downloaded packages unpacked with the host's dpkg-deb), cached in
     $USDT_ARM64_CACHE (default /var/cache/mod-usdt-arm64-chroot) for 7 days.
  2. arm64 programs run through a binfmt_misc handler the host has, or
     qemu-aarch64-static (unpacked from Debian's qemu-user-static) registered
     for the test's duration only.
  3. In the chroot: the project's configure --enable-werror on the files
     "make distdir" ships, make, and the unit tests and the static probe
     test (whose hook-size limit is arm64's: 5 instructions, 6 with bti).
  4. From the host: the module is ELF64 AArch64; its probe notes, read by
     tests/sdt_notes.awk (arm64 operands contain blanks: -4@[sp, 32]), are
     every probe of dtrace/mod_usdt.d with the declared sizes, semaphores
     in .probes; and the host's test_probes.sh passes on it, hooks
     disassembled with aarch64-linux-gnu-objdump.
  5. The chroot's Apache (event MPM) loads it and serves; in the running
     child the semaphores are 0 and the probe sites hold arm64's nop; with
     every semaphore set through harness.proc_addr (which must skip the
     ---p gap the loader leaves between 64 KiB-aligned segments) the child
     takes the enabled path for every request: the shared id counter moves
     by the number of requests.

What is not tested here, because it cannot work: tracing from the host.
Under qemu-user the child is an x86-64 process (qemu) that translates the
arm64 code it maps; it never executes that code itself.  A uprobe on the
module's file writes the host's breakpoint (x86 int3, 0xcc) over the first
byte of arm64's nop, which qemu then decodes as an arm64 instruction: the
probe never fires on the host, and the child runs a corrupted instruction
(test_i386.py sees an i386 child die of SIGTRAP the same way).  The host's
bpftrace cannot read arm64 operands ("-4@[sp, 32]") either.  Tracing an
arm64 module needs an arm64 kernel: a real machine or a full-system VM.

Slow (minutes): it runs only with USDT_SLOW_TESTS=1, which tests/run.sh sets
when CI=true.  Needs root, debootstrap and Debian's archive.  Prints TAP.

Run: USDT_SLOW_TESTS=1 builddir=$PWD srcdir=.. tests/reliability/test_arm64.py
(builddir: a configured build tree; the sources come from its "make distdir").
"""

import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chroot  # noqa: E402
from chroot import harness  # noqa: E402
from rel import expect, expect_eq, log  # noqa: E402

ARCH = chroot.ARM64
BUDGET = 12 * 60                # seconds for the whole test, first run included
CHECK_TESTS = ('tests/unit/test_id tests/unit/test_record tests/unit/test_layout '
               'tests/static/test_probes.sh')
REQUESTS = 20
HOST_OBJDUMP = 'aarch64-linux-gnu-objdump'

t = harness.Tap()
S = chroot.Session(ARCH, BUDGET)


def host_test_probes(module):
    """The host's tests/static/test_probes.sh on the arm64 module."""
    env = dict(chroot.ENV, srcdir=harness.SRCDIR, USDT_MODULE=module, READELF='readelf')
    if os.environ.get('CI'):
        env['CI'] = os.environ['CI']
    return S.sh(['sh', os.path.join(harness.SRCDIR, 'tests', 'static', 'test_probes.sh')],
                cap=60, env=env)


def setup():
    if os.environ.get('USDT_SLOW_TESTS') != '1':
        return {'skip': 'slow test (an arm64 chroot under qemu-user, minutes): set '
                        'USDT_SLOW_TESTS=1 (tests/run.sh does when CI=true)'}
    r = {}
    lock = chroot.locked(ARCH)
    try:
        binfmt = S.enter(r)
        try:
            S.build(r['root'], r, CHECK_TESTS)
            if os.path.exists(r['module']):
                r['host_probes'] = host_test_probes(r['module'])
                with chroot.ChrootApache(r['root'], S) as httpd:
                    r['apache'] = chroot.enabled_path(httpd, r['module'], REQUESTS, 'arm64')
        finally:
            if binfmt:
                binfmt.__exit__()
    finally:
        lock.close()
    r['secs'] = time.monotonic() - S.t0
    log('arm64: chroot %s; arm64 programs ran %s; %.0fs in all' % (r['chroot'], r['exec'],
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


@t.check('an arm64 %s chroot made by debootstrap runs arm64 programs' % chroot.SUITE)
def _(d):
    need(d, 'root', 'exec')
    log('chroot %s: %s' % (d['root'], d['chroot']))
    expect(d['exec'], 'cannot run arm64 programs')


@t.check('the same configure, in the chroot, finds a 64-bit (LP64) Apache and builds for it')
def _(d):
    need(d, 'steps')
    name, rc, secs, out = step(d, 'configure')
    expect_eq(rc, 0, 'configure exit code\n' + out[-3000:])
    m = re.search(r'^mod_usdt \d.*', out, re.M)
    log(out[m.start():] if m else out[-1500:])
    expect(re.search(r'data model \.+ LP64', out), 'configure did not find LP64')


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
                log('arm64, in the chroot: ' + line[2:])
    passed = sum(l.startswith('ok ') for text in d['check_logs'].values()
                 for l in text.splitlines())
    log('arm64: %d checks passed in the chroot' % passed)
    expect_eq(rc, 0, 'make check exit code')
    expect(not bad and passed > 0, '\n'.join(bad) + '\n' + out[-2000:])


@t.check('from the host: the module is ELF64 AArch64, every probe of mod_usdt.d is in its '
         'notes with the declared sizes (8-byte pointers), semaphores in .probes')
def _(d):
    need(d, 'module')
    m = d['module']
    expect(os.path.exists(m), 'no module built')
    rc, head = S.sh(['readelf', '-hW', m], cap=30)
    expect('ELF64' in head and 'AArch64' in head, 'not an AArch64 ELF64 file:\n' + head)
    notes = [n for n in harness.probe_notes(m) if n['provider'] == 'httpd']
    want = chroot.declared_sizes(8)
    expect_eq(sorted(n['name'] for n in notes), sorted(want), 'httpd probes in the notes')
    rc, secs = S.sh(['readelf', '-SW', m], cap=30)
    probes = re.search(r'\.probes\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', secs)
    expect(probes, 'no .probes section:\n' + secs)
    lo, size = int(probes.group(1), 16), int(probes.group(2), 16)
    for n in notes:
        log('arm64 note: %s %s' % (n['name'], ' | '.join(n['args'])))
        expect_eq(harness.arg_sizes(n), want[n['name']], '%s argument sizes' % n['name'])
        expect(lo <= n['semaphore'] < lo + size, '%s semaphore 0x%x not in .probes'
               % (n['name'], n['semaphore']))
    expect(any(' ' in a for n in notes for a in n['args']),
           'no operand with a blank ("[sp, 32]"): the parser was not exercised')


@t.check('from the host: test_probes.sh passes on the arm64 module (hooks disassembled by %s)'
         % HOST_OBJDUMP)
def _(d):
    need(d, 'host_probes')
    rc, out = d['host_probes']
    for line in out.splitlines():
        if line.startswith('# usdt_'):
            log('arm64, from the host: ' + line[2:])
    bad = [l for l in out.splitlines() if l.startswith('not ok') or '# SKIP' in l]
    expect(rc == 0 and not bad, 'exit %d:\n%s' % (rc, out[-3000:]))


@t.check('the chroot\'s Apache loads the arm64 module and serves requests')
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


@t.check('in the running arm64 child, untraced: semaphores 0, probe sites arm64 nops')
def _(d):
    need(d, 'apache')
    st = d['apache']['state0']
    bad = {pid: s for pid, s in st.items()
           if any(s[0].values()) or any(b != 'nop' for b in s[1].values())}
    expect(st and not bad, 'pid: (semaphores, sites): %r' % (bad or st))


@t.check('with its semaphores set through proc_addr, the arm64 child takes the enabled path '
         'for every request (the id counter moves by the number of requests), no crash')
def _(d):
    need(d, 'apache')
    a = d['apache']
    log('the module\'s mappings in the child:\n' + '\n'.join(a['maps']))
    expect_eq(a['state1'][0], dict((k, 1) for k in chroot.declared_sizes(8)), 'semaphores set')
    expect_eq(a['counter_moves'], [REQUESTS + 1], 'moves of the shared id counter '
              '(a one-page shared mapping) over %d enabled requests' % (REQUESTS + 1))
    expect(not a['counter_still'], 'the counter moved while untraced again')
    expect(a['same_child'], 'the child is gone')
    expect(not a['crash'], a['crash'])


if __name__ == '__main__':
    t.run(setup, needs=('root', 'debootstrap', 'dpkg-deb', 'apt-get', 'readelf'))
