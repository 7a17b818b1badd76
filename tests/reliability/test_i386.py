#!/usr/bin/python3
"""test_i386.py: the module as a 32-bit (i386) build, in a Debian i386 chroot.

  1. An i386 bookworm chroot, made with debootstrap (--variant=minbase
     --foreign, then every downloaded package unpacked with the host's
     dpkg-deb: running the second stage's dpkg and maintainer scripts under
     emulation takes more than 6 minutes on 2 cores, unpacking 20 seconds).
     It is cached in $USDT_I386_CACHE (default /var/cache/mod-usdt-i386-chroot)
     for 7 days.
  2. Running i386 programs: natively if the kernel can (IA32 emulation);
     otherwise through qemu-user (qemu-i386-static, unpacked from Debian's
     qemu-user-static package) registered with binfmt_misc for the test's
     duration only (flag F, so it works inside the chroot).
  3. In the chroot: the project's own configure (as tests/run.sh runs it,
     --enable-werror) on the files "make distdir" ships, make, and the unit
     tests and the static probe test: ids, record filling and the record
     layout, now for ILP32.
  4. From the host: the built module is ELF32 i386; its probe notes are
     32-bit, each probe with its arguments (u64, int, 4-byte pointers) and
     semaphores in its .probes section.
  5. The chroot's Apache (event MPM) loads it and serves requests; in the
     running 32-bit child the semaphores are 0 and the probe sites are nops;
     with request-start's and request-done's semaphores set (as a tracer would set them) the child takes
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

import errno
import fcntl
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rel  # noqa: E402
from rel import harness, expect, expect_eq, log  # noqa: E402

CACHE = os.environ.get('USDT_I386_CACHE', '/var/cache/mod-usdt-i386-chroot')
SUITE = 'bookworm'
PACKAGES = ('apache2-bin', 'apache2-dev', 'systemtap-sdt-dev', 'gcc', 'libc6-dev', 'make',
            'pkg-config', 'libcmocka-dev')
RECIPE = 2                      # bump when the way the chroot is made changes
MAX_AGE = 7 * 86400
BUDGET = 9 * 60                 # seconds for the whole test, first run included
BINFMT = '/proc/sys/fs/binfmt_misc'
BINFMT_NAME = 'usdt-qemu-i386'
# i386 ELF executables and shared objects (ET_EXEC, ET_DYN), as qemu registers them
I386_MAGIC = r'\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00'
I386_MASK = r'\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
CHECK_TESTS = ('tests/unit/test_id tests/unit/test_record tests/unit/test_layout '
               'tests/static/test_probes.sh')
# test_probes.sh's limit of 5 instructions per untraced hook is x86-64's:
# i386 PIC code first calls __x86.get_pc_thunk (6 instructions, and 2 more in
# the thunk); reported, not counted as a failure of this test
I386_KNOWN = re.compile(r'untraced, \w+ runs at most \d+ instructions')
REQUESTS = 20
REQUEST_PROBES = ('request__start', 'request__done')
# argument sizes of each probe in a 32-bit process (P: a 4-byte pointer)
ARG_SIZES = {
    'request__start': '8 -4 4 4 8 4', 'request__header': '8 4 4',
    'request__handler': '8 -4 4 4 8 4', 'proxy__start': '8 -4 4 4 8 4',
    'proxy__done': '8 -4 4 4 8 4', 'response__header': '8 4 4',
    'request__done': '8 -4 4 4 8 4', 'conn__start': '8 8 4 4 8 4',
    'conn__done': '8 8 4 4 8 4', 'child__start': '-4 -4', 'child__done': '-4 -4 8',
}
ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C', 'HOME': '/root',
       'DEBIAN_FRONTEND': 'noninteractive'}

t = harness.Tap()
T0 = time.monotonic()


def remaining(cap):
    """A step's timeout: cap, or what is left of the test's budget."""
    return max(10, min(cap, BUDGET - (time.monotonic() - T0)))


def sh(cmd, cap=300, **kw):
    """Run cmd (bounded); (exit code, output)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, errors='replace', env=kw.pop('env', ENV),
                           timeout=remaining(cap), **kw)
    except subprocess.TimeoutExpired as e:
        return 124, '%s: timed out after %ss\n%s' % (' '.join(cmd), e.timeout,
                                                     (e.output or b'')[-2000:])
    return p.returncode, p.stdout


