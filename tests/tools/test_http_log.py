#!/usr/bin/python3
"""test_http_log.py: examples/http-log.bt against a real Apache.

A private Apache (toolrun.FullServer: a proxied backend vhost, a balancer,
a dead backend, a balancer whose first member is dead, a slow CGI script,
TLS with h2).  Three copies of the tool run at once, as an operator runs
them on a local build: every request (no argument); only requests of at
least 250 ms of this server (250 0 PID); only 5xx, credentials shown
(0 5 0 1).  The traffic: two requests on a keep-alive connection with
Authorization, a lower-case cookie, a 200-byte header and a Set-Cookie
answer; a proxied request; the dead backend (with Proxy-Authorization);
the retried balancer; the slow CGI; 41 headers; two h2c streams; two
requests over TLS.
The checks parse each block and compare it with what was sent and seen.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_log.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

AUTH = 'Basic YWxpY2U6c2VjcmV0'
COOKIE = 'session=abc; theme=dark'
PROXY_AUTH = 'Basic cHJveHk6cHc='
LONG = 'L' * 200
MANY = 40                                           # headers, more than the 32 kept
SET_COOKIE = 'session=0123456789abcdef; Path=/'      # toolrun.FULL_EXTRA's
# what setup() sends: 2 keep-alive, px and its backend's, dead, flaky and its
# backend's, cgi, many, 2 h2c, 2 TLS
REQUESTS = 13
HEAD = re.compile(r'^(\d\d:\d\d:\d\d) request (\d+): (\S+) (.*)$')
LINE = re.compile(r'^request (\d+):   (\w+) (.*)$')
# the order of a block's lines; the starred ones repeat
ORDER = ['head', 'client', 'protocol', 'connection', 'RxHeader*', 'Handler*', 'Backend*',
         'Status', 'TxHeader*', 'Timeline']


def blocks(lines):
    """[(id, [(kind, text)])], in the order of their first lines.  A block
    is the lines with one id from its request line on: two requests that
    finish at once on two CPUs print at once, and bpftrace may interleave
    their lines (which is why each line has the id); another Apache traced
    at the same time has ids of its own, so a request line starts a new
    block.  Raises on a line in no known format."""
    out, open_block = [], {}
    for l in lines:
        m = HEAD.match(l)
        if m:
            rid, kind, text = int(m.group(2)), 'head', '%s %s' % (m.group(3), m.group(4))
        else:
            m = LINE.match(l)
            if not m:
                if l.strip() and 'Hit Ctrl-C' not in l:
                    raise harness.Failure('a line in no known format: %r' % l)
                continue
            rid, kind, text = int(m.group(1)), m.group(2), m.group(3)
        if kind == 'head' or rid not in open_block:
            open_block[rid] = len(out)
            out.append((rid, []))
        out[open_block[rid]][1].append((kind, text))
    return out


def ours(lines, s):
    """The blocks of the test's server s (its three ports): the tool with
    no argument also sees any other Apache that loaded the module."""
    ports = {'127.0.0.1:%d' % p for p in (s.port, s.bport, s.tls_port)}
    return [(rid, block) for rid, block in blocks(lines)
            if any(k == 'client' and t.split(', server ')[-1] in ports for k, t in block)]


def by_uri(d, out='all'):
    """{uri: block} of the requests to the front server's port."""
    got = {}
    for rid, lines in blocks(d[out]):
        head = lines[0][1] if lines[0][0] == 'head' else ''
        uri = head.split(' ', 1)[1] if ' ' in head else None
        got.setdefault(uri, []).append((rid, lines))
    return got


def one(d, uri, out='all'):
    got = by_uri(d, out).get(uri, [])
    expect_eq(len(got), 1, 'blocks for %s in\n%s' % (uri, '\n'.join(d[out][:80])))
    return dict(id=got[0][0], lines=got[0][1])


def field(block, kind):
    return [text for k, text in block['lines'] if k == kind]


