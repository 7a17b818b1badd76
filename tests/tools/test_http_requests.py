#!/usr/bin/python3
"""test_http_requests.py: examples/http-requests.bt against a real Apache.

Two private Apache servers (A and B) with the built module.  The tool runs
twice at once, as an operator runs it on a local build
(USDT_MODULE=... examples/http-requests.bt [PID]): once for every server,
once limited to A's parent pid.  A gets a known mix (IPv4 keep-alive GET,
HEAD, POST, a 404, a 301, IPv6, a request Apache rejects, a slow one), B
one request.  The checks parse the tool's columns, as the original
http-requests.d printed them, and compare them with what the clients sent
and saw.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_requests.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

HEADER = '  time    latency  sta            local                 remote        method uri'
SLOW = 0.4          # seconds the slow request's headers are late
# longer than bpftrace's default 64-byte strings: the tool raises them to 80
LONG_URI = '/static.txt?pad=' + 'p' * 60


def setup():
    with harness.Apache() as a, harness.Apache() as b:
        with toolrun.Tool('http-requests.bt') as every, \
                toolrun.Tool('http-requests.bt', a.pid) as only_a:
            sent = []           # (status, method, uri, client addr, client port)
            with harness.Http1(a.port, '127.0.0.1') as c:
                for method, uri, body in (('GET', '/static.txt?a=1', b''),
                                          ('HEAD', '/static.txt', b''),
                                          ('POST', '/static.txt', b'k=v'),
                                          ('GET', '/missing?x=1', b''),
                                          ('GET', LONG_URI, b''),
                                          ('GET', '/dir', b'')):
                    r = c.request(method, uri, agent='usdt-tools', body=body)
                    sent.append((r.status, method, uri, '127.0.0.1', c.local_port))
            status, port = harness.curl(a.url('/static.txt?v=6', '::1'))
            sent.append((status, 'GET', '/static.txt?v=6', '::1', port))
            with harness.Http1(a.port, '127.0.0.1') as c:
                c.send(b'GARBAGE\r\n\r\n')
                rejected = (c.response().status, c.local_port)
            status, port = toolrun.slow_request(a.port, delay=SLOW)
            sent.append((status, 'GET', '/static.txt?slow=1', '127.0.0.1', port))
            status, port = harness.curl(b.url('/static.txt?b=1'))
            sent_b = (status, port)
            # log_transaction may run after the client has its response
            n_a = len(sent) + 1
            every.wait_for(lambda ls: count(ls, a.port) >= n_a and count(ls, b.port) >= 1)
            only_a.wait_for(lambda ls: count(ls, a.port) >= n_a)
            elapsed = time.monotonic() - every.started
        return {'a': a, 'b': b, 'sent': sent, 'rejected': rejected, 'sent_b': sent_b,
                'every': every.body(), 'only_a': only_a.body(), 'elapsed': elapsed,
                'stderr': every.stderr() + only_a.stderr(), 'a_pid': a.pid}


def parse(line):
    """One line of the tool, cut at the original's column positions."""
    if len(line) < 77 or line[15:19] != 'us  ' or line[39] != ':' or line[62] != ':' \
            or line[68:70] != '  ':
        raise harness.Failure('not in the columns of the header:\n%s\n%s' % (HEADER, line))
    try:
        # a method longer than its 6 columns (OPTIONS) pushes the URI right
        rest = line[70:]
        method = rest[:6].strip() if rest[6] == ' ' else rest.split(' ')[0]
        return {'t': float(line[0:6]), 'latency': int(line[7:15]), 'status': int(line[19:22]),
                'laddr': line[23:39].strip(), 'lport': int(line[40:45]),
                'raddr': line[46:62].strip(), 'rport': int(line[63:68]),
                'method': method, 'uri': rest[max(7, len(method) + 1):], 'line': line}
    except ValueError:
        raise harness.Failure('a column is not a number:\n%s\n%s' % (HEADER, line))


def rows(lines, port=None):
    out = []
    for l in lines:
        if l.strip() and l != HEADER and 'Hit Ctrl-C' not in l:
            r = parse(l)
            if port is None or r['lport'] == port:
                out.append(r)
    return out


