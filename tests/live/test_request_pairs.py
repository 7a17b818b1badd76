#!/usr/bin/python3
"""test_request_pairs.py: request-start and request-done come in pairs.

The invariant of DESIGN.md: while a tracer is attached, every request-start
is followed by exactly one request-done with the same id, and no id repeats
within a server run.  bpftrace runs test_request_pairs.bt (both probes,
attached by the module's path) while a private Apache (event MPM) serves:
50 requests on one keep-alive connection, 10 h2c streams on one connection,
6 concurrent connections of 10 requests, a rejected request, an h2c Upgrade,
and requests after a graceful restart.  A second Apache (prefork MPM) serves
3 connections held open at once, so 3 child processes, whose ids must not
collide either.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_request_pairs.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import collections
import os
import sys
import threading

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

KEEPALIVE = 50          # requests on one connection
H2_STREAMS = 10         # streams on one h2c connection
CONNS, PER_CONN = 6, 10  # concurrent connections, requests on each
AFTER_RESTART = 5       # requests after the graceful restart
PREFORK_CONNS = 3       # connections held open at once under prefork


def keepalive(httpd, n, prefix, agent):
    with harness.Http1(httpd.port) as c:
        statuses = [c.get('%s%d' % (prefix, i), agent=agent).status for i in range(n)]
        return c.local_port, statuses


def concurrent(httpd):
    results, errors = {}, []

    def worker(k):
        try:
            results[k] = keepalive(httpd, PER_CONN, '/static.txt?c=%d-' % k, 'conc')
        except Exception as e:       # reported by the check, not lost in a thread
            errors.append('connection %d: %r' % (k, e))
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return results, errors


def wait_settled(httpd, tracer, n):
    """Bounded wait for n client dones, every start's done, and n access log lines."""
    tracer.wait_for(lambda evs: harness.settled(evs, n), 10)
    harness.wait_until(lambda: len(httpd.client_access_log()) >= n, 5)


def event_run():
    s = {}
    with harness.Apache(mpm='event') as httpd:
        with harness.Tracer('test_request_pairs.bt') as tracer:
            s['ka_port'], s['ka_statuses'] = keepalive(httpd, KEEPALIVE, '/static.txt?ka=',
                                                       'ka')
            s['h2_statuses'], _ = harness.nghttp(
                [httpd.url('/static.txt?s=%d' % i) for i in range(H2_STREAMS)])
            s['conc'], s['conc_errors'] = concurrent(httpd)
            with harness.Http1(httpd.port) as c:
                s['garbage_port'] = c.local_port
                c.send(b'GARBAGE\r\n\r\n')
                s['garbage_status'] = c.response().status
            s['upgrade_statuses'], _ = harness.nghttp([httpd.url('/static.txt?up=1')], '-u')
            before = KEEPALIVE + H2_STREAMS + CONNS * PER_CONN + 2   # + GARBAGE, upgrade
            wait_settled(httpd, tracer, before)
            s['before_restart'] = {e['id'] for e in tracer.events()}
            s['old_children'] = httpd.children()
            s['new_children'] = httpd.graceful()
            s['after_port'], s['after_statuses'] = keepalive(
                httpd, AFTER_RESTART, '/static.txt?after=', 'after')
            wait_settled(httpd, tracer, before + AFTER_RESTART)
            s['access'] = httpd.client_access_log()
        s['events'] = tracer.events()
        s['lost'] = tracer.lost()
        s['stderr'] = tracer.stderr()
        s['errors'] = httpd.errors()
    return s


def prefork_run():
    s = {}
    with harness.Apache(mpm='prefork', start_servers=PREFORK_CONNS) as httpd:
        with harness.Tracer('test_request_pairs.bt') as tracer:
            conns = [harness.Http1(httpd.port) for _ in range(PREFORK_CONNS)]
            try:
                # all connections open at once: prefork serves each in its own process
                s['statuses'] = [c.get('/static.txt?pf=%d-%d' % (k, i), agent='pf').status
                                 for i in range(3) for k, c in enumerate(conns)]
                s['ports'] = [c.local_port for c in conns]
            finally:
                for c in conns:
                    c.close()
            wait_settled(httpd, tracer, 3 * PREFORK_CONNS)
            s['access'] = httpd.client_access_log()
        s['events'] = tracer.events()
        s['lost'] = tracer.lost()
    return s


