#!/usr/bin/python3
"""chroot.py: a Debian chroot of another architecture, for test_i386.py and
test_arm64.py: made, cached, run (natively or under qemu-user), the module
built and checked in it, and its own Apache serving with the module loaded.

  Arch        what differs per architecture: Debian's name, qemu's, the
              binfmt_misc magic of its ELF files, the extra packages
  Session     one test's run: a time budget, sh() bounded by it, the chroot
              (get_chroot), qemu-user registered with binfmt_misc for the
              test only (Binfmt), build(), run_apache()
  ChrootApache
              the chroot's Apache on a loopback port (harness.Apache's
              start/stop/children/logs, with paths in the chroot)
  shared_words(), serve(), enabled_path()
              the module's shared id counter read from a live process, a
              bounded batch of requests, the semaphores forced on
  run(), add_checks()
              what both tests run (under the cache's lock, qemu registered
              and removed) and the checks both make

A chroot is made by debootstrap's first stage (--foreign: download, check,
unpack the base), then every package it downloaded unpacked with the host's
dpkg-deb: running the second stage's dpkg and maintainer scripts under
emulation takes minutes (i386: more than 6 on 2 cores; arm64: 7.5), the
unpack some 20 seconds.  Cached in /var/cache/mod-usdt-ARCH-chroot for 7 days.

Licensed under the Apache License, Version 2.0.
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

SUITE = 'bookworm'
# what building the module and running its unit and static tests need
PACKAGES = ('apache2-bin', 'apache2-dev', 'systemtap-sdt-dev', 'gcc', 'libc6-dev', 'make',
            'pkg-config', 'libcmocka-dev')
RECIPE = 2                      # bump when the way a chroot is made changes
MAX_AGE = 7 * 86400
BINFMT = '/proc/sys/fs/binfmt_misc'
ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C', 'HOME': '/root',
       'DEBIAN_FRONTEND': 'noninteractive'}


class Arch:
    """An architecture as the chroot tests need it.  magic and mask are
    binfmt_misc's for its ELF executables and shared objects (ET_EXEC,
    ET_DYN), as qemu's scripts/qemu-binfmt-conf.sh registers them; machine
    is the ELF e_machine, as 2 bytes in hex (the 19th and 20th of the file)."""

    def __init__(self, name, qemu, elf_class, machine, magic, mask, packages=()):
        self.name = name
        self.qemu = qemu
        self.elf_class = elf_class
        self.machine = machine
        self.magic = magic
        self.mask = mask
        self.packages = PACKAGES + tuple(packages)
        self.cache = os.environ.get('USDT_%s_CACHE' % name.upper(),
                                    '/var/cache/mod-usdt-%s-chroot' % name)
        self.binfmt_name = 'usdt-qemu-' + qemu


I386 = Arch('i386', 'i386', 1, '0300',
            r'\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00',
            r'\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff')
ARM64 = Arch('arm64', 'aarch64', 2, 'b700',
             r'\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00',
             r'\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff')


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


class Session:
    """One test's use of a chroot of arch, within budget seconds."""

    def __init__(self, arch, budget):
        self.arch = arch
        self.budget = budget
        self.t0 = time.monotonic()

    def remaining(self, cap):
        """A step's timeout: cap, or what is left of the test's budget."""
        return max(10, min(cap, self.budget - (time.monotonic() - self.t0)))

    def sh(self, cmd, cap=300, **kw):
        """Run cmd (bounded); (exit code, output)."""
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, errors='replace',
                               env=kw.pop('env', ENV), timeout=self.remaining(cap), **kw)
        except subprocess.TimeoutExpired as e:
            out = e.output or b''
            if isinstance(out, bytes):
                out = out.decode(errors='replace')
            return 124, '%s: timed out after %ss\n%s' % (' '.join(cmd), e.timeout, out[-2000:])
        return p.returncode, p.stdout

    # -- the chroot ---------------------------------------------------------

    def key(self):
        a = self.arch
        h = hashlib.sha1(('%s %d %s' % (SUITE, RECIPE, ' '.join(a.packages))).encode())
        return '%s-%s-%s' % (SUITE, a.name, h.hexdigest()[:10])

    def make_chroot(self, dst, r):
        """debootstrap's first stage (native: download, check, unpack the
        base), then every package it downloaded unpacked with dpkg-deb."""
        new = dst + '.new'
        shutil.rmtree(new, ignore_errors=True)
        t0 = time.monotonic()
        rc, out = self.sh(['debootstrap', '--foreign', '--arch=' + self.arch.name,
                           '--variant=minbase', '--include=' + ','.join(self.arch.packages),
                           SUITE, new, mirror()], cap=420)
        r['debootstrap_secs'] = time.monotonic() - t0
        if rc != 0:
            raise RuntimeError('debootstrap failed (exit %d):\n%s' % (rc, out[-3000:]))
        t0 = time.monotonic()
        archives = os.path.join(new, 'var', 'cache', 'apt', 'archives')
        debs = sorted(f for f in os.listdir(archives) if f.endswith('.deb'))
        for deb in debs:
            rc, out = self.sh(['dpkg-deb', '-x', os.path.join(archives, deb), new], cap=120)
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
            f.write('%s %d packages, made %s\n' % (self.key(), len(debs), time.ctime()))
        shutil.rmtree(dst, ignore_errors=True)
        os.rename(new, dst)

    def get_chroot(self, r):
        """The cached chroot, or a new one; r['chroot'] says which."""
        cache = self.arch.cache
        root = os.path.join(cache, self.key())
        stamp = os.path.join(root, '.usdt-complete')
        age = time.time() - os.path.getmtime(stamp) if os.path.exists(stamp) else None
        if age is not None and age < MAX_AGE:
            r['chroot'] = 'cached (%.1f days old)' % (age / 86400)
        else:
            prefix = '%s-%s-' % (SUITE, self.arch.name)
            for old in os.listdir(cache):     # earlier recipes and packages
                if old.startswith(prefix) and old != self.key():
                    shutil.rmtree(os.path.join(cache, old), ignore_errors=True)
            self.make_chroot(root, r)
            r['chroot'] = 'made in %.0fs (debootstrap %.0fs, %d packages unpacked in %.0fs)' % (
                r['debootstrap_secs'] + r['unpack_secs'], r['debootstrap_secs'], r['packages'],
                r['unpack_secs'])
        return root

    # -- running the chroot's programs --------------------------------------

    def runs(self, root):
        rc, out = self.sh(['chroot', root, '/usr/bin/true'], cap=60)
        return rc == 0, out.strip()

    def handlers(self):
        """Enabled binfmt_misc entries that take this architecture's ELF files."""
        found = []
        if not os.path.isdir(BINFMT):
            return found
        for name in os.listdir(BINFMT):
            try:
                text = open(os.path.join(BINFMT, name)).read()
            except OSError:
                continue
            m = re.search(r'^magic ([0-9a-f]+)', text, re.M)
            if text.startswith('enabled') and m and \
                    m.group(1).startswith('7f454c46%02x' % self.arch.elf_class) and \
                    m.group(1)[36:40] == self.arch.machine:
                found.append(name)
        return found

    def qemu_static(self, r):
        """qemu-ARCH-static, unpacked from Debian's qemu-user-static (which
        conflicts with qemu-user-binfmt, so it is not installed)."""
        dl = os.path.join(self.arch.cache, 'qemu')
        rel_path = './usr/bin/qemu-%s-static' % self.arch.qemu
        path = os.path.join(dl, rel_path)
        if os.path.exists(path):
            return os.path.normpath(path)
        os.makedirs(dl, exist_ok=True)
        rc, out = self.sh(['apt-get', 'download', 'qemu-user-static'], cap=180, cwd=dl)
        debs = [f for f in os.listdir(dl)
                if f.startswith('qemu-user-static_') and f.endswith('.deb')]
        if not debs:
            raise RuntimeError('apt-get download qemu-user-static (exit %d):\n%s' % (rc, out))
        deb = os.path.join(dl, debs[0])
        tar = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', deb], stdout=subprocess.PIPE)
        rc = subprocess.run(['tar', '-x', '-C', dl, rel_path], stdin=tar.stdout,
                            timeout=self.remaining(120)).returncode
        tar.wait(30)
        os.unlink(deb)
        if rc != 0 or not os.path.exists(path):
            raise RuntimeError('could not unpack %s from %s' % (rel_path, deb))
        r['qemu'] = 'unpacked from qemu-user-static'
        return os.path.normpath(path)

    def enter(self, r):
        """The chroot, ready to run programs: natively, through a binfmt_misc
        handler the host has, or under qemu-user registered for the test
        (returned, to be exited).  Fills r['root'], r['exec'], r['native']."""
        root = r['root'] = self.get_chroot(r)
        handlers = self.handlers()
        ok, why = self.runs(root)
        r['native'] = ok and not handlers
        r['exec'] = ('natively' if r['native'] else
                     'through the binfmt_misc handler(s) %s' % handlers if ok else None)
        binfmt = None
        if not ok:
            r['native_error'] = why
            binfmt = Binfmt(self.arch, self.qemu_static(r), self).__enter__()
            ok, why = self.runs(root)
            if not ok:
                binfmt.__exit__()
                raise RuntimeError('%s programs run neither natively nor under qemu: %s'
                                   % (self.arch.name, why))
            r['exec'] = 'under qemu-user (%s)' % r['native_error']
        self.sh(['chroot', root, '/sbin/ldconfig'], cap=60)
        return binfmt

    # -- building in the chroot ---------------------------------------------

    def build(self, root, r, check_tests):
        """make distdir from the host's build tree; configure, make, make
        check TESTS=check_tests in the chroot.  Fills r['steps'] with (name,
        exit code, secs, output), r['module'] and r['check_logs']."""
        builddir = os.environ.get('builddir')
        if not builddir or not os.path.exists(os.path.join(builddir, 'Makefile')):
            raise RuntimeError('builddir (a configured build tree) is not set: run from make '
                               'check, or set builddir=')
        top = os.path.join(root, 'build')
        shutil.rmtree(top, ignore_errors=True)
        os.makedirs(top)
        rc, out = self.sh(['make', '-s', '-C', builddir, 'distdir',
                           'distdir=' + os.path.join(top, 'src')], cap=120)
        if rc != 0:
            raise RuntimeError('make distdir: exit %d\n%s' % (rc, out[-2000:]))
        steps = r['steps'] = []
        for name, script, cap in (
                ('configure', 'mkdir -p /build/b && cd /build/b && ../src/configure '
                 '--enable-werror', 420),
                ('make', 'cd /build/b && make -j2', 420),
                ('make check', 'cd /build/b && make -j1 check TESTS="%s"' % check_tests, 420)):
            t0 = time.monotonic()
            rc, out = self.sh(['chroot', root, '/bin/sh', '-c', script], cap=cap)
            steps.append((name, rc, time.monotonic() - t0, out))
            log('%s chroot: %s: exit %d in %.0fs' % (self.arch.name, name, rc, steps[-1][2]))
            if rc != 0 and name != 'make check':
                break
        r['module'] = os.path.join(root, 'build', 'b', 'src', '.libs', 'mod_usdt.so')
        r['check_logs'] = {}
        for test in check_tests.split():
            try:
                log_file = re.sub(r'\.(sh|py)$', '', test) + '.log'
                with open(os.path.join(root, 'build', 'b', log_file), errors='replace') as f:
                    r['check_logs'][test] = f.read()
            except OSError:
                r['check_logs'][test] = ''