def mirror():
    """Debian's archive as the host's apt sees it (so a local mirror works too)."""
    if os.environ.get('USDT_DEBIAN_MIRROR'):
        return os.environ['USDT_DEBIAN_MIRROR']
    for path in ('/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'):
        try:
            text = open(path).read()
        except OSError:
            continue
        m = re.search(r'^URIs:\s*(\S+/debian)/?\s*$', text, re.M) or \
            re.search(r'^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+' + SUITE + r'\s', text, re.M)
        if m:
            return m.group(1)
    return 'http://deb.debian.org/debian'


# ---------------------------------------------------------------------------
# The chroot

def chroot_key():
    h = hashlib.sha1(('%s %d %s' % (SUITE, RECIPE, ' '.join(PACKAGES))).encode()).hexdigest()
    return '%s-i386-%s' % (SUITE, h[:10])


def make_chroot(dst, r):
    """debootstrap's first stage (native: download, check, unpack the base),
    then every package it downloaded unpacked with dpkg-deb."""
    new = dst + '.new'
    shutil.rmtree(new, ignore_errors=True)
    t0 = time.monotonic()
    rc, out = sh(['debootstrap', '--foreign', '--arch=i386', '--variant=minbase',
                  '--include=' + ','.join(PACKAGES), SUITE, new, mirror()], cap=420)
    r['debootstrap_secs'] = time.monotonic() - t0
    if rc != 0:
        raise RuntimeError('debootstrap failed (exit %d):\n%s' % (rc, out[-3000:]))
    t0 = time.monotonic()
    archives = os.path.join(new, 'var', 'cache', 'apt', 'archives')
    debs = sorted(f for f in os.listdir(archives) if f.endswith('.deb'))
    for deb in debs:
        rc, out = sh(['dpkg-deb', '-x', os.path.join(archives, deb), new], cap=120)
        if rc != 0:
            raise RuntimeError('dpkg-deb -x %s: %s' % (deb, out))
        os.unlink(os.path.join(archives, deb))
    # what maintainer scripts would have done, as far as building and
    # running Apache needs it: awk (an alternative), users and groups
    awk = os.path.join(new, 'usr', 'bin', 'awk')
    if not os.path.lexists(awk):
        os.symlink('mawk', awk)
    for name in ('passwd', 'group'):
        if not os.path.exists(os.path.join(new, 'etc', name)):
            shutil.copy(os.path.join(new, 'usr', 'share', 'base-passwd', name + '.master'),
                        os.path.join(new, 'etc', name))
    r['unpack_secs'] = time.monotonic() - t0
    r['packages'] = len(debs)
    with open(os.path.join(new, '.usdt-complete'), 'w') as f:
        f.write('%s %d packages, made %s\n' % (chroot_key(), len(debs), time.ctime()))
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(new, dst)


def get_chroot(r):
    root = os.path.join(CACHE, chroot_key())
    stamp = os.path.join(root, '.usdt-complete')
    age = time.time() - os.path.getmtime(stamp) if os.path.exists(stamp) else None
    if age is not None and age < MAX_AGE:
        r['chroot'] = 'cached (%.1f days old)' % (age / 86400)
    else:
        for old in os.listdir(CACHE):     # earlier recipes and packages
            if old.startswith(SUITE + '-i386-') and old != chroot_key():
                shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
        make_chroot(root, r)
        r['chroot'] = 'made in %.0fs (debootstrap %.0fs, %d packages unpacked in %.0fs)' % (
            r['debootstrap_secs'] + r['unpack_secs'], r['debootstrap_secs'], r['packages'],
            r['unpack_secs'])
    return root


