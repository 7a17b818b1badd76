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

  6. A tracer on the host.  Where arm64 programs run natively (an arm64
     host), bpftrace attaches by the module's path and counts request-done.
     Under qemu-user it cannot work, and the test checks that it fails
     cleanly: the child is an x86-64 process (qemu) translating arm64 code,
     the host's bpftrace 0.17 cannot parse arm64 operands ("Parse error" at
     each "8@[sp]"), and the host kernel refuses the uprobe ("cannot attach
     uprobe, Invalid argument": arm64's nop, 1f 20 03 d5, is no x86-64
     instruction); the child's semaphores stay 0, its sites nops, and it
     keeps serving.  Tracing an arm64 module needs an arm64 kernel.

Slow (minutes): it runs only with USDT_SLOW_TESTS=1, which tests/run.sh sets
when CI=true.  Needs root, debootstrap and Debian's archive.  Prints TAP.

Run: USDT_SLOW_TESTS=1 builddir=$PWD srcdir=.. tests/reliability/test_arm64.py
(builddir: a configured build tree; the sources come from its "make distdir").
"""

import os
import shutil
import sys

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


def work(root, r):
    S.build(root, r, CHECK_TESTS)
    if os.path.exists(r['module']):
        r['host_probes'] = host_test_probes(r['module'])
        with chroot.ChrootApache(root, S) as httpd:
            a = r['apache'] = chroot.enabled_path(httpd, r['module'], REQUESTS, 'arm64')
            if shutil.which('bpftrace'):
                if r['native']:
                    a['trace'] = chroot.trace(httpd, r['module'], REQUESTS, 'arm64')
                else:
                    a['foreign'] = chroot.foreign_trace(S, httpd, r['module'], REQUESTS, 'arm64')


def setup():
    if os.environ.get('USDT_SLOW_TESTS') != '1':
        return {'skip': 'slow test (an arm64 chroot under qemu-user, minutes): set '
                        'USDT_SLOW_TESTS=1 (tests/run.sh does when CI=true)'}
    return chroot.run(S, {}, work)


chroot.add_checks(t, S, 64, 'AArch64', REQUESTS)


@t.check('from the host: test_probes.sh passes on the arm64 module (hooks disassembled by %s)'
         % HOST_OBJDUMP)
def _(d):
    chroot.need(d, 'host_probes')
    rc, out = d['host_probes']
    for line in out.splitlines():
        if line.startswith('# usdt_'):
            log('arm64, from the host: ' + line[2:])
    bad = [l for l in out.splitlines() if l.startswith('not ok') or '# SKIP' in l]
    expect(rc == 0 and not bad, 'exit %d:\n%s' % (rc, out[-3000:]))


@t.check('the arm64 notes hold operands with a blank ("[sp, 32]"), read whole')
def _(d):
    chroot.need(d, 'module')
    notes = [n for n in harness.probe_notes(d['module']) if n['provider'] == 'httpd']
    expect(any(' ' in a for n in notes for a in n['args']),
           'no operand with a blank: %r' % [n['args'] for n in notes])


@t.check('a tracer on the host: counts request-done where arm64 runs natively; under '
         'qemu-user it cannot attach, and the child is left untouched')
def _(d):
    chroot.need(d, 'apache')
    a = d['apache']
    if 'trace' not in a and 'foreign' not in a:
        harness.require('bpftrace')
    if 'trace' in a:
        tr = a['trace']
        log('arm64 traced statuses: %r' % tr['st'])
        expect_eq(tr['statuses'], [200] * REQUESTS + [404], 'statuses')
        expect_eq(tr['dones'], REQUESTS + 1, 'request-done hits')
        return
    f = a['foreign']
    log('host bpftrace under qemu-user: exit %s; its last lines:\n%s'
        % (f['rc'], '\n'.join(f['out'].splitlines()[-3:])))
    expect(not f['attached'] and f['rc'] != 0,
           'the host\'s bpftrace attached to the emulated module: that would be new; '
           'look at what it sees\n' + f['out'][-2000:])
    expect(f['state'][0] and not any(f['state'][0].values())
           and all(b == 'nop' for b in f['state'][1].values()),
           'the child\'s semaphores or sites were touched: %r' % (f['state'],))
    expect_eq(f['statuses'], [200] * REQUESTS + [404], 'statuses afterwards')
    expect(not f['crash'], f['crash'])


if __name__ == '__main__':
    t.run(setup, needs=('root', 'debootstrap', 'dpkg-deb', 'apt-get', 'readelf'))