def setup():
    with toolrun.FullServer() as s:
        with toolrun.Tool('http-log.bt') as every, \
                toolrun.Tool('http-log.bt', 250, 0, s.httpd.pid) as slow, \
                toolrun.Tool('http-log.bt', 0, 5, 0, 1) as errors:
            sent = {}
            with harness.Http1(s.port) as c:
                r = c.get('/static.txt?log=1', agent='usdt-tools/log',
                          headers=['Authorization: ' + AUTH, 'cookie: ' + COOKIE,
                                   'X-Long: ' + LONG])
                sent['first'] = (r.status, c.local_port)
                r = c.get('/cookie/?log=2')
                sent['cookie'] = (r.status, c.local_port, r.headers)
            for name, uri, headers in (
                    ('px', '/px/static.txt?log=px', []),
                    ('dead', '/dead/static.txt?log=dead', ['Proxy-Authorization: ' + PROXY_AUTH]),
                    ('flaky', '/flaky/static.txt?log=flaky', []),
                    ('cgi', '/cgi-bin/slow.sh?log=cgi', []),
                    ('many', '/static.txt?log=many', ['X-Many-%02d: %d' % (i, i)
                                                      for i in range(MANY)])):
                with harness.Http1(s.port) as c:
                    sent[name] = (c.get(uri, headers=headers).status, c.local_port)
            sent['h2'], _ = harness.nghttp([s.httpd.url('/static.txt?log=h2-%d' % i)
                                            for i in range(2)])
            sent['tls'] = s.tls_curl(['/static.txt?log=tls-%d' % i for i in range(2)], '--http1.1')
            failed = toolrun.failed_connects(s.httpd)
            # every block whole: the last one may still be printing when the
            # client has its answer, and stopping the tool then cuts it
            every.wait_for(lambda ls: sum(1 for _, b in ours(ls, s) if b[-1][0] == 'Timeline')
                           >= REQUESTS, 15)
            slow.wait_for(lambda ls: any('Timeline' in l for l in ls), 10)
            errors.wait_for(lambda ls: any('Timeline' in l for l in ls), 10)
        return {'s': s, 'sent': sent, 'all': every.body(), 'failed': failed, 'slow': slow.body(),
                'errors': errors.body(),
                'stderr': every.stderr() + slow.stderr() + errors.stderr()}


@t.check('BEGIN says what is traced and how to stop, with the filters')
def _(d):
    expect_eq(d['all'][0], 'Tracing Apache requests (mod_usdt) of at least 0 ms, status class 0 '
              '(0: all), every server. Hit Ctrl-C to end.', 'first line, no argument')
    expect_eq(d['slow'][0], 'Tracing Apache requests (mod_usdt) of at least 250 ms, status class 0 '
              '(0: all), server PID %d. Hit Ctrl-C to end.' % d['s'].httpd.pid, 'first line, 250 0 PID')


@t.check('one block per request, each line with its id, lines in the block\'s order')
def _(d):
    n = 0
    for rid, lines in ours(d['all'], d['s']):
        n += 1
        kinds = [k for k, _ in lines]
        rx = '^' + ''.join('(?:%s,)*' % k[:-1] if k.endswith('*') else '%s,' % k
                           for k in ORDER) + '$'
        expect(re.match(rx, ''.join(k + ',' for k in kinds)),
               'request %d: lines %r in\n%s' % (rid, kinds, '\n'.join(d['all'])))
    expect_eq(n, REQUESTS, 'blocks')


