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
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import chroot  # noqa: E402
from chroot import harness  # noqa: E402
from rel import expect_eq, log  # noqa: E402

ARCH = chroot.I386
BUDGET = 9 * 60                 # seconds for the whole test, first run included
CHECK_TESTS = ('tests/unit/test_id tests/unit/test_record tests/unit/test_layout '
               'tests/static/test_probes.sh')
REQUESTS = 20

t = harness.Tap()
S = chroot.Session(ARCH, BUDGET)


def work(root, r):
    S.build(root, r, CHECK_TESTS)
    if os.path.exists(r['module']):
        with chroot.ChrootApache(root, S) as httpd:
            a = r['apache'] = chroot.enabled_path(httpd, r['module'], REQUESTS, 'i386')
            a['native'] = r['native']
            if r['native'] and shutil.which('bpftrace'):
                a['trace'] = chroot.trace(httpd, r['module'], REQUESTS, 'i386')


def setup():
    if os.environ.get('USDT_SLOW_TESTS') != '1':
        return {'skip': 'slow test (an i386 chroot, minutes): set USDT_SLOW_TESTS=1 '
                        '(tests/run.sh does when CI=true)'}
    return chroot.run(S, {}, work)


chroot.add_checks(t, S, 32, 'Intel 80386', REQUESTS)


@t.check('a tracer on the 64-bit host sees the 32-bit process\'s request-done probes')
def _(d):
    chroot.need(d, 'apache')
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