def locked(arch):
    """An exclusive lock on arch's cache (one test at a time makes or uses
    it), waited for up to 10 minutes; close the file to release it."""
    os.makedirs(arch.cache, exist_ok=True)
    lock = open(os.path.join(arch.cache, 'lock'), 'w')
    deadline = time.monotonic() + 600
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return lock
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                lock.close()
                raise
            time.sleep(1)


class Binfmt:
    """qemu-ARCH-static registered for arch's ELF files, for the test only
    (flag F: the interpreter is opened now, so it works inside the chroot)."""

    def __init__(self, arch, qemu, session):
        self.arch = arch
        self.qemu = qemu
        self.session = session
        self.mounted = False
        self.registered = False

    def __enter__(self):
        if not os.path.exists(os.path.join(BINFMT, 'register')):
            rc, out = self.session.sh(['mount', '-t', 'binfmt_misc', 'binfmt_misc', BINFMT],
                                      cap=30)
            if rc != 0:
                raise RuntimeError('cannot mount binfmt_misc: %s' % out)
            self.mounted = True
        entry = os.path.join(BINFMT, self.arch.binfmt_name)
        if os.path.exists(entry):            # left by a run that was killed
            with open(entry, 'w') as f:
                f.write('-1')
        with open(os.path.join(BINFMT, 'register'), 'w') as f:
            f.write(':%s:M::%s:%s:%s:F' % (self.arch.binfmt_name, self.arch.magic,
                                           self.arch.mask, self.qemu))
        self.registered = True
        return self

    def __exit__(self, *exc):
        if self.registered:
            try:
                with open(os.path.join(BINFMT, self.arch.binfmt_name), 'w') as f:
                    f.write('-1')
            except OSError as e:
                log('could not remove binfmt entry %s: %s' % (self.arch.binfmt_name, e))
        if self.mounted and set(os.listdir(BINFMT)) <= {'register', 'status'}:
            self.session.sh(['umount', BINFMT], cap=30)
        return False