@t.check('the keep-alive requests: request line, addresses, connection, headers as sent')
def _(d):
    b = one(d, '/static.txt?log=1')
    status, cport = d['sent']['first']
    expect_eq(b['lines'][0][1], 'GET /static.txt?log=1', 'request line')
    expect_eq(field(b, 'client'), ['127.0.0.1:%d, server 127.0.0.1:%d' % (cport, d['s'].port)],
              'client line')
    expect_eq(field(b, 'protocol'), ['HTTP/1.1, virtual host %s' % harness.SERVER_NAME], 'protocol')
    conn = re.match(r'^(\d+), request 1 on it, TLS none, Apache pid (\d+)$',
                    field(b, 'connection')[0])
    expect(conn, 'connection line %r' % field(b, 'connection'))
    b2 = one(d, '/cookie/?log=2')
    expect_eq(field(b2, 'connection')[0].split(',')[:2], [conn.group(1), ' request 2 on it'],
              'the second request on the same connection')
    rx = field(b, 'RxHeader')
    expect_eq(rx[0], 'Host: localhost', 'first header')
    expect('User-Agent: usdt-tools/log' in rx, 'User-Agent in %r' % rx)
    expect_eq((status, field(b, 'Status')), (200, ['200 (first 200), %d bytes sent, 0 received, '
                                                   'text/plain' % len(harness.DOCS['static.txt'])]),
              'status')
    expect('Content-Length: %d' % len(harness.DOCS['static.txt']) in field(b, 'TxHeader'),
           'TxHeader Content-Length in %r' % field(b, 'TxHeader'))
    expect_eq(field(b, 'Handler')[0].split(' at ')[0], 'text/plain', 'handler')


@t.check('credentials redacted with their length, in any letter case; Set-Cookie too')
def _(d):
    rx = field(one(d, '/static.txt?log=1'), 'RxHeader')
    expect('Authorization: <redacted %d bytes>' % len(AUTH) in rx, 'Authorization in %r' % rx)
    expect('cookie: <redacted %d bytes>' % len(COOKIE) in rx, 'cookie in %r' % rx)
    text = '\n'.join(d['all'])
    for secret in (AUTH, COOKIE, PROXY_AUTH, SET_COOKIE):
        expect(secret not in text, 'a secret value in the output: %r' % secret)
    tx = field(one(d, '/cookie/?log=2'), 'TxHeader')
    expect('Set-Cookie: <redacted %d bytes>' % len(SET_COOKIE) in tx, 'Set-Cookie in %r' % tx)
    expect_eq(d['sent']['cookie'][2].get('set-cookie'), SET_COOKIE, 'the Set-Cookie the client got')
    rx = field(one(d, '/dead/static.txt?log=dead'), 'RxHeader')
    expect('Proxy-Authorization: <redacted %d bytes>' % len(PROXY_AUTH) in rx,
           'Proxy-Authorization in %r' % rx)


@t.check('a long value is cut visibly: its first 95 bytes, then "..."')
def _(d):
    rx = field(one(d, '/static.txt?log=1'), 'RxHeader')
    expect('X-Long: %s...' % LONG[:95] in rx, 'X-Long in %r' % rx)


@t.check('more headers than the 32 kept: the first 32, then how many more')
def _(d):
    rx = field(one(d, '/static.txt?log=many'), 'RxHeader')
    want = ['Host: localhost'] + ['X-Many-%02d: %d' % (i, i) for i in range(31)] + \
        ['(%d more not shown)' % (MANY + 1 - 32)]
    expect_eq(rx, want, 'RxHeader lines')