# ---------------------------------------------------------------------------
# Running i386 programs

def runs(root):
    rc, out = sh(['chroot', root, '/usr/bin/true'], cap=60)
    return rc == 0, out.strip()


def i386_handlers():
    """Enabled binfmt_misc entries that take i386 ELF files."""
    found = []
    if not os.path.isdir(BINFMT):
        return found
    for name in os.listdir(BINFMT):
        try:
            text = open(os.path.join(BINFMT, name)).read()
        except OSError:
            continue
        m = re.search(r'^magic ([0-9a-f]+)', text, re.M)
        if text.startswith('enabled') and m and m.group(1).startswith('7f454c4601') \
                and m.group(1)[36:40] == '0300':
            found.append(name)
    return found


def qemu_static(r):
    """qemu-i386-static, unpacked from Debian's qemu-user-static (which
    conflicts with qemu-user-binfmt, so it is not installed)."""
    path = os.path.join(CACHE, 'qemu', 'usr', 'bin', 'qemu-i386-static')
    if os.path.exists(path):
        return path
    dl = os.path.join(CACHE, 'qemu')
    os.makedirs(dl, exist_ok=True)
    rc, out = sh(['apt-get', 'download', 'qemu-user-static'], cap=180, cwd=dl)
    debs = [f for f in os.listdir(dl) if f.startswith('qemu-user-static_') and f.endswith('.deb')]
    if not debs:
        raise RuntimeError('apt-get download qemu-user-static (exit %d):\n%s' % (rc, out))
    deb = os.path.join(dl, debs[0])
    tar = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE)
    rc = subprocess.run(['tar', '-x', '-C', dl, './usr/bin/qemu-i386-static'], stdin=tar.stdout,
                        timeout=remaining(120)).returncode
    tar.wait(30)
    os.unlink(deb)
    if rc != 0 or not os.path.exists(path):
        raise RuntimeError('could not unpack qemu-i386-static from %s' % deb)
    r['qemu'] = 'unpacked from qemu-user-static'
    return path


class Binfmt:
    """qemu-i386-static registered for i386 ELF files, for the test only."""

    def __init__(self, qemu):
        self.qemu = qemu
        self.mounted = False
        self.registered = False

    def __enter__(self):
        if not os.path.exists(os.path.join(BINFMT, 'register')):
            rc, out = sh(['mount', '-t', 'binfmt_misc', 'binfmt_misc', BINFMT], cap=30)
            if rc != 0:
                raise RuntimeError('cannot mount binfmt_misc: %s' % out)
            self.mounted = True
        entry = os.path.join(BINFMT, BINFMT_NAME)
        if os.path.exists(entry):            # left by a run that was killed
            with open(entry, 'w') as f:
                f.write('-1')
        with open(os.path.join(BINFMT, 'register'), 'w') as f:
            f.write(':%s:M::%s:%s:%s:F' % (BINFMT_NAME, I386_MAGIC, I386_MASK, self.qemu))
        self.registered = True
        return self

    def __exit__(self, *exc):
        if self.registered:
            try:
                with open(os.path.join(BINFMT, BINFMT_NAME), 'w') as f:
                    f.write('-1')
            except OSError as e:
                log('could not remove binfmt entry %s: %s' % (BINFMT_NAME, e))
        if self.mounted and set(os.listdir(BINFMT)) <= {'register', 'status'}:
            sh(['umount', BINFMT], cap=30)
        return False


# ---------------------------------------------------------------------------
# Building in the chroot