# ---------------------------------------------------------------------------
# The chroot's Apache

CONF = """\
ServerRoot "/srv/usdt"
ServerName usdt-{arch}.test
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

    def __init__(self, root, session):
        self.chroot = root
        self.session = session
        arch = session.arch.name
        self.root = os.path.join(root, 'srv', 'usdt')
        shutil.rmtree(self.root, ignore_errors=True)
        for sub in ('run', 'logs', 'htdocs'):
            os.makedirs(os.path.join(self.root, sub), mode=0o755)
        self.docroot = os.path.join(self.root, 'htdocs')
        with open(os.path.join(self.docroot, 'index.html'), 'w') as f:
            f.write('<html><body>%s</body></html>\n' % arch)
        os.chmod(os.path.join(self.docroot, 'index.html'), 0o644)
        self.port = harness.free_port()
        self.conf = os.path.join(self.root, 'httpd.conf')
        with open(self.conf, 'w') as f:
            f.write(CONF.format(port=self.port, arch=arch))
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
        rc, out = self.session.sh(['chroot', self.chroot, '/usr/sbin/apache2', '-f',
                                   '/srv/usdt/httpd.conf', '-M'], cap=60)
        return out

    def cleanup(self):
        if not os.environ.get('KEEP_TMP'):
            shutil.rmtree(self.root, ignore_errors=True)


def shared_words(pid, word=8):
    """{(mapping start, offset): unsigned word} over the process's one-page
    shared anonymous mappings, where APR keeps the module's shared id
    counter (a u64 on both data models)."""
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
            for off in range(0, 64, word):
                words[(start, off)] = int.from_bytes(page[off:off + word], sys.byteorder)
    return words


def serve(httpd, n, tag, agent):
    """n GETs of index.html on one keep-alive connection, then a 404 on
    another; the statuses."""
    statuses = []
    with harness.Http1(httpd.port, timeout=60) as c:
        for i in range(n):
            statuses.append(c.get('/index.html?%s=%d' % (tag, i), agent=agent).status)
    with harness.Http1(httpd.port, timeout=60) as c:
        statuses.append(c.get('/missing?%s' % tag).status)
    return statuses


def module_maps(pid, module):
    """The lines of /proc/PID/maps that map module (for the log: on arm64
    a ---p gap covers the file offset of the semaphores)."""
    real = os.path.realpath(module)
    with open('/proc/%d/maps' % pid) as f:
        return [l.rstrip('\n') for l in f if l.rstrip('\n').endswith(real)]


def enabled_path(httpd, module, requests, agent):
    """The module in the chroot's running child: its probe state untraced,
    then with every semaphore set as a tracer's attach would set it (through
    harness.proc_addr, which must find the right mapping), the requests it
    serves so, and how the shared id counter moved; then untraced again.
    Returns a dict for the test's checks."""
    a = {'modules': httpd.modules(), 'plain': serve(httpd, requests, 'plain', agent)}
    kids = httpd.children()
    a['children'] = kids
    a['state0'] = {pid: rel.probe_state(pid, module) for pid in kids}
    pid = kids[0]
    a['maps'] = module_maps(pid, module)
    before = shared_words(pid)
    harness.write_semaphores(pid, 1, module)
    a['state1'] = rel.probe_state(pid, module)
    a['enabled'] = serve(httpd, requests, 'enabled', agent)
    after = shared_words(pid)
    harness.write_semaphores(pid, 0, module)
    a['counter_moves'] = sorted(after[k] - before[k] for k in before
                                if k in after and after[k] != before[k])
    a['plain2'] = serve(httpd, 5, 'plain2', agent)
    a['counter_after'] = shared_words(pid)
    a['counter_still'] = [k for k in after if a['counter_after'].get(k) != after[k]]
    a['same_child'] = pid in httpd.children()
    harness.wait_until(lambda: len(httpd.access_log()) >= 2 * (requests + 1) + 6, 10)
    a['access'] = httpd.access_log()
    a['crash'] = rel.no_crash(httpd)
    a['errors'] = httpd.errors()
    return a