@t.check('backends: ProxyPass 200, the dead one 503, the flaky balancer 503 then 200')
def _(d):
    s = d['s']
    b = one(d, '/px/static.txt?log=px')
    expect(re.match(r'^http://127\.0\.0\.1:%d/: status 200 in \d+ us$' % s.bport,
                    ' '.join(field(b, 'Backend'))), 'px backend %r' % field(b, 'Backend'))
    expect_eq(field(b, 'Handler')[0].split(' at ')[0], 'proxy-server', 'px handler')
    # the backend's own request, on the backend vhost
    back = one(d, '/static.txt?log=px')
    expect_eq(field(back, 'protocol'), ['HTTP/1.1, virtual host backend.test'], 'backend request')
    b = one(d, '/dead/static.txt?log=dead')
    expect(re.match(r'^http://127\.0\.0\.1:%d/: status 503 \(mod_proxy\'s own\) in \d+ us$'
                    % s.dport, ' '.join(field(b, 'Backend'))),
           'dead backend %r' % field(b, 'Backend'))
    expect_eq((d['sent']['dead'][0], field(b, 'Status')[0].split()[0]), (503, '503'), 'dead status')
    b = one(d, '/flaky/static.txt?log=flaky')
    got = [re.sub(r' in \d+ us$', '', x) for x in field(b, 'Backend')]
    # whether the balancer tried the dead member first, the error log says
    tried_dead = d['failed'].get(d['sent']['flaky'][1], 0)
    expect_eq(got, ['http://127.0.0.1:%d of balancer://flaky: status 503 (mod_proxy\'s own)'
                    % s.dport] * tried_dead +
              ['http://127.0.0.1:%d of balancer://flaky: status 200' % s.bport], 'flaky attempts')
    expect_eq(d['sent']['flaky'][0], 200, 'flaky status')


@t.check('the timeline: ordered, and the slow CGI\'s time between handler and first byte')
def _(d):
    for rid, lines in ours(d['all'], d['s']):
        tl = [x for k, x in lines if k == 'Timeline']
        expect_eq(len(tl), 1, 'request %d: Timeline lines' % rid)
        m = re.match(r'^handler (\d+) us, first byte (\d+) us, last byte (\d+) us, done (\d+) us$',
                     tl[0])
        expect(m, 'request %d timeline %r' % (rid, tl))
        h, f, l, done = (int(x) for x in m.groups())
        expect(0 < h <= f <= l <= done, 'request %d timeline %r' % (rid, tl))
    b = one(d, '/cgi-bin/slow.sh?log=cgi')
    h, f = (int(x) for x in re.findall(r'\d+', field(b, 'Timeline')[0])[:2])
    expect(f - h >= harness.SLOW_CGI_S * 0.9e6, 'CGI: first byte %d us after the handler' % (f - h))
    expect_eq(field(b, 'Handler')[0].split(' at ')[0], 'cgi-script', 'CGI handler')


@t.check('h2c: HTTP/2.0, one connection, its stream ids; TLS: the protocol on the line')
def _(d):
    expect_eq(d['sent']['h2'], [200, 200], 'h2c statuses')
    conns = set()
    for i in range(2):
        b = one(d, '/static.txt?log=h2-%d' % i)
        expect_eq(field(b, 'protocol')[0].split(',')[0], 'HTTP/2.0', 'h2 protocol')
        m = re.match(r'^(\d+), request (\d+) on it, TLS none', field(b, 'connection')[0])
        expect(m and int(m.group(2)) % 2 == 1, 'h2 stream id %r' % field(b, 'connection'))
        conns.add(m.group(1))
    expect_eq(len(conns), 1, 'h2c connections')
    for i in range(2):
        b = one(d, '/static.txt?log=tls-%d' % i)
        expect(re.search(r', TLS TLSv1\.[23], ', field(b, 'connection')[0]),
               'TLS line %r' % field(b, 'connection'))
        expect_eq(field(b, 'client')[0].split(', server ')[1], '127.0.0.1:%d' % d['s'].tls_port,
                  'TLS server port')


@t.check('MS 250 and PID: exactly the slow CGI request')
def _(d):
    got = sorted(u for u in by_uri(d, 'slow'))
    expect_eq(got, ['GET /cgi-bin/slow.sh?log=cgi'.split(' ', 1)[1]], 'requests shown')


@t.check('CLASS 5 and REVEAL 1: exactly the 503, with Proxy-Authorization shown')
def _(d):
    got = sorted(u for u in by_uri(d, 'errors'))
    expect_eq(got, ['/dead/static.txt?log=dead'], 'requests shown')
    rx = field(one(d, '/dead/static.txt?log=dead', 'errors'), 'RxHeader')
    expect('Proxy-Authorization: ' + PROXY_AUTH in rx, 'revealed in %r' % rx)


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
