#!/usr/bin/python3
"""test_conn.py: httpd:::conn-start and conn-done as a tracer sees them.

A private Apache with the module and mod_ssl (a self-signed certificate
made here with openssl), bpftrace running test_conn.bt, and connections of
every kind, each with a known number of requests: HTTP/1.1 keep-alive (3),
HTTP/1.1 with "Connection: close" (1), HTTP/1.0 (1), h2c (3 streams),
HTTPS with HTTP/1.1 (2) and h2 over TLS (2).  The checks judge what the
probes reported: conn-start/conn-done pairs, requests per connection, the
requests' conn_id and conn_request (an HTTP/2 stream: its stream id),
addresses and ports, ages, and TLS protocol, cipher and SNI.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_conn.py
Needs root, bpftrace and openssl (skips otherwise, fails under CI=true).
Prints TAP.
"""

import os
import re
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
TLS_FLAG = 4


def setup():
    certdir = tempfile.mkdtemp(prefix='usdt-cert-')
    try:
        crt, key = harness.make_cert(certdir)
        tls_port = harness.free_port()
        with harness.Apache(extra=harness.tls_conf(tls_port, crt, key)) as httpd:
            with harness.Tracer('test_conn.bt', strlen=64) as tracer:
                sent = traffic(httpd, tls_port)
                ports = [sent[k]['port'] for k in ('ka', 'close', 'http10', 'tls1', 'tls2')]
                # conn-done fires when the connection's pool goes, after
                # the close: wait (bounded) for every one we know
                tracer.wait_for(lambda evs: all(
                    any(e['probe'] == 'conn-done' and e.get('rport') == p for e in evs)
                    for p in ports) and len(h2c_done(evs)) >= 1, 15)
            events = tracer.events()
            return {'httpd': httpd, 'tls_port': tls_port, 'sent': sent, 'all': events,
                    'lost': tracer.lost(), 'stderr': tracer.stderr(),
                    'errors': httpd.errors()}
    finally:
        shutil.rmtree(certdir, ignore_errors=True)


def traffic(httpd, tls_port):
    """One connection of each kind; what each client saw."""
    sent = {}
    with harness.Http1(httpd.port) as c:
        st = [c.get('/static.txt?ka=%d' % i).status for i in range(3)]
        sent['ka'] = {'port': c.local_port, 'requests': 3, 'statuses': st}
    with harness.Http1(httpd.port) as c:
        st = [c.get('/static.txt?close=1', headers=['Connection: close']).status]
        sent['close'] = {'port': c.local_port, 'requests': 1, 'statuses': st}
    with harness.Http1(httpd.port) as c:
        c.send(b'GET /static.txt?v=10 HTTP/1.0\r\n\r\n')
        st = [c.response().status]
        sent['http10'] = {'port': c.local_port, 'requests': 1, 'statuses': st}
    statuses, out = harness.nghttp([httpd.url('/static.txt?h2c=%d' % i) for i in range(3)])
    sent['h2c'] = {'requests': 3, 'statuses': statuses,
                   'streams': sorted(int(s) for s in
                                     re.findall(r'recv \(stream_id=(\d+)\) :status: ', out))}
    base = 'https://localhost:%d' % tls_port
    resolve = 'localhost:%d:127.0.0.1' % tls_port
    for name, proto in (('tls1', '--http1.1'), ('tls2', '--http2')):
        got = harness.curl_many(['%s/static.txt?%s=%d' % (base, name, i) for i in range(2)],
                                '-k', proto, '--resolve', resolve)
        expect_eq(len({p for _, p in got}), 1, 'curl %s used one connection: %r' % (proto, got))
        sent[name] = {'port': got[0][1], 'requests': 2, 'statuses': [s for s, _ in got]}
    return sent


def h2c_done(evs):
    """conn-done of the h2c connection: the one its HTTP/2 requests name."""
    ids = {e.get('conn_id') for e in evs if e['probe'] in ('start', 'done')
           and e.get('protocol') == 'HTTP/2.0' and not e.get('tls_protocol')}
    return [e for e in evs if e['probe'] == 'conn-done' and e['id'] in ids]


def conns(d, probe):
    return [e for e in d['all'] if e['probe'] == probe]