def declared_sizes(ptr):
    """{probe: [size, ...]} of the httpd probes as dtrace/mod_usdt.d
    declares them, for pointers of ptr bytes (tests/provider_args.awk)."""
    out = subprocess.run(['awk', '-v', 'ptr=%d' % ptr, '-f',
                          os.path.join(harness.SRCDIR, 'tests', 'provider_args.awk'),
                          os.path.join(harness.SRCDIR, 'dtrace', 'mod_usdt.d')],
                         stdout=subprocess.PIPE, universal_newlines=True, timeout=30,
                         check=True).stdout
    sizes = {}
    for line in out.splitlines():
        f = line.split('\t')
        if f[0] == 'httpd':
            sizes[f[1]] = f[3].split() if len(f) > 3 else []
    return sizes


# ---------------------------------------------------------------------------
# What test_i386.py and test_arm64.py both run and check

def run(session, r, work):
    """Under the arch's cache lock, with the chroot entered (and qemu
    registered if needed, then removed): work(root, r).  Fills r."""
    lock = locked(session.arch)
    try:
        binfmt = session.enter(r)
        try:
            work(r['root'], r)
        finally:
            if binfmt:
                binfmt.__exit__()
    finally:
        lock.close()
    r['secs'] = time.monotonic() - session.t0
    log('%s: chroot %s; %s programs ran %s; %.0fs in all' % (
        session.arch.name, r['chroot'], session.arch.name, r['exec'], r['secs']))
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


