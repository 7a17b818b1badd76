#!/usr/bin/python3
"""test_faults.py: faults while tracing, on a live server under load.

A private Apache (event MPM, the built module) serves loopback load while
the tracer is attached and detached, killed, and while Apache restarts:

  A. attach/detach   under a background load (HTTP/1.1 keep-alive and h2c),
                     bpftrace (ids.bt) attaches and detaches again and again
                     (at least MIN_CYCLES times), then is killed with SIGKILL
                     KILLS times while attached.  While attached, every child
                     has both probes enabled and hooked; after every detach
                     and every kill, each child's semaphores are 0 and its
                     probe sites hold their nop again (no int3 left behind).
                     ids.bt counts in a window with exact edges: within it no
                     id repeats, and only requests in flight when it opens
                     or closes (A_INFLIGHT at most) may be unpaired.
  B. graceful, restart
                     with one tracer (counts.bt) attached by the module's
                     path, under load from ab (a connection per request),
                     `apache2 -k graceful`, then `apache2 -k restart` (what
                     apachectl runs); then a bounded load that the same
                     tracer must see in full, from the new children.  Run
                     on each MPM.
  C. back again      a fresh tracer, a bounded load: exact counts and pairs.
  D. client faults   with a tracer attached and nothing else running: slow
                     clients that never finish their headers (408 from
                     mod_reqtimeout), clients that disconnect mid-request
                     (in the request line, in the headers, in the body) and
                     mid-response (RST or FIN after 64 KiB of an 8 MiB file).

Everywhere: the clients' loads complete without an error (restarts aside),
Apache answers after each fault, its error log shows no crash, no id
repeats, every start has its one done except for requests in flight at an
attach or detach, or cut off by the hard restart of B (bounded below), and
every request Apache logged is reported by request-done with the status it
logged.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/reliability/test_faults.py
Needs root, bpftrace, h2load and ab (skips otherwise, fails under CI=true).
Prints TAP.
"""

import collections
import os
import random
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rel  # noqa: E402
from rel import harness, expect, expect_eq, log  # noqa: E402

A_SECS = 60                 # the background load of part A
A_KILL_SECS = 20            # the last part of it, for the SIGKILLs
A_H1_CONNS = 24             # its HTTP/1.1 keep-alive connections
A_H2_CONNS, A_H2_STREAMS = 2, 8
# Requests between their request-start and request-done at any moment, at
# most: one per HTTP/1.1 connection (the next request is read after the
# log_transaction of the last); per h2c connection its streams, and as many
# again that are finishing (a stream logs after the client has its response
# and may have opened the next stream).
A_INFLIGHT = A_H1_CONNS + 2 * A_H2_CONNS * A_H2_STREAMS
MIN_CYCLES = 6              # attach/detach cycles, at least
KILLS = 3                   # SIGKILLs of an attached tracer
B_SECS = 10                 # the ab load of part B
B_CONNS = 16
B_FINAL = 3000              # requests after the restart, seen by the same tracer
C_H1, C_H2 = 5000, 3000     # the bounded load of part C
SLOW = 16                   # slow clients (408)
MIDREQ = 16                 # disconnects of each kind in the request
MIDRESP = 24                # disconnects of each kind in the response
BIG = 8 << 20               # bytes of the file the mid-response clients drop

MPMS = ('event', 'worker', 'prefork')
REJECTED = {400, 408}       # statuses of requests rejected while being read

t = harness.Tap()


def serving(httpd):
    """A request on a new connection gets its 200 (bounded: 5 tries over ~5 s)."""
    for _ in range(5):
        try:
            with harness.Http1(httpd.port, timeout=5) as c:
                if c.get('/static.txt?alive').status == 200:
                    return True
        except (OSError, EOFError):
            pass
        time.sleep(1)
    return False