def build(root, r):
    """make distdir from the host's build tree; configure, make, make check
    in the chroot.  Fills r['steps'] with (name, exit code, secs, output)."""
    builddir = os.environ.get('builddir')
    if not builddir or not os.path.exists(os.path.join(builddir, 'Makefile')):
        raise RuntimeError('builddir (a configured build tree) is not set: run from make check, '
                           'or set builddir=')
    top = os.path.join(root, 'build')
    shutil.rmtree(top, ignore_errors=True)
    os.makedirs(top)
    env = {k: v for k, v in ENV.items()}
    rc, out = sh(['make', '-s', '-C', builddir, 'distdir', 'distdir=' + os.path.join(top, 'src')],
                 cap=120, env=env)
    if rc != 0:
        raise RuntimeError('make distdir: exit %d\n%s' % (rc, out[-2000:]))
    steps = r['steps'] = []
    for name, script, cap in (
            ('configure', 'mkdir -p /build/b && cd /build/b && ../src/configure --enable-werror',
             300),
            ('make', 'cd /build/b && make -j2', 300),
            ('make check', 'cd /build/b && make -j1 check TESTS="%s"' % CHECK_TESTS, 300)):
        t0 = time.monotonic()
        rc, out = sh(['chroot', root, '/bin/sh', '-c', script], cap=cap)
        steps.append((name, rc, time.monotonic() - t0, out))
        log('i386 chroot: %s: exit %d in %.0fs' % (name, rc, steps[-1][2]))
        if rc != 0 and name != 'make check':
            break
    r['module'] = os.path.join(root, 'build', 'b', 'src', '.libs', 'mod_usdt.so')
    r['check_logs'] = {}
    for test in CHECK_TESTS.split():
        try:
            log_file = re.sub(r'\.(sh|py)$', '', test) + '.log'
            with open(os.path.join(root, 'build', 'b', log_file), errors='replace') as f:
                r['check_logs'][test] = f.read()
        except OSError:
            r['check_logs'][test] = ''


# ---------------------------------------------------------------------------
# The chroot's Apache

CONF = """\
ServerRoot "/srv/usdt"
ServerName usdt32.test
PidFile "/srv/usdt/run/httpd.pid"
DefaultRuntimeDir "/srv/usdt/run"
Mutex file:/srv/usdt/run default
ErrorLog "/srv/usdt/logs/error.log"
LogLevel info
User www-data
Group www-data
Listen 127.0.0.1:{port}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule usdt_module /build/b/src/.libs/mod_usdt.so
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
MinSpareThreads 1
MaxSpareThreads 8
LogFormat "%>s %m %U%q %B" usdt
CustomLog "/srv/usdt/logs/access.log" usdt
DocumentRoot "/srv/usdt/htdocs"
<Directory "/srv/usdt/htdocs">
    Require all granted
</Directory>
"""


class ChrootApache(harness.Apache):
    """The chroot's own Apache, from the chroot's files, on a loopback port;
    harness.Apache's start/stop/children/logs, with paths in the chroot."""

    def __init__(self, root):
        self.chroot = root
        self.root = os.path.join(root, 'srv', 'usdt')
        shutil.rmtree(self.root, ignore_errors=True)
        for sub in ('run', 'logs', 'htdocs'):
            os.makedirs(os.path.join(self.root, sub), mode=0o755)
        self.docroot = os.path.join(self.root, 'htdocs')
        with open(os.path.join(self.docroot, 'index.html'), 'w') as f:
            f.write('<html><body>i386</body></html>\n')
        os.chmod(os.path.join(self.docroot, 'index.html'), 0o644)
        self.port = harness.free_port()
        self.conf = os.path.join(self.root, 'httpd.conf')
        with open(self.conf, 'w') as f:
            f.write(CONF.format(port=self.port))
        self.mpm = 'event'
        self.start_servers = 1
        self.proc = None
        self.pidfile = os.path.join(self.root, 'run', 'httpd.pid')

    def start(self, timeout=60):
        out = open(self.path('logs', 'stdout.log'), 'w')
        self.proc = subprocess.Popen(['chroot', self.chroot, '/usr/sbin/apache2', '-f',
                                      '/srv/usdt/httpd.conf', '-DFOREGROUND'],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=ENV,
                                     start_new_session=True, preexec_fn=harness._die_with_us)
        out.close()
        ok = harness.wait_until(lambda: self.proc.poll() is not None
                                or self._answers(socket.AF_INET, '127.0.0.1'),
                                timeout, 0.2)
        if self.proc.poll() is not None or not ok:
            self.stop()
            raise RuntimeError('the chroot\'s apache2 did not start:\n%s\n%s' % (
                self.read('logs', 'stdout.log'), self.errors()))
        harness.wait_until(lambda: self.children(), timeout, 0.2)
        return self

    def modules(self):
        rc, out = sh(['chroot', self.chroot, '/usr/sbin/apache2', '-f', '/srv/usdt/httpd.conf',
                      '-M'], cap=60)
        return out

    def cleanup(self):
        if not os.environ.get('KEEP_TMP'):
            shutil.rmtree(self.root, ignore_errors=True)


