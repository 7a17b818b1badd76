#!/usr/bin/python3
"""test_http_conns.py: examples/http-conns.bt against a real Apache.

A private Apache (toolrun.FullServer, TLS with h2) and the tool limited to
it (http-conns.bt 0 PID).  One connection of each kind, each closed by
the client before the next: keep-alive with 3 requests, one with
"Connection: close", h2c with 3 streams, TLS with 2 HTTP/1.1 requests,
TLS with 2 h2 streams, one that sends nothing, and one that asks for a
4 MiB file and resets the connection (aborted).  The checks compare every
map with those seven connections.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_conns.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import re
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
# requests per connection, in the order the connections are made
REQUESTS = {'ka': 3, 'close': 1, 'h2c': 3, 'tls1': 2, 'tls2': 2, 'empty': 0, 'reset': 1}


def reset_mid_response(port):
    """Ask for /big.bin, read a little, and reset the connection (SO_LINGER
    0): Apache's next write fails and it marks the connection aborted."""
    s = socket.create_connection(('127.0.0.1', port), timeout=10)
    s.sendall(b'GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n')
    s.recv(4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()


def setup():
    with toolrun.FullServer() as s:
        with toolrun.Tool('http-conns.bt', 0, s.httpd.pid) as tool:
            began = time.monotonic()
            sent = {}
            with harness.Http1(s.port) as c:
                sent['ka'] = [c.get('/static.txt?c=%d' % i).status for i in range(3)]
            with harness.Http1(s.port) as c:
                sent['close'] = [c.get('/static.txt?c=close', headers=['Connection: close']).status]
            sent['h2c'], _ = harness.nghttp([s.httpd.url('/static.txt?h2c=%d' % i)
                                             for i in range(3)])
            sent['tls1'] = [st for st, _ in s.tls_curl(['/static.txt?t=%d' % i for i in range(2)],
                                                       '--http1.1')]
            sent['tls2'] = [st for st, _ in s.tls_curl(['/static.txt?t2=%d' % i for i in range(2)],
                                                       '--http2')]
            socket.create_connection(('127.0.0.1', s.port), timeout=10).close()
            reset_mid_response(s.port)
            # conn-done fires when Apache has closed a connection and cleared its
            # pool, right after: wait (bounded) until it holds none of the seven
            expect(harness.wait_closed({s.port, s.tls_port}, 10),
                   'Apache still holds a connection after 10 s')
            time.sleep(0.2)
            tool.stop()
            took = time.monotonic() - began
        return {'s': s, 'sent': sent, 'out': tool.body(), 'took': took,
                'maps': toolrun.parse_maps(tool.body()), 'stderr': tool.stderr()}


@t.check('BEGIN says what is traced and how to stop; the clients got their 200s')
def _(d):
    expect_eq(d['out'][0], "Tracing Apache's connections (mod_usdt), server PID %d, until Ctrl-C. "
              "Hit Ctrl-C to end." % d['s'].httpd.pid, 'first line')
    expect_eq(d['sent'], {k: [200] * n for k, n in REQUESTS.items() if k not in ('empty', 'reset')},
              'statuses')


@t.check('connections opened: the seven, and the rate over the time traced')
def _(d):
    line = [l for l in d['out'] if 'Connections opened:' in l]
    expect_eq(len(line), 1, 'the opened line\n' + '\n'.join(d['out']))
    m = re.search(r'Connections opened: (\d+) in (\d+)\.(\d{3}) s, (\d+)\.(\d\d) per second$', line[0])
    expect(m, 'format: %r' % line[0])
    n, secs = int(m.group(1)), int(m.group(2)) + int(m.group(3)) / 1000
    expect_eq(n, len(REQUESTS), 'opened')
    expect(0 < secs <= d['took'] + 5, 'traced for %s s (the test took %.1f s)' % (secs, d['took']))
    rate = int(m.group(4)) + int(m.group(5)) / 100
    expect(abs(rate - n / secs) < 0.02, 'rate %s, %d / %s s' % (rate, n, secs))


@t.check('connections closed: all seven, the reset one aborted, one with no request')
def _(d):
    got = dict(d['maps'].get('@connections', {}))
    # Apache also marks the h2-over-TLS connection aborted when curl closes
    # it (c->aborted was 1 at its conn-done on Debian 12's 2.4 here)
    aborted = got.pop('aborted', 0)
    expect_eq(got, {'all': 7, 'no request': 1}, 'connections\n' + '\n'.join(d['out']))
    expect(1 <= aborted <= 2, 'aborted %d: the reset one (and the h2 over TLS one)' % aborted)


@t.check('by protocol: HTTP/2 for h2c and h2 over TLS, HTTP/1 for the rest, none for the empty one')
def _(d):
    expect_eq(d['maps'].get('@connections_by_protocol'), {'HTTP/2': 2, 'HTTP/1': 4, 'none': 1},
              'by protocol')
    hists = d['maps'].get('@connection_us_by_protocol', {})
    expect_eq({k: toolrun.hist_total(v) for k, v in hists.items()},
              {'HTTP/2': 2, 'HTTP/1': 4, 'none': 1}, 'duration histogram totals by protocol')


@t.check('by TLS protocol: the two TLS connections, five without')
def _(d):
    got = d['maps'].get('@connections_by_tls', {})
    expect_eq(got.get('no TLS'), 5, 'without TLS in %r' % got)
    tls = {k: v for k, v in got.items() if k != 'no TLS'}
    expect(len(tls) == 1 and re.match(r'^TLSv1\.[23]$', list(tls)[0]) and sum(tls.values()) == 2,
           'TLS protocols %r' % tls)


@t.check('requests per connection: the histogram of 3, 1, 3, 2, 2, 0, 1')
def _(d):
    rows = d['maps'].get('@requests_per_connection', {}).get(None, [])
    got = {}
    for lo, hi, n in rows:
        if n:
            got[(lo, hi)] = n
    # bpftrace's power-of-two rows: [0], [1], [2, 4)
    expect_eq(got, {(0, None): 1, (1, None): 2, (2, 4): 4}, 'rows\n' + '\n'.join(d['out']))


@t.check('connection duration: seven, each shorter than the test')
def _(d):
    rows = d['maps'].get('@connection_us', {}).get(None, [])
    expect_eq(toolrun.hist_total(rows), 7, 'total')
    expect(all(lo <= d['took'] * 1e6 for lo, _, n in rows if n), 'a duration longer than the '
           'test (%.1f s): %r' % (d['took'], rows))


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
