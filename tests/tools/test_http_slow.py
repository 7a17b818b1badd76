#!/usr/bin/python3
"""test_http_slow.py: examples/http-slow.bt against a real Apache.

Two private Apache servers (A and B) with the built module; the tool runs
as an operator runs it on a local build, limited to A and with a 250 ms
threshold (USDT_MODULE=... examples/http-slow.bt 250 PID_OF_A), and a second
copy with no argument (100 ms, every server).  Fast requests, requests made
slow by their client (late headers over IPv4, a late POST body over IPv6,
one under the threshold), a request A rejects after RequestReadTimeout's
2 s (408), and a slow request to B.  The checks parse each reported
request's five lines and compare every field with what the client sent
and saw.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_slow.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import re
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

MS = 250
# longer than bpftrace's default 64-byte strings: the tool raises them
AGENT_V4 = 'usdt-tools/v4 (slow headers) ' + 'x' * 70
LINES = [
    ('head', r'^(\d\d:\d\d:\d\d) request (\d+): (\d+) ms, status (\d+), (\S*) (.*)$',
     ('time', 'id', 'ms', 'status', 'method', 'uri')),
    ('addr', r'^request (\d+):   client (.*):(\d+), server (.*):(\d+), IPv(\d), Apache pid (\d+)$',
     ('id', 'raddr', 'rport', 'laddr', 'lport', 'ipversion', 'pid')),
    ('proto', r'^request (\d+):   protocol (.*), Host: (.*)$', ('id', 'protocol', 'host')),
    ('vhost', r'^request (\d+):   virtual host (.*), User-Agent: (.*)$', ('id', 'vhost', 'agent')),
    ('bytes', r'^request (\d+):   bytes received (\d+), sent (\d+), elapsed (\d+) us$',
     ('id', 'received', 'sent', 'elapsed')),
]
NUMERIC = {'id', 'ms', 'status', 'rport', 'lport', 'ipversion', 'pid', 'received', 'sent',
           'elapsed'}


def parse(lines):
    """{id: {field: value, 'lines': [kind, ...]}} from the tool's output."""
    reqs = {}
    for l in lines:
        for kind, rx, names in LINES:
            m = re.match(rx, l)
            if m:
                vals = dict(zip(names, m.groups()))
                for k in NUMERIC & set(vals):
                    vals[k] = int(vals[k])
                r = reqs.setdefault(vals['id'], {'lines': []})
                r['lines'].append(kind)
                r.update(vals)
                break
        else:
            if l.strip() and 'Hit Ctrl-C' not in l:
                raise harness.Failure('a line in no known format: %r' % l)
    return reqs


def complete(lines):
    return [r for r in parse(lines).values() if len(r['lines']) == len(LINES)]


def setup():
    with harness.Apache() as a, harness.Apache() as b:
        with toolrun.Tool('http-slow.bt', MS, a.pid) as tool, \
                toolrun.Tool('http-slow.bt') as default:
            sent = {}
            children = set(a.children())
            # headers that never end: A answers 408 after RequestReadTimeout's 2 s
            hung = harness.Http1(a.port, timeout=10)
            hung.send(b'GET /static.txt?hung=1 HTTP/1.1\r\nHost: localhost\r\n')
            sent['408'] = [None, hung.local_port]
            reader = threading.Thread(target=lambda: sent['408'].__setitem__(
                0, hung.response().status))
            reader.start()
            with harness.Http1(a.port) as c:
                for uri in ('/static.txt?fast=1', '/missing?fast=1'):
                    c.get(uri, agent='fast')
            sent['v4'] = toolrun.slow_request(a.port, delay=0.5, target='/static.txt?slow=v4',
                                              agent=AGENT_V4,
                                              headers=['X-Pad: y'])
            sent['v6'] = toolrun.slow_request(a.port, '::1', target='/static.txt?slow=v6',
                                              agent='usdt-tools/v6', body=b'k=v',
                                              body_delay=0.5)
            sent['under'] = toolrun.slow_request(a.port, delay=0.1,
                                                 target='/static.txt?slow=under')
            sent['b'] = toolrun.slow_request(b.port, delay=0.3, target='/static.txt?slow=b')
            reader.join(10)
            hung.close()
            tool.wait_for(lambda ls: len(complete(ls)) >= 3, 10)
            default.wait_for(lambda ls: len([r for r in complete(ls)
                                             if r['lport'] in (a.port, b.port)]) >= 5, 10)
            children |= set(a.children())
        return {'a': a, 'b': b, 'sent': sent, 'out': tool.body(), 'default': default.body(),
                'children': children, 'stderr': tool.stderr() + default.stderr(),
                'size': len(harness.DOCS['static.txt'])}