def setup():
    return {'event': event_run(), 'prefork': prefork_run()}


def pairs(events):
    """{id: (starts, dones)} over all events."""
    by = collections.defaultdict(lambda: ([], []))
    for e in events:
        by[e['id']][0 if e['probe'] == 'start' else 1].append(e)
    return by


def check_pairing(events, allowed_unpaired_dones=()):
    """Every start has exactly one done with its id; ids do not repeat."""
    bad = []
    for i, (ss, ds) in sorted(pairs(events).items()):
        if len(ss) > 1 or len(ds) > 1:
            bad.append('id %d repeats: %d starts, %d dones' % (i, len(ss), len(ds)))
        elif ss and not ds:
            bad.append('start without done: ' + harness.fmt(ss[0]))
        elif ds and not ss and ds[0].get('rport') not in allowed_unpaired_dones:
            bad.append('done without start: ' + harness.fmt(ds[0]))
    expect(not bad, '\n'.join(bad[:30]))


def of_port(events, port):
    return [e for e in events if e.get('rport') == port]


@t.check('event MPM: the clients got the responses they expected')
def _(d):
    s = d['event']
    expect_eq(s['ka_statuses'], [200] * KEEPALIVE, 'keep-alive statuses')
    expect_eq(s['h2_statuses'], [200] * H2_STREAMS, 'h2 statuses')
    expect(not s['conc_errors'], '\n'.join(s['conc_errors']))
    expect_eq(sorted(st for _, sts in s['conc'].values() for st in sts), [200] * CONNS * PER_CONN,
              'concurrent statuses')
    expect_eq(s['garbage_status'], 400, 'GARBAGE')
    expect_eq(s['after_statuses'], [200] * AFTER_RESTART, 'statuses after the restart')


@t.check('event MPM: the tracer lost no event, and saw as many dones as the access log has lines')
def _(d):
    s = d['event']
    expect(not s['lost'], 'bpftrace lost events: %r' % s['lost'])
    expect_eq(len(harness.dones(harness.client_events(s['events']))), len(s['access']),
              'dones vs access log lines\nbpftrace stderr:\n%s' % s['stderr'])


@t.check('event MPM: every start has exactly one done with its id; no id repeats')
def _(d):
    s = d['event']
    check_pairing(s['events'], allowed_unpaired_dones=(s['garbage_port'],))


@t.check('a done follows its start: later, same process, same method and URI, elapsed not less')
def _(d):
    bad = []
    for i, (ss, ds) in pairs(d['event']['events']).items():
        if len(ss) != 1 or len(ds) != 1:
            continue
        st, dn = ss[0], ds[0]
        if not (dn['t'] > st['t'] and dn['pid'] == st['pid'] and dn['elapsed'] >= st['elapsed']
                and (dn['method'], dn['uri']) == (st['method'], st['uri'])):
            bad.append('%s\n  %s' % (harness.fmt(st), harness.fmt(dn)))
    expect(not bad, '\n'.join(bad[:20]))


@t.check('keep-alive: %d requests on one connection, %d pairs in order' % (KEEPALIVE, KEEPALIVE))
def _(d):
    s = d['event']
    evs = of_port(s['events'], s['ka_port'])
    want = ['/static.txt?ka=%d' % i for i in range(KEEPALIVE)]
    expect_eq([e['uri'] for e in harness.starts(evs)], want, 'start URIs in time order')
    expect_eq(sorted(e['uri'] for e in harness.dones(evs)), sorted(want), 'done URIs')
    expect_eq({e['id'] for e in harness.starts(evs)}, {e['id'] for e in harness.dones(evs)},
              'ids of starts vs ids of dones')
    expect_eq(len({e['id'] for e in evs}), KEEPALIVE, 'distinct ids')