def conn_of(d, name, probe='conn-done'):
    port = d['sent'][name]['port']
    evs = [e for e in conns(d, probe) if e.get('rport') == port]
    expect_eq(len(evs), 1, '%s events from client port %d (%s)\n%s'
              % (probe, port, name, harness.fmt_all(conns(d, probe))))
    return evs[0]


def requests_on(d, conn_id, probe='done'):
    return [e for e in d['all'] if e['probe'] == probe and e.get('conn_id') == conn_id]


@t.check('the tracer saw conn-start and conn-done events and lost none; clients got 200s')
def _(d):
    expect(conns(d, 'conn-start') and conns(d, 'conn-done'),
           'no connection event\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    for name, s in sorted(d['sent'].items()):
        expect_eq(s['statuses'], [200] * s['requests'], 'statuses the %s client got' % name)


@t.check('every conn-start has exactly one conn-done with the same conn_id, and back')
def _(d):
    starts = [e['id'] for e in conns(d, 'conn-start')]
    dones = [e['id'] for e in conns(d, 'conn-done')]
    expect_eq(len(starts), len(set(starts)), 'conn-start ids repeat: %r' % starts)
    expect_eq(len(dones), len(set(dones)), 'conn-done ids repeat: %r' % dones)
    expect_eq(sorted(starts), sorted(dones), 'conn-start ids vs conn-done ids')
    expect(0 not in starts, 'a conn_id 0')
    for e in conns(d, 'conn-start'):
        later = [x for x in conns(d, 'conn-done') if x['id'] == e['id']]
        expect(later[0]['t'] > e['t'], 'conn-done before its conn-start: %r' % e)


@t.check('conn-done reports the requests the client sent on each connection')
def _(d):
    for name in ('ka', 'close', 'http10', 'tls1', 'tls2'):
        e = conn_of(d, name)
        want = d['sent'][name]['requests']
        expect_eq(e.get('requests'), want, 'requests (arg1) of %s' % name)
        expect_eq(e.get('r_requests'), want, 'requests (record) of %s' % name)
    h2 = h2c_done(d['all'])
    expect_eq(len(h2), 1, 'conn-done of the h2c connection\n%s' % harness.fmt_all(conns(d, 'conn-done')))
    expect_eq(h2[0].get('requests'), 3, 'requests of the h2c connection (3 streams)')


@t.check('requests carry their connection\'s conn_id and their place on it (1..n)')
def _(d):
    for name in ('ka', 'close', 'http10', 'tls1'):
        cid = conn_of(d, name)['id']
        for probe in ('start', 'done'):
            reqs = requests_on(d, cid, probe)
            expect_eq(sorted(e.get('conn_request') for e in reqs),
                      list(range(1, d['sent'][name]['requests'] + 1)),
                      'conn_request of the %s requests at %s (conn %d)' % (name, probe, cid))
            expect(all(e.get('rport') == d['sent'][name]['port'] for e in reqs),
                   '%s: a request of conn %d from another port' % (name, cid))


@t.check('an HTTP/2 connection\'s streams carry its conn_id, conn_request = stream id')
def _(d):
    h2 = h2c_done(d['all'])
    expect_eq(len(h2), 1, 'h2c conn-done')
    reqs = requests_on(d, h2[0]['id'])
    expect_eq(len(reqs), 3, 'request-dones of the h2c connection')
    expect_eq(sorted(e.get('conn_request') for e in reqs), d['sent']['h2c']['streams'],
              'conn_request vs the stream ids nghttp saw')
    tls2 = conn_of(d, 'tls2')
    reqs = requests_on(d, tls2['id'])
    expect_eq(len(reqs), 2, 'request-dones of the h2-over-TLS connection')
    expect(all(e.get('protocol') == 'HTTP/2.0' for e in reqs), 'not HTTP/2: %r' % reqs)
    expect(all(e.get('conn_request', 0) % 2 == 1 for e in reqs),
           'a client stream id is odd: %r' % [e.get('conn_request') for e in reqs])


@t.check('addresses and ports: native arguments agree with the record and the client')
def _(d):
    port = d['httpd'].port
    for name in ('ka', 'close', 'http10', 'tls1', 'tls2'):
        for probe in ('conn-start', 'conn-done'):
            e = conn_of(d, name, probe)
            expect_eq(e.get('raddr'), '127.0.0.1', '%s %s raddr' % (name, probe))
            expect_eq(e.get('r_raddr'), e.get('raddr'), '%s %s record raddr' % (name, probe))
            expect_eq(e.get('laddr'), '127.0.0.1', '%s %s laddr' % (name, probe))
            expect_eq(e.get('r_laddr'), e.get('laddr'), '%s %s record laddr' % (name, probe))
            expect_eq(e.get('r_conn_id'), e['id'], '%s %s record conn_id' % (name, probe))
            expect_eq(e.get('lport'), d['tls_port'] if name.startswith('tls') else port,
                      '%s %s lport' % (name, probe))
            expect_eq(e.get('ipversion'), 4, '%s %s ipversion' % (name, probe))
            expect_eq(e.get('ptr_size'), 8, '%s %s ptr_size' % (name, probe))


@t.check('conn-start: requests 0 and elapsed 0; conn-done: elapsed covers its requests')
def _(d):
    for e in conns(d, 'conn-start'):
        expect_eq((e.get('requests'), e.get('elapsed'), e.get('r_elapsed_us')), (0, 0, 0),
                  'conn-start %d requests, elapsed, record elapsed' % e['id'])
    for e in conns(d, 'conn-done'):
        expect_eq(e.get('r_elapsed_us'), e.get('elapsed'), 'conn-done %d elapsed' % e['id'])
        reqs = requests_on(d, e['id'])
        longest = max([r.get('elapsed', 0) for r in reqs] or [0])
        expect(e.get('elapsed', 0) >= longest,
               'conn %d: elapsed %s < a request\'s %s' % (e['id'], e.get('elapsed'), longest))


@t.check('TLS: conn-done has protocol, cipher and SNI; conn-start and requests the TLS flag')
def _(d):
    for name in ('tls1', 'tls2'):
        done, start = conn_of(d, name), conn_of(d, name, 'conn-start')
        expect(done.get('flags', 0) & TLS_FLAG, '%s conn-done flags %r' % (name, done.get('flags')))
        expect(start.get('flags', 0) & TLS_FLAG, '%s conn-start flags %r' % (name, start.get('flags')))
        expect(re.match(r'^TLSv1\.[23]$', done.get('tls_protocol', '')),
               '%s tls_protocol %r' % (name, done.get('tls_protocol')))
        expect(done.get('tls_cipher'), '%s: no cipher' % name)
        expect_eq(done.get('sni'), 'localhost', '%s SNI' % name)
        for r in requests_on(d, done['id']):
            expect(r.get('flags', 0) & TLS_FLAG, '%s request flags %r' % (name, r.get('flags')))
            expect_eq(r.get('tls_protocol'), done.get('tls_protocol'), '%s request tls_protocol' % name)
    for name in ('ka', 'close', 'http10'):
        e = conn_of(d, name)
        expect_eq((e.get('flags', 0) & TLS_FLAG, e.get('tls_protocol'), e.get('tls_cipher'),
                   e.get('sni')), (0, '', '', ''), '%s: TLS fields without TLS' % name)
        for r in requests_on(d, e['id']):
            expect_eq((r.get('flags', 0) & TLS_FLAG, r.get('tls_protocol')), (0, ''),
                      '%s request TLS fields' % name)


@t.check('keep-alive flag: set on kept-alive requests, not on HTTP/1.0 or Connection: close')
def _(d):
    ka = sorted(requests_on(d, conn_of(d, 'ka')['id']), key=lambda e: e['conn_request'])
    expect(all(e.get('flags', 0) & 2 for e in ka), 'ka flags %r' % [e.get('flags') for e in ka])
    for name in ('close', 'http10'):
        for e in requests_on(d, conn_of(d, name)['id']):
            expect_eq(e.get('flags', 0) & 2, 0, '%s keep-alive flag' % name)


@t.check('request and connection ids never repeat and are never 0')
def _(d):
    req_ids = {e['id'] for e in d['all'] if e['probe'] in ('start', 'done')}
    conn_ids = {e['id'] for e in conns(d, 'conn-start')}
    expect(0 not in req_ids | conn_ids, 'an id 0')
    expect(not req_ids & conn_ids, 'request ids that are conn ids: %r' % (req_ids & conn_ids))


if __name__ == '__main__':
    t.run(setup, needs=harness.LIVE + ('openssl',))