def by_uri(d, out='out'):
    # the run for every server also sees other tests' servers: keep A's and B's
    return {r.get('uri'): r for r in parse(d[out]).values()
            if r.get('lport') in (d['a'].port, d['b'].port)}


@t.check('BEGIN says what is traced and how to stop; the threshold defaults to 100 ms')
def _(d):
    expect_eq(d['out'][0], 'Tracing Apache requests slower than %d ms (mod_usdt), server PID %d. '
              'Hit Ctrl-C to end.' % (MS, d['a'].pid), 'first line, http-slow.bt %d PID' % MS)
    expect_eq(d['default'][0], 'Tracing Apache requests slower than 100 ms (mod_usdt), every '
              'server. Hit Ctrl-C to end.', 'first line, http-slow.bt')


@t.check('each request in five lines, each line with its request id')
def _(d):
    for out in ('out', 'default'):
        for r in by_uri(d, out).values():
            expect_eq(r['lines'], [k for k, _, _ in LINES], 'lines of request %d' % r['id'])


@t.check('exactly the requests of A slower than %d ms (one rejected with 408)' % MS)
def _(d):
    expect_eq(d['sent']['408'][0], 408, 'status the hung client got')
    got = sorted(by_uri(d))
    expect_eq(got, ['/static.txt?hung=1', '/static.txt?slow=v4', '/static.txt?slow=v6'],
              'URIs reported\n' + '\n'.join(d['out']))


@t.check('the default threshold (100 ms) and every server: B\'s and the 100 ms request too')
def _(d):
    got = sorted(by_uri(d, 'default'))
    expect_eq(got, ['/static.txt?hung=1', '/static.txt?slow=b', '/static.txt?slow=under',
                    '/static.txt?slow=v4', '/static.txt?slow=v6'], 'URIs reported')


@t.check('slow headers over IPv4: every field of the record, a 99-byte User-Agent whole')
def _(d):
    r = by_uri(d)['/static.txt?slow=v4']
    status, cport = d['sent']['v4']
    want = {'status': status, 'method': 'GET', 'raddr': '127.0.0.1', 'rport': cport,
            'laddr': '127.0.0.1', 'lport': d['a'].port, 'ipversion': 4, 'protocol': 'HTTP/1.1',
            'host': 'localhost', 'vhost': harness.SERVER_NAME,
            'agent': AGENT_V4, 'received': 0, 'sent': d['size']}
    expect_eq({k: r[k] for k in want}, want, 'fields')


@t.check('slow body over IPv6: POST, ::1, its agent')
def _(d):
    r = by_uri(d)['/static.txt?slow=v6']
    status, cport = d['sent']['v6']
    # bytes received is r->read_length, what a handler read: the static
    # file handler discards the body unread, so 0
    want = {'status': status, 'method': 'POST', 'raddr': '::1', 'rport': cport, 'laddr': '::1',
            'lport': d['a'].port, 'ipversion': 6, 'agent': 'usdt-tools/v6', 'received': 0,
            'sent': d['size'], 'protocol': 'HTTP/1.1', 'vhost': harness.SERVER_NAME}
    expect_eq({k: r[k] for k in want}, want, 'fields')


@t.check('latency: ms and elapsed us agree, at least the client\'s delay, and a child of A served')
def _(d):
    for uri, r in by_uri(d).items():
        expect_eq(r['ms'], r['elapsed'] // 1000, 'ms vs elapsed of ' + uri)
        expect(MS * 1000 <= r['elapsed'] < 10e6, '%s: elapsed %d us' % (uri, r['elapsed']))
        expect(r['pid'] in d['children'], '%s: pid %d not a child of A %r'
               % (uri, r['pid'], sorted(d['children'])))
    # mod_reqtimeout's 2 s start in pre_read_request, before Apache reads the
    # request line; r->request_time, which elapsed counts from, is taken
    # after it (server/protocol.c, read_request_line).  So the 408's elapsed
    # is 2 s less the reading of that line: a hair under 2 s on a busy machine
    # (seen in CI).  It must still be the timeout's, not a client's close.
    hung = by_uri(d)['/static.txt?hung=1']['elapsed']
    expect(1900000 <= hung, 'the 408 after RequestReadTimeout\'s 2 s: elapsed %d us' % hung)


@t.check('the rejected request: status 408, and the request line Apache had read')
def _(d):
    r = by_uri(d)['/static.txt?hung=1']
    expect_eq((r['status'], r['method'], r['rport'], r['raddr']),
              (408, 'GET', d['sent']['408'][1], '127.0.0.1'), 'status, method, client')


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