@t.check('h2c: %d streams on one connection, %d pairs with protocol HTTP/2.0'
         % (H2_STREAMS, H2_STREAMS))
def _(d):
    evs = [e for e in d['event']['events'] if e.get('uri', '').startswith('/static.txt?s=')]
    expect_eq(collections.Counter(e['probe'] for e in evs),
              collections.Counter({'start': H2_STREAMS, 'done': H2_STREAMS}), 'events')
    expect_eq({e['protocol'] for e in evs}, {'HTTP/2.0'}, 'protocols')
    expect_eq(len({e['rport'] for e in evs}), 1, 'client ports (one connection)')
    expect_eq(len({e['id'] for e in evs}), H2_STREAMS, 'distinct ids')


@t.check('%d concurrent connections x %d requests: %d pairs, distinct ids'
         % (CONNS, PER_CONN, CONNS * PER_CONN))
def _(d):
    s = d['event']
    ports = {p for p, _ in s['conc'].values()}
    evs = [e for e in s['events'] if e.get('rport') in ports]
    expect_eq(len(harness.starts(evs)), CONNS * PER_CONN, 'starts')
    expect_eq(len(harness.dones(evs)), CONNS * PER_CONN, 'dones')
    expect_eq(len({e['id'] for e in evs}), CONNS * PER_CONN, 'distinct ids')


@t.check('a request rejected while reading has one done (status 400), and no unpaired start')
def _(d):
    s = d['event']
    evs = of_port(s['events'], s['garbage_port'])
    expect_eq([e['status'] for e in harness.dones(evs)], [400], 'dones for GARBAGE')
    expect(len(harness.starts(evs)) <= 1, 'starts for GARBAGE: %s' % harness.fmt_all(evs))


@t.check('h2c Upgrade: every start paired, one done per access log line')
def _(d):
    s = d['event']
    expect_eq(s['upgrade_statuses'], [200], 'status the client got')
    evs = [e for e in s['events'] if e.get('uri') == '/static.txt?up=1']
    check_pairing(evs)
    logged = sorted(st for st, _, uri, _ in s['access'] if uri == '/static.txt?up=1')
    expect_eq(sorted(e['status'] for e in harness.dones(evs)), logged,
              'done statuses vs access log statuses for the upgraded request\n'
              + harness.fmt_all(evs))


@t.check('graceful restart: new children fire both probes, ids never repeat')
def _(d):
    s = d['event']
    after = of_port(s['events'], s['after_port'])
    expect_eq(len(harness.starts(after)), AFTER_RESTART, 'starts after the restart')
    expect_eq(len(harness.dones(after)), AFTER_RESTART, 'dones after the restart')
    expect({e['pid'] for e in after} <= set(s['new_children']),
           'requests after the restart served by %r, new children are %r'
           % ({e['pid'] for e in after}, s['new_children']))
    reused = {e['id'] for e in after} & s['before_restart']
    expect(not reused, 'ids from before the restart used again: %r' % sorted(reused))


@t.check('prefork: %d child processes, every start paired, ids distinct across children'
         % PREFORK_CONNS)
def _(d):
    s = d['prefork']
    expect_eq(s['statuses'], [200] * (3 * PREFORK_CONNS), 'statuses')
    expect(not s['lost'], 'bpftrace lost events: %r' % s['lost'])
    evs = [e for e in s['events'] if e.get('rport') in s['ports']]
    expect_eq(len(harness.starts(evs)), 3 * PREFORK_CONNS, 'starts')
    expect_eq(len(harness.dones(evs)), 3 * PREFORK_CONNS, 'dones')
    pids = {e['pid'] for e in evs}
    expect_eq(len(pids), PREFORK_CONNS, 'processes serving the %d connections (%r)'
              % (PREFORK_CONNS, sorted(pids)))
    check_pairing(s['events'])
    expect_eq(len(harness.dones(harness.client_events(s['events']))), len(s['access']),
              'dones vs access log lines')


if __name__ == '__main__':
    t.run(setup)