def shared_words(pid):
    """{(mapping start, offset): u64} over the process's one-page shared
    anonymous mappings, where APR keeps the module's shared id counter."""
    words = {}
    with open('/proc/%d/maps' % pid) as f:
        maps = [l.split() for l in f]
    with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
        for m in maps:
            start, end = (int(x, 16) for x in m[0].split('-'))
            if m[1] != 'rw-s' or end - start != 4096:
                continue
            mem.seek(start)
            page = mem.read(4096)
            for off in range(0, 64, 8):
                words[(start, off)] = int.from_bytes(page[off:off + 8], sys.byteorder)
    return words


def serve(httpd, n, tag):
    statuses = []
    with harness.Http1(httpd.port, timeout=30) as c:
        for i in range(n):
            statuses.append(c.get('/index.html?%s=%d' % (tag, i), agent='i386').status)
    with harness.Http1(httpd.port, timeout=30) as c:
        statuses.append(c.get('/missing?%s' % tag).status)
    return statuses


def run_apache(root, r):
    a = r['apache'] = {}
    with ChrootApache(root) as httpd:
        a['modules'] = httpd.modules()
        a['plain'] = serve(httpd, REQUESTS, 'plain')
        kids = httpd.children()
        a['children'] = kids
        module = r['module']
        a['state0'] = {pid: rel.probe_state(pid, module) for pid in kids}
        pid = kids[0]
        before = shared_words(pid)
        harness.write_semaphores(pid, 1, module, names=REQUEST_PROBES)
        a['state1'] = rel.probe_state(pid, module)
        a['enabled'] = serve(httpd, REQUESTS, 'enabled')
        after = shared_words(pid)
        harness.write_semaphores(pid, 0, module)
        # +1 for the 404: REQUESTS + 1 requests, one id each, and one for
        # each of serve()'s two connections (a traced request's connection
        # gets its id from the same counter)
        a['counter_moves'] = sorted(after[k] - before[k] for k in before
                                    if k in after and after[k] != before[k])
        a['plain2'] = serve(httpd, 5, 'plain2')
        a['counter_after'] = shared_words(pid)
        a['counter_still'] = [k for k in after if a['counter_after'].get(k) != after[k]]
        a['same_child'] = pid in httpd.children()
        harness.wait_until(lambda: len(httpd.access_log()) >= 2 * (REQUESTS + 1) + 6, 10)
        a['access'] = httpd.access_log()
        a['crash'] = rel.no_crash(httpd)
        a['errors'] = httpd.errors()
        a['native'] = r['native']
        if r['native'] and shutil.which('bpftrace'):
            a['trace'] = trace(httpd, module)


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
    os.makedirs(CACHE, exist_ok=True)
    lock = open(os.path.join(CACHE, 'lock'), 'w')
    deadline = time.monotonic() + 600
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                raise
            time.sleep(1)
    try:
        root = get_chroot(r)
        r['root'] = root
        handlers = i386_handlers()
        ok, why = runs(root)
        r['native'] = ok and not handlers
        r['exec'] = ('natively' if r['native'] else
                     'through the binfmt_misc handler(s) %s' % handlers if ok else None)
        binfmt = None
        if not ok:
            r['native_error'] = why
            binfmt = Binfmt(qemu_static(r)).__enter__()
            ok, why = runs(root)
            if not ok:
                binfmt.__exit__()
                raise RuntimeError('i386 programs run neither natively nor under qemu: %s' % why)
            r['exec'] = 'under qemu-user (%s)' % r['native_error']
        try:
            sh(['chroot', root, '/sbin/ldconfig'], cap=60)
            build(root, r)
            if os.path.exists(r['module']):
                run_apache(root, r)
        finally:
            if binfmt:
                binfmt.__exit__()
    finally:
        lock.close()
    r['secs'] = time.monotonic() - T0
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


