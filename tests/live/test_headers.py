#!/usr/bin/python3
"""test_headers.py: httpd:::request-header and response-header as a tracer
sees them.

A private Apache with the module and mod_headers (which adds a custom
response header, one added twice and a 3,000-byte one to /static.txt),
bpftrace running test_headers.bt, and requests with known headers: a custom
one, one sent twice, a 3,000-byte one and a cookie, over HTTP/1.1 (a raw
socket: exact bytes) and h2c (nghttp).  The checks compare what the probes
reported with what the client sent and received:

  request-header   the headers as Apache holds them: sent twice is one
                   header, the values joined by ", " (Apache merges them
                   while reading); long values as far as bpftrace's string
                   limit (BPFTRACE_STRLEN, 200 here) shows them
  response-header  headers_out then err_headers_out of the final request:
                   over HTTP/1.1 exactly what the client received but Date
                   and Server, which Apache writes straight to the wire;
                   over HTTP/2 what the client received plus the HTTP/1
                   connection headers (Connection) that HTTP/2 drops

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_headers.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import re
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
STRLEN = 200
BIG = ''.join(chr(ord('a') + i % 26) for i in range(3000))
RESP_BIG = BIG.upper()
SENT = [('Host', 'localhost'), ('User-Agent', 'hdr-test'), ('X-Usdt-Custom', 'hello'),
        ('X-Dup', 'one'), ('X-Dup', 'two'), ('X-Big', BIG), ('Cookie', 'k=v; k2=v2')]
EXTRA = """
LoadModule headers_module {moddir}/mod_headers.so
<Location /static.txt>
    Header always set X-Resp-Custom "from-server"
    Header always add X-Resp-Dup "a"
    Header always add X-Resp-Dup "b"
    Header always set X-Resp-Big "{big}"
</Location>
""".format(moddir=harness.APACHE_MODULES, big=RESP_BIG)
# HTTP/1 connection headers that HTTP/2 does not send
H2_DROPPED = {'connection', 'keep-alive', 'upgrade', 'transfer-encoding'}


def setup():
    with harness.Apache(extra=EXTRA) as httpd:
        with harness.Tracer('test_headers.bt', strlen=STRLEN) as tracer:
            with harness.Http1(httpd.port) as c:
                lines = ['GET /static.txt?h1=1 HTTP/1.1'] + ['%s: %s' % h for h in SENT]
                c.send(('\r\n'.join(lines) + '\r\n\r\n').encode())
                resp = c.response()
                h1 = {'port': c.local_port, 'status': resp.status, 'head': resp.raw_head}
            statuses, out = harness.nghttp([httpd.url('/static.txt?h2=1')],
                                           '-H', 'x-usdt-custom: h2', '-H', 'x-dup: a',
                                           '-H', 'x-dup: b', '-H', 'x-big: ' + BIG[:1000])
            h2 = {'status': statuses, 'log': out}
            tracer.wait_for(lambda evs: harness.settled(evs, 2), 10)
        events = tracer.events()
    return {'h1': h1, 'h2': h2, 'all': events, 'lost': tracer.lost(),
            'stderr': tracer.stderr(), 'errors': httpd.errors()}


def request_by(d, pred):
    dones = [e for e in harness.client_events(d['all']) if e['probe'] == 'done' and pred(e)]
    expect_eq(len(dones), 1, 'request-dones\n' + harness.fmt_all(d['all']))
    return dones[0]


def headers(d, probe, rid):
    return [(e.get('name'), e.get('value')) for e in d['all']
            if e['probe'] == probe and e['id'] == rid]


def shown(value):
    """value as bpftrace's str() shows it: at most STRLEN - 1 bytes."""
    return value[:STRLEN - 1]


def h1_received(d):
    lines = d['h1']['head'].decode('latin-1').split('\r\n')[1:]
    return [tuple(x.strip() for x in l.split(':', 1)) for l in lines]


def h2_sent_and_received(d):
    """(sent headers, received headers) of the h2 stream, from nghttp -v."""
    sent, recv = [], []
    block = None
    for line in d['h2']['log'].splitlines():
        if re.search(r'send HEADERS frame', line):
            block = sent
            continue
        m = re.match(r'\s{10}([^\s:][^:]*|:[a-z]+): (.*)$', line)
        if block is sent and m:
            sent.append((m.group(1), m.group(2)))
            continue
        if not line.startswith('          '):
            block = None
        m = re.match(r'\[\s*[\d.]+\] recv \(stream_id=\d+\) ([^:\s][^:]*): (.*)$', line)
        if m:
            recv.append((m.group(1), m.group(2)))
    return sent, recv


