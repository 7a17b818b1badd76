#!/usr/bin/python3
"""test_load.py: request-start and request-done stay exact under load, on
every MPM.

For each MPM (event, worker, prefork) a private Apache with the built module
serves a bounded loopback load while bpftrace (load.bt, attached by the
module's path) counts the probes in maps:

  HTTP/1.1 keep-alive   h2load --h1, H1_N requests on CONNS connections,
                        round robin over a 200, a 404 (ErrorDocument, an
                        internal redirect) and a 301 (mod_dir)
  HTTP/1.0, no keep-alive
                        ab, AB_N requests, CONNS at a time, a new connection
                        each
  HTTP/2 (h2c)          h2load, H2_N requests on H2_CONNS connections with
                        H2_STREAMS streams each, over a 200, a 404 and a
                        DirectoryIndex (a subrequest)

Then: every request the clients sent completed; the tracer counted as many
request-starts and request-dones as the clients completed requests (Apache's
own "OPTIONS *" dummy requests aside); every id has exactly one start and
exactly one done; the statuses the probes reported, per protocol, are the
ones the clients counted; every conn-start has exactly one conn-done (the
connections at least as many as the clients opened), and conn-done's count
of requests is, connection by connection, the number of request-dones that
carry its conn_id; every 200's timeline is in order (0 < handler_us <=
first_byte_us <= last_byte_us <= elapsed_us), HTTP/1.x and HTTP/2; the
header and handler probes fired too; the error log shows no crash.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/reliability/test_load.py
Needs root, bpftrace, h2load and ab (skips otherwise, fails under CI=true).
Prints TAP.
"""

import collections
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rel  # noqa: E402
from rel import harness, expect, expect_eq, log  # noqa: E402

MPMS = ('event', 'worker', 'prefork')
CONNS = 64                  # HTTP/1.x connections at once
H1_N = 12000                # HTTP/1.1 keep-alive requests
AB_N = 6000                 # HTTP/1.0 requests, one connection each
H2_CONNS, H2_STREAMS = 16, 8
H2_N = 12000                # HTTP/2 requests
TOTAL = H1_N + AB_N + H2_N
CONNECTIONS = CONNS + AB_N + H2_CONNS   # the clients open at least these
CLOSE_SECS = 1.5            # for Apache to see the clients' last closes

H1_PATHS = ('/static.txt?h1', '/missing?h1', '/dir')
H2_PATHS = ('/static.txt?h2', '/missing?h2', '/dir/')

t = harness.Tap()


def run(mpm):
    r = {'mpm': mpm}
    with rel.load_apache(mpm, CONNS) as httpd:
        tracer = rel.MapTracer('load.bt')
        try:
            tracer.start()
            r['h1'] = rel.h2load([httpd.url(p) for p in H1_PATHS], H1_N, CONNS, h1=True)
            r['ab'] = rel.ab(httpd.url('/static.txt?ab'), AB_N, CONNS)
            r['h2'] = rel.h2load([httpd.url(p) for p in H2_PATHS], H2_N, H2_CONNS, m=H2_STREAMS)
            # log_transaction may run just after the client has its response
            harness.wait_until(lambda: len(httpd.client_access_log()) >= TOTAL, 20, 0.2)
            # and conn-done when Apache has seen the client close
            time.sleep(CLOSE_SECS)
        finally:
            tracer.stop()
        r['maps'] = tracer.maps()
        r['lost'] = tracer.lost()
        r['tracer_err'] = tracer.stderr()
        tracer.cleanup()
        r['access'] = len(httpd.client_access_log())
        r['crash'] = rel.no_crash(httpd)
        r['children'] = len(httpd.children())
    for k in ('h1', 'ab', 'h2'):
        log('%s %s: %d requests in %.1fs' % (mpm, k, H1_N if k == 'h1' else AB_N if k == 'ab'
                                             else H2_N, r[k]['secs']))
    return r


def setup():
    with rel.PrivateModule():
        return {mpm: run(mpm) for mpm in MPMS}


def client_ok(r):
    for k, n in (('h1', H1_N), ('h2', H2_N)):
        c = r[k]
        # h2load counts a 4xx or 5xx response as "failed"
        expect(c['done'] == n and not c['errored'] and not c['timeout']
               and c['failed'] == c['4xx'] + c['5xx']
               and c['2xx'] + c['3xx'] + c['4xx'] + c['5xx'] == n,
               '%s: %d requests, client: %s' % (k, n, {x: c[x] for x in (
                   'done', 'succeeded', 'failed', 'errored', 'timeout', '2xx', '3xx', '4xx',
                   '5xx')}))
    c = r['ab']
    expect(c['complete'] == AB_N and not c['failed'],
           'ab: %d complete, %d failed of %d\n%s' % (c['complete'], c['failed'], AB_N, c['out'][-800:]))


def counts_ok(r):
    m = r['maps']
    expect(not r['lost'], 'bpftrace lost events: %r' % r['lost'])
    ns, nd, dummy = rel.scalar(m, 'ns'), rel.scalar(m, 'nd'), rel.scalar(m, 'dummy')
    expect_eq((len(m.get('s', {})), len(m.get('d', {}))), (ns, nd),
              'ids in the maps vs probe hits (a full map drops ids)\n' + r['tracer_err'])
    log('%s: %d starts, %d dones, %d of them Apache\'s dummy requests; %d access log lines'
        % (r['mpm'], ns, nd, dummy, r['access']))
    expect_eq(nd - dummy, TOTAL, 'request-dones of client requests vs requests the clients completed')
    expect_eq(ns - dummy, TOTAL, 'request-starts of client requests vs requests the clients completed')
    expect_eq(r['access'], TOTAL, 'access log lines (client requests)')