@t.check('an i386 %s chroot made by debootstrap runs i386 programs' % SUITE)
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
    bad, known = [], []
    for test, text in d['check_logs'].items():
        if not text:
            bad.append('%s: no log' % test)
        for line in text.splitlines():
            if line.startswith('not ok'):
                (known if I386_KNOWN.search(line) else bad).append('%s: %s' % (test, line))
    for line in (l for text in d['check_logs'].values() for l in text.splitlines()):
        if line.startswith('# untraced instructions'):
            log('i386: ' + line[2:])
    for k in known:
        log('known on i386 (PIC code calls __x86.get_pc_thunk first): ' + k)
    passed = sum(l.startswith('ok ') for text in d['check_logs'].values()
                 for l in text.splitlines())
    log('i386: %d checks passed in the chroot' % passed)
    expect(not bad and passed > 0, '\n'.join(bad) + '\n' + out[-2000:])


@t.check('the module is ELF32 i386, its probe notes are 32-bit: each probe\'s arguments '
         '(u64, int, 4-byte pointers), semaphores in .probes')
def _(d):
    need(d, 'module')
    m = d['module']
    expect(os.path.exists(m), 'no module built')
    rc, head = sh(['readelf', '-hW', m], cap=30)
    expect('ELF32' in head and 'Intel 80386' in head, 'not an i386 ELF32 file:\n' + head)
    rc, notes = sh(['readelf', '-nW', m], cap=30)
    rc, secs = sh(['readelf', '-SW', m], cap=30)
    probes = re.search(r'\.probes\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', secs)
    expect(probes, 'no .probes section:\n' + secs)
    lo, size = int(probes.group(1), 16), int(probes.group(2), 16)
    found = []
    for block in notes.split('stapsdt')[1:]:
        if 'Provider: httpd' not in block:
            continue
        name = re.search(r'Name: (\w+)', block).group(1)
        found.append(name)
        loc = re.search(r'Location: (0x[0-9a-f]+), Base: (0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)',
                        block)
        args = re.search(r'Arguments: (.*)', block).group(1).split()
        expect(loc and all(len(x) == 10 for x in loc.groups()),
               'addresses in the note are not 32-bit:\n' + block)
        sizes = [a.split('@')[0] for a in args]
        expect_eq(' '.join(sizes), ARG_SIZES.get(name), '%s argument sizes' % name)
        sem = int(loc.group(3), 16)
        expect(lo <= sem < lo + size, 'semaphore 0x%x not in .probes' % sem)
        log('i386 note: ' + ' '.join(block.split()[:12]))
    expect_eq(sorted(found), sorted(ARG_SIZES), 'httpd probes in the notes')


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
           if any(st[0].values()) or any(b != 0x90 for b in st[1].values())}
    expect(d['apache']['state0'] and not bad, 'pid: (semaphores, site bytes): %r'
           % (bad or d['apache']['state0']))


@t.check('with its semaphores set, the 32-bit child takes the enabled path for every '
         'request (one id each), without a crash')
def _(d):
    need(d, 'apache')
    a = d['apache']
    expect_eq({k: v for k, v in a['state1'][0].items() if v},
              {'request__start': 1, 'request__done': 1}, 'semaphores set')
    expect_eq(a['counter_moves'], [REQUESTS + 1 + 2], 'moves of the shared id counter '
              '(a one-page shared mapping) over %d enabled requests on 2 connections'
              % (REQUESTS + 1))
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