@t.check('the tracer saw header events and lost none; both clients got 200')
def _(d):
    expect(any(e['probe'] == 'request-header' for e in d['all']),
           'no request-header event\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    expect_eq((d['h1']['status'], d['h2']['status']), (200, [200]), 'statuses')


@t.check('HTTP/1.1 request-header: the headers sent, in order, a header sent twice merged')
def _(d):
    done = request_by(d, lambda e: e.get('rport') == d['h1']['port'])
    want = [('Host', 'localhost'), ('User-Agent', 'hdr-test'), ('X-Usdt-Custom', 'hello'),
            ('X-Dup', 'one, two'), ('X-Big', shown(BIG)), ('Cookie', 'k=v; k2=v2')]
    expect_eq(headers(d, 'request-header', done['id']), want, 'request headers')


@t.check('a 3,000-byte header value shows as far as the string limit (199 bytes)')
def _(d):
    done = request_by(d, lambda e: e.get('rport') == d['h1']['port'])
    big = dict(headers(d, 'request-header', done['id'])).get('X-Big', '')
    expect_eq(len(big), STRLEN - 1, 'length of X-Big as traced')
    expect(BIG.startswith(big), 'X-Big is not a prefix of what was sent: %r' % big[:80])
    resp_big = dict(headers(d, 'response-header', done['id'])).get('X-Resp-Big', '')
    expect_eq(resp_big, shown(RESP_BIG), 'X-Resp-Big as traced')


@t.check('HTTP/1.1 response-header: what the client received, less Date and Server')
def _(d):
    done = request_by(d, lambda e: e.get('rport') == d['h1']['port'])
    got = [(n, shown(v)) for n, v in headers(d, 'response-header', done['id'])]
    received = [(n, shown(v)) for n, v in h1_received(d) if n not in ('Date', 'Server')]
    expect_eq(got, received, 'response headers (traced vs received)')
    expect([n for n, _ in got].count('X-Resp-Dup') == 2, 'X-Resp-Dup twice: %r' % got)
    expect(('X-Resp-Custom', 'from-server') in got, 'X-Resp-Custom: %r' % got)


@t.check('h2c request-header: the headers nghttp sent, duplicates merged, Host from :authority')
def _(d):
    done = request_by(d, lambda e: e.get('uri') == '/static.txt?h2=1')
    sent, _ = h2_sent_and_received(d)
    expect(sent, 'no sent headers in the nghttp log:\n' + d['h2']['log'][:2000])
    want, seen = [], {}
    for n, v in sent:
        if n == ':authority':
            continue
        if n.startswith(':'):
            continue
        if n in seen:
            want[seen[n]] = (n, want[seen[n]][1] + ', ' + v)
        else:
            seen[n] = len(want)
            want.append((n, v))
    want.append(('host', dict(sent)[':authority']))
    # names compared as HTTP compares them: mod_http2 writes them in
    # Apache's capitalization
    got = [(n.lower(), v) for n, v in headers(d, 'request-header', done['id'])]
    expect_eq(sorted(got), sorted((n, shown(v)) for n, v in want), 'h2 request headers')
    expect(('x-dup', 'a, b') in got, 'x-dup merged: %r' % got)


@t.check('h2c response-header: what the client received, plus HTTP/1 connection headers')
def _(d):
    done = request_by(d, lambda e: e.get('uri') == '/static.txt?h2=1')
    _, received = h2_sent_and_received(d)
    got = [(n.lower(), shown(v)) for n, v in headers(d, 'response-header', done['id'])]
    expect_eq(sorted(x for x in got if x[0] not in H2_DROPPED),
              sorted((n, shown(v)) for n, v in received if not n.startswith(':')),
              'h2 response headers (traced, less connection headers, vs received)')


@t.check('header events come between their request-start and request-done')
def _(d):
    by = {}
    for e in d['all']:
        by.setdefault(e['id'], []).append(e)
    for rid, evs in by.items():
        kinds = [e['probe'] for e in evs]
        if 'start' not in kinds or 'done' not in kinds:
            continue
        start = [e['t'] for e in evs if e['probe'] == 'start'][0]
        done = [e['t'] for e in evs if e['probe'] == 'done'][0]
        for e in evs:
            if e['probe'] == 'request-header':
                expect(start < e['t'] < done, 'request-header outside its request: %r' % e)
            if e['probe'] == 'response-header':
                last_rq = max([x['t'] for x in evs if x['probe'] == 'request-header'] or [start])
                expect(last_rq < e['t'] < done, 'response-header out of place: %r' % e)


if __name__ == '__main__':
    t.run(setup)