def apachectl(httpd, action):
    """What `apachectl graceful|restart` runs: apache2 -k ACTION with our config."""
    p = subprocess.run([harness.APACHE_BIN, '-f', httpd.conf, '-k', action],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=30,
                       env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C'})
    if p.returncode != 0:
        raise RuntimeError('apache2 -k %s: exit %d: %s' % (action, p.returncode, p.stdout))


def unhooked(httpd, timeout=5):
    """{pid: (semaphores, sites)} of children where a probe is still
    enabled or a site still holds a uprobe's breakpoint, after waiting up
    to timeout."""
    def bad():
        state = rel.live_state(httpd)
        return {pid: st for pid, st in state.items()
                if any(st[0].values()) or any(b != 'nop' for b in st[1].values())}
    if harness.wait_until(lambda: not bad(), timeout, 0.1):
        return {}
    return bad()


def hooked(httpd):
    """Children where every probe is enabled and every site holds a uprobe's
    breakpoint."""
    state = rel.live_state(httpd)
    return {pid for pid, (sem, sites) in state.items()
            if all(v > 0 for v in sem.values()) and all(b == 'trap' for b in sites.values())}


# ---------------------------------------------------------------------------
# A: attach, detach, kill

def part_a(httpd):
    r = {'windows': [], 'unhooked': [], 'hooked': [], 'kills': [], 'under_load': True}
    rng = random.Random(1234)
    h1 = rel.h2load_bg([httpd.url('/static.txt?a1')], A_SECS, A_H1_CONNS, h1=True)
    h2 = rel.h2load_bg([httpd.url('/static.txt?a2')], A_SECS, A_H2_CONNS, m=A_H2_STREAMS)
    try:
        time.sleep(1)
        deadline = time.monotonic() + A_SECS - A_KILL_SECS
        while time.monotonic() < deadline:
            window = rng.uniform(0.2, 0.8)
            tr = rel.MapTracer('ids.bt', subst={'@WINDOW_NS@': int(window * 1e9)})
            tr.start()
            time.sleep(window + 0.5)        # ids.bt opens the window 50 ms in, or later
            r['hooked'].append((len(httpd.children()), len(hooked(httpd))))
            r['under_load'] &= h1.running() and h2.running()
            tr.stop()
            r['windows'].append({'maps': tr.maps(), 'lost': tr.lost(), 'err': tr.stderr(),
                                 'secs': window})
            tr.cleanup()
            r['unhooked'].append(unhooked(httpd))
        for _ in range(KILLS):
            tr = rel.MapTracer('ids.bt', subst={'@WINDOW_NS@': int(60e9)})
            tr.start()
            time.sleep(rng.uniform(0.2, 0.6))
            r['under_load'] &= h1.running() and h2.running()
            tr.kill()
            tr.cleanup()
            r['kills'].append(unhooked(httpd))
    finally:
        r['h1'] = h1.result()
        r['h2'] = h2.result()
    r['serving'] = serving(httpd)
    return r


# ---------------------------------------------------------------------------
# B: graceful and restart under a traced load

def new_generation(httpd, old):
    """Every child of the old generation gone, and children of a new one.
    Not all StartServers of them: after a restart prefork holds its spawning
    at one child a second for 10 s (hold_off_on_exponential_spawning), and
    with the load's children busy that can take longer than the wait."""
    now = set(httpd.children())
    return bool(now - old) and not (now & old)


def part_b(mpm):
    r = {'mpm': mpm}
    with rel.load_apache(mpm, B_CONNS + 8) as httpd:
        tr = rel.MapTracer('counts.bt')
        tr.start()
        try:
            load = rel.ab_bg(httpd.url('/static.txt?b'), B_SECS, B_CONNS)
            try:
                time.sleep(2)
                gen0 = set(httpd.children())
                apachectl(httpd, 'graceful')
                r['graceful_new'] = harness.wait_until(lambda: new_generation(httpd, gen0),
                                                       15, 0.1)
                r['serving_graceful'] = serving(httpd)
                time.sleep(2)
                gen1 = set(httpd.children())
                apachectl(httpd, 'restart')
                r['restart_new'] = harness.wait_until(lambda: new_generation(httpd, gen1),
                                                      15, 0.1)
                r['serving_restart'] = serving(httpd)
            finally:
                r['ab'] = load.result()
            r['hooked_after'] = (len(httpd.children()), len(hooked(httpd)))
            r['final'] = rel.h2load([httpd.url('/index.html?final')], B_FINAL, 16, h1=True)
            harness.wait_until(lambda: sum(1 for row in httpd.client_access_log()
                                           if row[2].startswith('/index.html')) >= B_FINAL,
                               15, 0.1)
        finally:
            tr.stop()
        r['maps'] = tr.maps()
        r['lost'] = tr.lost()
        tr.cleanup()
        # -k restart: the event MPM itself crashes now and then (see no_crash)
        r['crash'] = rel.no_crash(httpd, foreign_ok=True)
        r['access'] = httpd.client_access_log()
    return r


# ---------------------------------------------------------------------------
# C: the tracer is back: exact

def part_c(httpd):
    r = {}
    tr = rel.MapTracer('counts.bt')
    n0 = len(httpd.client_access_log())
    tr.start()
    try:
        r['h1'] = rel.h2load([httpd.url('/static.txt?c1')], C_H1, 32, h1=True)
        r['h2'] = rel.h2load([httpd.url('/static.txt?c2')], C_H2, 4, m=8)
        harness.wait_until(lambda: len(httpd.client_access_log()) - n0 >= C_H1 + C_H2, 15, 0.1)
    finally:
        tr.stop()
    r['maps'] = tr.maps()
    r['lost'] = tr.lost()
    tr.cleanup()
    return r


# ---------------------------------------------------------------------------
# D: clients that stall or go away

def _slow(httpd, out):
    """Headers never finished: mod_reqtimeout answers 408 (header=2 in the config)."""
    with harness.Http1(httpd.port, timeout=15) as c:
        c.send(b'GET /static.txt?slow HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow')
        try:
            out.append(c.response().status)
        except (OSError, EOFError) as e:
            out.append(repr(e))


def _midreq(httpd, kind):
    data = {
        'line': b'GET /static.txt?midreq-line',
        'headers': b'GET /static.txt?midreq-headers HTTP/1.1\r\nHost: localhost\r\nUser-Ag',
        'body': b'POST /static.txt?midreq-body HTTP/1.1\r\nHost: localhost\r\n'
                b'Content-Length: 100000\r\n\r\n' + b'x' * 1000,
    }[kind]
    with harness.Http1(httpd.port, timeout=10) as c:
        c.send(data)
        time.sleep(0.05)


def _midresp(httpd, rst, out):
    s = socket.create_connection(('127.0.0.1', httpd.port), timeout=10)
    try:
        s.sendall(b'GET /big.bin?midresp HTTP/1.1\r\nHost: localhost\r\n\r\n')
        got = b''
        while len(got) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        out.append(got.split(b' ', 2)[1] if got.startswith(b'HTTP/1.1 ') else got[:20])
        if rst:     # close with a reset, as a client that crashed
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    finally:
        s.close()


def part_d(httpd):
    r = {'slow': [], 'midresp': []}
    with open(os.path.join(httpd.docroot, 'big.bin'), 'wb') as f:
        f.write(b'\0' * BIG)
    os.chmod(os.path.join(httpd.docroot, 'big.bin'), 0o644)
    n0 = len(httpd.client_access_log())
    tr = rel.MapTracer('counts.bt')
    tr.start()
    try:
        threads = [threading.Thread(target=_slow, args=(httpd, r['slow'])) for _ in range(SLOW)]
        threads += [threading.Thread(target=_midreq, args=(httpd, kind))
                    for kind in ('line', 'headers', 'body') for _ in range(MIDREQ)]
        threads += [threading.Thread(target=_midresp, args=(httpd, rst, r['midresp']))
                    for rst in (True, False) for _ in range(MIDRESP)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        # Apache logs a dropped request once it notices; wait until the log is quiet
        last = [-1, time.monotonic()]

        def quiet():
            n = len(httpd.client_access_log())
            if n != last[0]:
                last[:] = [n, time.monotonic()]
            return time.monotonic() - last[1] > 2
        harness.wait_until(quiet, 30, 0.2)
    finally:
        tr.stop()
    r['maps'] = tr.maps()
    r['lost'] = tr.lost()
    tr.cleanup()
    r['access'] = httpd.client_access_log()[n0:]
    r['serving'] = serving(httpd)
    return r


def setup():
    d = {}
    with rel.PrivateModule():
        with rel.load_apache('event', A_INFLIGHT) as httpd:
            d['a'] = part_a(httpd)
            d['c'] = part_c(httpd)
            d['d'] = part_d(httpd)
            d['crash'] = rel.no_crash(httpd)
        d['b'] = {mpm: part_b(mpm) for mpm in MPMS}
    return d


# ---------------------------------------------------------------------------
# The checks

def summary(maps):
    s, dn = maps.get('s', {}), maps.get('d', {})
    return {'starts': len(s), 'dones': len(dn), 'unpaired starts': len(set(s) - set(dn)),
            'unpaired dones': len(set(dn) - set(s))}


@t.check('A: the load went on without an error while the tracer came and went')
def _(d):
    a = d['a']
    log('A: %d attach/detach cycles, %d SIGKILLs; HTTP/1.1 %d requests, h2c %d requests in %ds'
        % (len(a['windows']), len(a['kills']), a['h1']['done'], a['h2']['done'], A_SECS))
    for k in ('h1', 'h2'):
        c = a[k]
        expect(c['done'] > 0 and c['done'] == c['2xx'] and not c['failed'] and not c['errored']
               and not c['timeout'],
               '%s: %s' % (k, {x: c[x] for x in ('done', '2xx', 'failed', 'errored', 'timeout')}))
    expect(a['serving'], 'Apache does not answer after the SIGKILLs')


@t.check('A: while attached, every child had both probes enabled and both sites hooked')
def _(d):
    bad = [(i, h) for i, h in enumerate(d['a']['hooked']) if h[0] != h[1] or not h[0]]
    expect(not bad, '(cycle, (children, hooked children)): %r' % bad)


@t.check('A: after each of the detaches, semaphores 0 and nops in every child')
def _(d):
    bad = [(i, u) for i, u in enumerate(d['a']['unhooked']) if u]
    expect(not bad, 'cycle, {pid: (semaphores, site bytes)}: %r' % bad[:5])


@t.check('A: after each SIGKILL of the tracer, semaphores 0 and nops in every child')
def _(d):
    bad = [(i, u) for i, u in enumerate(d['a']['kills']) if u]
    expect(not bad, 'kill, {pid: (semaphores, site bytes)}: %r' % bad[:5])


@t.check('A: %d+ windows: no id repeats; only requests in flight when a window opens '
         'or closes (at most %d) are unpaired' % (MIN_CYCLES, A_INFLIGHT))
def _(d):
    bad = []
    if len(d['a']['windows']) < MIN_CYCLES:
        bad.append('%d attach/detach cycles, want %d or more' % (len(d['a']['windows']),
                                                                MIN_CYCLES))
    if not d['a']['under_load']:
        bad.append('the background load ended before the last window or kill')
    seen_s, seen_d = set(), set()
    for i, w in enumerate(d['a']['windows']):
        m = w['maps']
        s, dn = m.get('s', {}), m.get('d', {})
        log('A window %d (%.2fs): %s' % (i, w['secs'], summary(m)))
        if w['lost'] or len(s) != rel.scalar(m, 'ns') or len(dn) != rel.scalar(m, 'nd'):
            bad.append('window %d: lost %r, or a full map: %d ids for %d starts, %d for %d dones'
                       % (i, w['lost'], len(s), rel.scalar(m, 'ns'), len(dn),
                          rel.scalar(m, 'nd')))
        if not s or not dn:
            bad.append('window %d saw no request' % i)
        for p in rel.check_ids(s, dn, allow_unpaired_starts=A_INFLIGHT,
                               allow_unpaired_dones=A_INFLIGHT):
            bad.append('window %d: %s' % (i, p))
        if seen_s & set(s) or seen_d & set(dn):
            bad.append('window %d: ids seen in an earlier window again' % i)
        seen_s |= set(s)
        seen_d |= set(dn)
    expect(not bad, '\n'.join(bad[:20]))


def b_check(mpm, fn):
    t.check('B %s: %s' % (mpm, fn.__doc__))(lambda d: fn(d['b'][mpm]))


def b_serving(b):
    """Apache answered after graceful and after restart, with a new generation each time"""
    expect(b['graceful_new'], 'no new children after graceful')
    expect(b['serving_graceful'], 'no answer after graceful')
    expect(b['restart_new'], 'no new children after restart')
    expect(b['serving_restart'], 'no answer after restart')
    expect(not b['crash'], b['crash'])
    log('B %s: ab %d requests (%d failed) across graceful and restart'
        % (b['mpm'], b['ab']['complete'], b['ab']['failed']))


def b_follow(b):
    """the tracer attached before the restarts sees every request of the new children"""
    expect_eq(b['hooked_after'][1], b['hooked_after'][0], 'children hooked after the restart')
    f = b['final']
    expect_eq((f['done'], f['2xx']), (B_FINAL, B_FINAL), 'final load (done, 2xx)')
    got = b['maps'].get('path', {}).get(('/index.html?', 200), 0)
    expect_eq(got, B_FINAL, 'request-dones of the final load')


def b_pairs(b):
    """ids unique; starts have their dones; logged requests reported (but restart cut-offs)"""
    m = b['maps']
    s, dn, dst = m.get('s', {}), m.get('d', {}), m.get('dst', {})
    log('B %s: %s' % (b['mpm'], summary(m)))
    expect(not b['lost'], 'lost: %r' % b['lost'])
    # `-k restart` kills the children at once (prefork: SIGHUP, exit): a
    # request in flight then may end before its request-done, or, since
    # request-done fires first of the log_transaction hooks, after it and
    # before mod_log_config wrote its line.  At most one per connection.
    bad = rel.check_ids(s, dn, allow_unpaired_starts=B_CONNS, allow_unpaired_dones=len(dn))
    odd = collections.Counter(dst.get(i) for i in set(dn) - set(s))
    if set(odd) - REJECTED:
        bad.append('dones without a start, by status: %r' % dict(odd))
    expect(not bad, '\n'.join(bad))
    logged = collections.Counter(row[0] for row in b['access'])
    probed = collections.Counter()
    for (proto, status), n in m.get('st', {}).items():
        probed[status] += n
    unlogged = probed - logged
    expect(not (logged - probed) and sum(unlogged.values()) <= B_CONNS,
           'request-done statuses %r vs access log statuses %r: every logged request '
           'reported, at most %d (cut off by the restart) not logged'
           % (dict(probed), dict(logged), B_CONNS))
    if unlogged or len(set(s) - set(dn)):
        log('B %s: cut off by the restart: %d starts without a done, %d dones not logged'
            % (b['mpm'], len(set(s) - set(dn)), sum(unlogged.values())))


for mpm in MPMS:
    for fn in (b_serving, b_follow, b_pairs):
        b_check(mpm, fn)


@t.check('C: the tracer is back: exact counts, every id one start and one done')
def _(d):
    c = d['c']
    m = c['maps']
    for k, n in (('h1', C_H1), ('h2', C_H2)):
        expect_eq((c[k]['done'], c[k]['2xx']), (n, n), '%s (done, 2xx)' % k)
    expect(not c['lost'], 'lost: %r' % c['lost'])
    expect_eq(rel.scalar(m, 'nd') - rel.scalar(m, 'dummy'), C_H1 + C_H2, 'request-dones')
    expect_eq(rel.scalar(m, 'ns') - rel.scalar(m, 'dummy'), C_H1 + C_H2, 'request-starts')
    bad = rel.check_ids(m.get('s', {}), m.get('d', {}))
    expect(not bad, '\n'.join(bad))


@t.check('D: %d slow clients got 408, each reported by a request-done with 408' % SLOW)
def _(d):
    dd = d['d']
    expect_eq(dd['slow'], [408] * SLOW, 'what the slow clients got')
    dst = dd['maps'].get('dst', {})
    expect_eq(sum(1 for v in dst.values() if v == 408), SLOW, 'request-dones with 408')


@t.check('D: %d clients that dropped the response: %d request-dones with 200'
         % (2 * MIDRESP, 2 * MIDRESP))
def _(d):
    dd = d['d']
    expect_eq(dd['midresp'], [b'200'] * (2 * MIDRESP), 'status lines the clients read')
    expect_eq(dd['maps'].get('path', {}).get(('/big.bin?mid', 200), 0), 2 * MIDRESP,
              'request-dones for /big.bin with 200')


@t.check('D: every request Apache logged is reported with its status; every start has '
         'its done; dones without a start are rejected requests')
def _(d):
    dd = d['d']
    m = dd['maps']
    s, dn, dst = m.get('s', {}), m.get('d', {}), m.get('dst', {})
    log('D: %s; access log statuses %r' % (summary(m), dict(collections.Counter(
        row[0] for row in dd['access']))))
    expect(not dd['lost'], 'lost: %r' % dd['lost'])
    bad = rel.check_ids(s, dn, allow_unpaired_dones=len(dn))
    odd = collections.Counter(dst.get(i) for i in set(dn) - set(s))
    if set(odd) - REJECTED:
        bad.append('dones without a start, by status: %r' % dict(odd))
    expect(not bad, '\n'.join(bad))
    logged = collections.Counter(row[0] for row in dd['access'])
    probed = collections.Counter()
    for (proto, status), n in m.get('st', {}).items():
        probed[status] += n
    expect_eq(dict(probed), dict(logged), 'request-done statuses vs access log statuses')


@t.check('Apache answers after all client faults, and its error log shows no crash')
def _(d):
    expect(d['d']['serving'], 'no answer')
    expect(not d['crash'], d['crash'])


if __name__ == '__main__':
    t.run(setup, needs=rel.NEEDS)