def probes_section(session, module):
    """(address, size) of the module's .probes section."""
    rc, secs = session.sh(['readelf', '-SW', module], cap=30)
    m = re.search(r'\.probes\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)', secs)
    expect(m, 'no .probes section:\n' + secs)
    return int(m.group(1), 16), int(m.group(2), 16)


def add_checks(t, session, bits, machine, requests):
    """Register the checks both chroot tests make, for a module of `bits`
    (32 or 64) built for `machine` (as readelf -h names it)."""
    name = session.arch.name
    model, ptr = ('ILP32', 4) if bits == 32 else ('LP64', 8)

    @t.check('an %s %s chroot made by debootstrap runs %s programs' % (name, SUITE, name))
    def _(d):
        need(d, 'root', 'exec')
        log('chroot %s: %s' % (d['root'], d['chroot']))
        expect(d['exec'], 'cannot run %s programs' % name)

    @t.check('the same configure, in the chroot, finds a %d-bit (%s) Apache and builds for it'
             % (bits, model))
    def _(d):
        need(d, 'steps')
        _, rc, secs, out = step(d, 'configure')
        expect_eq(rc, 0, 'configure exit code\n' + out[-3000:])
        m = re.search(r'^mod_usdt \d.*', out, re.M)
        log(out[m.start():] if m else out[-1500:])
        expect(re.search(r'data model \.+ %s' % model, out), 'configure did not find ' + model)

    @t.check('the module builds in the chroot with -Werror')
    def _(d):
        need(d, 'steps')
        _, rc, secs, out = step(d, 'make')
        expect_eq(rc, 0, 'make exit code\n' + out[-3000:])

    @t.check('in the chroot, the unit tests (ids, record, layout) and the static probe test '
             '(%s\'s hook-size limit) pass' % name)
    def _(d):
        need(d, 'steps')
        _, rc, secs, out = step(d, 'make check')
        bad = []
        for test, text in d['check_logs'].items():
            if not text:
                bad.append('%s: no log' % test)
            bad += ['%s: %s' % (test, l) for l in text.splitlines() if l.startswith('not ok')]
            for line in text.splitlines():
                if line.startswith('# usdt_') and 'instructions' in line:
                    log('%s, in the chroot: %s' % (name, line[2:]))
        passed = sum(l.startswith('ok ') for text in d['check_logs'].values()
                     for l in text.splitlines())
        log('%s: %d checks passed in the chroot' % (name, passed))
        expect(not bad and passed > 0, '\n'.join(bad) + '\n' + out[-2000:])

    @t.check('from the host: the module is ELF%d %s, every probe of mod_usdt.d is in its '
             'notes with the declared sizes (%d-byte pointers), semaphores in .probes'
             % (bits, machine, ptr))
    def _(d):
        need(d, 'module')
        m = d['module']
        expect(os.path.exists(m), 'no module built')
        rc, head = session.sh(['readelf', '-hW', m], cap=30)
        expect('ELF%d' % bits in head and machine in head,
               'not an ELF%d %s file:\n%s' % (bits, machine, head))
        lo, size = probes_section(session, m)
        rc, text = session.sh(['readelf', '-nW', m], cap=30)
        digits = 2 * ptr
        expect(re.search(r'Location: 0x[0-9a-f]{%d}, Base: 0x[0-9a-f]{%d}, '
                         r'Semaphore: 0x[0-9a-f]{%d}$' % (digits, digits, digits), text, re.M),
               'addresses in the notes are not %d-bit:\n%s' % (bits, text))
        notes = [n for n in harness.probe_notes(m) if n['provider'] == 'httpd']
        want = declared_sizes(ptr)
        expect_eq(sorted(n['name'] for n in notes), sorted(want), 'httpd probes in the notes')
        for n in notes:
            log('%s note: %s %s' % (name, n['name'], ' | '.join(n['args'])))
            expect_eq(harness.arg_sizes(n), want[n['name']], '%s argument sizes' % n['name'])
            expect(lo <= n['semaphore'] < lo + size, '%s semaphore 0x%x not in .probes'
                   % (n['name'], n['semaphore']))

    @t.check('the chroot\'s Apache loads the %s module and serves requests' % name)
    def _(d):
        need(d, 'apache')
        a = d['apache']
        expect('usdt_module (shared)' in a['modules'], 'apache2 -M:\n' + a['modules'])
        want = [200] * requests + [404]
        for k in ('plain', 'enabled'):
            expect_eq(a[k], want, '%s statuses' % k)
        expect_eq(a['plain2'], [200] * 5 + [404], 'statuses after the semaphores went back to 0')
        expect_eq(len(a['access']), 2 * (requests + 1) + 6, 'access log lines')
        expect(not a['crash'], a['crash'])

    @t.check('in the running %s child, untraced: semaphores 0, probe sites hold %s\'s nop'
             % (name, name))
    def _(d):
        need(d, 'apache')
        st = d['apache']['state0']
        bad = {pid: s for pid, s in st.items()
               if any(s[0].values()) or any(b != 'nop' for b in s[1].values())}
        expect(st and not bad, 'pid: (semaphores, sites): %r' % (bad or st))

    @t.check('with its semaphores set through harness.proc_addr, the %s child takes the enabled '
             'path for every request (the id counter moves by the number of requests), '
             'without a crash' % name)
    def _(d):
        need(d, 'apache')
        a = d['apache']
        log('the module\'s mappings in the child:\n' + '\n'.join(a['maps']))
        expect_eq(a['state1'][0], dict((k, 1) for k in declared_sizes(ptr)), 'semaphores set')
        # one id per request (requests + the 404), and one per connection:
        # serve() opens two, and conn-start, enabled, numbers them from the
        # same counter
        expect_eq(a['counter_moves'], [requests + 1 + 2], 'moves of the shared id counter '
                  '(a one-page shared mapping) over %d enabled requests on 2 connections'
                  % (requests + 1))
        expect(not a['counter_still'], 'the counter moved while untraced again')
        expect(a['same_child'], 'the child is gone')
        expect(not a['crash'], a['crash'])