def count(lines, port):
    """Lines for the server on port, while the tool runs (no checks)."""
    return len([l for l in lines if len(l) > 77 and l[39] == ':' and l[40:45].strip() == str(port)])


def client_rows(lines, port):
    return [r for r in rows(lines, port) if not (r['method'] == 'OPTIONS' and r['uri'] == '*')]


@t.check('BEGIN says what is traced and how to stop, then the original header')
def _(d):
    expect_eq(d['every'][:2], ['Tracing Apache requests (mod_usdt), every server. Hit Ctrl-C to end.',
                               HEADER], 'first lines, every server')
    expect_eq(d['only_a'][:2], ['Tracing Apache requests (mod_usdt), server PID %d. Hit Ctrl-C '
                                'to end.' % d['a_pid'], HEADER], 'first lines, one server')


@t.check('every line is in the header\'s columns (time, latency, sta, local, remote, method, uri)')
def _(d):
    for lines in (d['every'], d['only_a']):
        rows(lines[2:])


@t.check('one line per request of server A: its status, method and URI (a 76-byte one whole)')
def _(d):
    port = d['a'].port
    got = sorted((r['status'], r['method'], r['uri']) for r in client_rows(d['every'][2:], port)
                 if r['rport'] != d['rejected'][1])
    want = sorted((s, m, u) for s, m, u, _, _ in d['sent'])
    expect_eq(got, want, 'status, method, uri of A\'s lines\n' + '\n'.join(d['every']))


@t.check('remote is the client\'s address and socket port, local the server\'s')
def _(d):
    port = d['a'].port
    for status, method, uri, addr, cport in d['sent']:
        [r] = [x for x in client_rows(d['every'][2:], port)
               if (x['method'], x['uri']) == (method, uri)]
        expect_eq((r['raddr'], r['rport'], r['laddr'], r['lport']), (addr, cport, addr, port),
                  'remote address and port, local address and port of %s %s' % (method, uri))


@t.check('a request Apache rejects (400) has its line, from the client\'s port')
def _(d):
    status, cport = d['rejected']
    got = [r for r in rows(d['every'][2:], d['a'].port) if r['rport'] == cport]
    expect_eq([r['status'] for r in got], [status], 'statuses of lines from port %d' % cport)
    expect_eq(status, 400, 'what the client got')


@t.check('latency: plausible for each, and at least %.1f s for the slow request' % SLOW)
def _(d):
    rs = client_rows(d['every'][2:], d['a'].port)
    [slow] = [r for r in rs if r['uri'] == '/static.txt?slow=1']
    expect(SLOW * 1e6 <= slow['latency'] < 10e6, 'slow request latency %dus' % slow['latency'])
    fast = [r for r in rs if r is not slow]
    bad = [r['line'] for r in fast if not 0 < r['latency'] < SLOW * 1e6]
    expect(not bad, 'latency out of (0, %.1f s):\n%s' % (SLOW, '\n'.join(bad)))


@t.check('time: seconds since tracing began, in order, within the run')
def _(d):
    ts = [r['t'] for r in client_rows(d['every'][2:], d['a'].port)]
    expect_eq(ts, sorted(ts), 'times in the order of the (sequential) requests')
    expect(0 < ts[0] and ts[-1] <= d['elapsed'] + 1,
           'times %s, the tool ran %.1f s' % (ts, d['elapsed']))


@t.check('every server: B\'s request too; limited to A\'s pid: A\'s lines, exactly')
def _(d):
    status, cport = d['sent_b']
    got = [(r['status'], r['uri'], r['rport']) for r in rows(d['every'][2:], d['b'].port)]
    expect((status, '/static.txt?b=1', cport) in got, 'B\'s request in %r' % got)
    expect_eq(rows(d['only_a'][2:], d['b'].port), [], 'lines for B in the run limited to A')
    key = lambda r: (r['status'], r['method'], r['uri'], r['rport'])  # noqa: E731
    expect_eq(sorted(map(key, rows(d['only_a'][2:]))),
              sorted(map(key, rows(d['every'][2:], d['a'].port))),
              'A\'s lines, limited run vs every server')


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