def pairs_ok(r):
    m = r['maps']
    bad = rel.check_ids(m.get('s', {}), m.get('d', {}))
    expect(not bad, '\n'.join(bad))


def statuses_ok(r):
    st = r['maps'].get('st', {})
    got = collections.defaultdict(collections.Counter)
    for (proto, status), n in st.items():
        got[proto][status] += n
    log('%s: statuses by protocol: %s' % (r['mpm'], {p: dict(c) for p, c in got.items()}))

    def classes(counter):
        out = collections.Counter()
        for status, n in counter.items():
            out[rel.status_class(status)] += n
        return {k: v for k, v in out.items() if v}
    for proto, k in (('HTTP/1.1', 'h1'), ('HTTP/2.0', 'h2')):
        want = {c: r[k][c] for c in ('2xx', '3xx', '4xx', '5xx') if r[k][c]}
        expect_eq(classes(got[proto]), want, '%s status classes, probes vs h2load' % proto)
    expect_eq(dict(got['HTTP/1.0']), {200: r['ab']['complete'] - r['ab']['non2xx']},
              'HTTP/1.0 statuses, probes vs ab')
    expect_eq(set(got) - {'HTTP/1.1', 'HTTP/2.0', 'HTTP/1.0'}, set(), 'other protocols')
    # every kind of response the load asked for is there
    expect_eq(set(got['HTTP/1.1']), {200, 301, 404}, 'HTTP/1.1 statuses seen')
    expect_eq(set(got['HTTP/2.0']), {200, 404}, 'HTTP/2.0 statuses seen')


def conns_ok(r):
    m = r['maps']
    cs, ce, cn, rc = (m.get(k, {}) for k in ('cs', 'ce', 'cn', 'rc'))
    expect_eq((len(cs), len(ce)), (rel.scalar(m, 'ncs'), rel.scalar(m, 'nce')),
              'connection ids in the maps vs probe hits (a full map drops ids)')
    bad = rel.check_ids(cs, ce)
    expect(not bad, 'conn-start/conn-done: ' + '\n'.join(bad))
    log('%s: %d connections; request-header %d, response-header %d, request-handler %d'
        % (r['mpm'], len(ce), rel.scalar(m, 'nh'), rel.scalar(m, 'no'), rel.scalar(m, 'nr')))
    expect(len(ce) >= CONNECTIONS, '%d connections, the clients opened %d'
           % (len(ce), CONNECTIONS))
    diff = ['conn %s: conn-done says %d requests, %d request-dones carry it' % (c, n, rc.get(c, 0))
            for c, n in sorted(cn.items()) if rc.get(c, 0) != n]
    expect(not diff, '%d connections differ:\n%s' % (len(diff), '\n'.join(diff[:20])))
    expect_eq(set(rc) - set(cn), set(), 'request-dones on connections without conn-done')
    expect(rel.scalar(m, 'nh') >= TOTAL and rel.scalar(m, 'no') >= TOTAL
           and rel.scalar(m, 'nr') > 0, 'header and handler probes did not fire for every request')


def timeline_ok(r):
    m = r['maps']
    ok, bad = rel.scalar(m, 'timeline_ok'), rel.scalar(m, 'timeline_bad')
    oks = sum(n for (proto, status), n in m.get('st', {}).items() if status == 200)
    log('%s: %d request-dones of 200s with their timeline in order, %d not'
        % (r['mpm'], ok, bad))
    expect_eq(bad, 0, 'timelines out of order')
    expect_eq(ok, oks, 'timelines in order vs the 200s of client requests')


for mpm in MPMS:
    t.check('%s: the clients completed all %d requests (h1 keep-alive %d, h1.0 one per '
            'connection %d, h2c %d)' % (mpm, TOTAL, H1_N, AB_N, H2_N))(
        lambda d, mpm=mpm: client_ok(d[mpm]))
    t.check('%s: as many request-starts and request-dones as completed requests, none '
            'lost' % mpm)(lambda d, mpm=mpm: counts_ok(d[mpm]))
    t.check('%s: every id has exactly one start and one done' % mpm)(
        lambda d, mpm=mpm: pairs_ok(d[mpm]))
    t.check('%s: the statuses in request-done are the ones the clients saw' % mpm)(
        lambda d, mpm=mpm: statuses_ok(d[mpm]))
    t.check('%s: every conn-start has one conn-done; requests per connection as its '
            'request-dones' % mpm)(lambda d, mpm=mpm: conns_ok(d[mpm]))
    t.check('%s: every 200\'s timeline: 0 < handler_us <= first_byte_us <= last_byte_us '
            '<= elapsed_us' % mpm)(lambda d, mpm=mpm: timeline_ok(d[mpm]))
    t.check('%s: no crash in the error log' % mpm)(
        lambda d, mpm=mpm: expect(not d[mpm]['crash'], d[mpm]['crash']))

if __name__ == '__main__':
    t.run(setup, needs=rel.NEEDS)