def trace(httpd, module, requests, agent):
    """Where the chroot's programs run natively: bpftrace on the host,
    attached by the module's path, counting request-done over a batch."""
    prog = ('BEGIN { printf("READY\\n"); }\n'
            'usdt:@MODULE@:httpd:request__done { @d = count(); @st[arg1] = count(); }\n')
    bt = os.path.join(httpd.root, 'host-trace.bt')
    with open(bt, 'w') as f:
        f.write(prog)
    tr = rel.MapTracer(bt, module=module)
    tr.start()
    try:
        statuses = serve(httpd, requests, 'traced', agent)
        time.sleep(1)
    finally:
        tr.stop()
    m = tr.maps()
    tr.cleanup()
    return {'statuses': statuses, 'dones': rel.scalar(m, 'd'), 'st': m.get('st', {})}


def foreign_trace(session, httpd, module, requests, agent):
    """Under qemu-user: what the host's bpftrace does when asked to trace
    the emulated child's module by its path (bounded to 60 s), and the
    child's probe state and service meanwhile and after."""
    prog = ('BEGIN { printf("READY\\n"); } usdt:%s:httpd:request__done { @d = count(); }'
            % module)
    p = subprocess.Popen(['bpftrace', '-e', prog], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, preexec_fn=harness._tracer_preexec)
    try:
        out = p.communicate(timeout=60)[0]
        attached = False
    except subprocess.TimeoutExpired:
        attached = True             # still running: it attached to something
        p.send_signal(2)
        out = p.communicate(timeout=30)[0]
    pid = httpd.children()[0]
    return {'rc': p.returncode, 'attached': attached, 'out': out,
            'state': rel.probe_state(pid, module),
            'statuses': serve(httpd, requests, 'foreign', agent), 'crash': rel.no_crash(httpd)}
