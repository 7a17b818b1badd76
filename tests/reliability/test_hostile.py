#!/usr/bin/python3
"""test_hostile.py: hostile input, and what the probes say about it.

A private Apache (event MPM, the built module, LimitRequestBody 1024) gets,
with bpftrace (hostile.bt, attached by the module's path) printing every
request-start and request-done with its strings:

  cases   CASES below, one connection each: malformed request lines, bad and
          odd methods, an overlong URI (414), an overlong header field and
          too many fields (400; 431 is HTTP/2's answer), a body over the
          limit (413), NUL and non-UTF-8 bytes in the URI and in headers,
          a missing Host, HTTP/0.9, request smuggling shapes, invalid HTTP/2
          prefaces, pipelining; and over HTTP/2 (nghttp) an overlong header
          (431)
  fuzz    FUZZ connections of seeded random bytes ($USDT_FUZZ_SEED, default
          FUZZ_SEED), a quarter each: raw random bytes; valid requests with
          random bytes flipped, inserted or cut; soups of HTTP tokens; the
          HTTP/2 preface and a SETTINGS frame followed by random frames

Each connection sends its bytes, half-closes, and reads until Apache closes.
request-header and response-header are traced too.
Then: Apache still answers and its error log shows no crash; no event was
lost; every request Apache logged is reported by exactly one request-done
with the status it logged, and every status line a client read is one of
them (by client port); no id repeats, every start has its done, a done
without a start is a request rejected while being read (status 400 or
more); the strings in the probes are exactly what the server holds: method
and URI byte for byte the request line Apache logged (%r), the start's and
the done's the same, the URI and User-Agent byte for byte what the client
sent where Apache took the request, and never longer than what was sent;
every request header reported is in what the client sent (each part of a
merged value too), as many as it sent, and none longer than the string limit.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/reliability/test_hostile.py
Needs root, bpftrace and nghttp (skips otherwise, fails under CI=true).
Prints TAP.
"""

import bisect
import collections
import os
import random
import re
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rel  # noqa: E402
from rel import harness, expect, expect_eq, log  # noqa: E402

FUZZ = 6000
FUZZ_SEED = int(os.environ.get('USDT_FUZZ_SEED', '20240611'))
FUZZ_THREADS = 8
STRLEN = 200                # BPFTRACE_STRLEN: bpftrace reads at most this many bytes
H = b'Host: localhost\r\n'
GET = b'GET /static.txt HTTP/1.1\r\n' + H + b'\r\n'

# (name, bytes sent, status expected or None for "no response")
CASES = [
    ('garbage line', b'GARBAGE\r\n\r\n', 400),
    ('two words', b'GET /static.txt\x20\x20HTTP/1.1\r\n' + H + b'\r\n', 400),
    ('unknown version', b'GET /static.txt?v99 HTTP/9.9\r\n' + H + b'\r\n', 200),
    ('unknown method', b'FOO /static.txt HTTP/1.1\r\n' + H + b'\r\n', 501),
    ('lower-case method', b'get /static.txt HTTP/1.1\r\n' + H + b'\r\n', 501),
    ('control byte in method', b'G\x01T /static.txt HTTP/1.1\r\n' + H + b'\r\n', 400),
    ('1000-byte method', b'M' * 1000 + b' /static.txt HTTP/1.1\r\n' + H + b'\r\n', 501),
    ('overlong URI', b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\n' + H + b'\r\n', 414),
    ('overlong header field', b'GET /static.txt HTTP/1.1\r\n' + H + b'X-Big: ' + b'b' * 9000
     + b'\r\n\r\n', 400),
    ('99 header fields', b'GET /static.txt?many HTTP/1.1\r\n' + H
     + b''.join(b'X-%d: v%d\r\n' % (i, i) for i in range(98)) + b'\r\n', 200),
    ('a header sent three times', b'GET /static.txt?dup HTTP/1.1\r\n' + H
     + b'X-Dup: one\r\nX-Dup: \xfftwo\r\nX-Dup: three\r\n\r\n', 200),
    ('binary header value', b'GET /static.txt?bin HTTP/1.1\r\n' + H
     + b'X-Bin: \x80\xfe\xff \xc3\x28 ~\r\n\r\n', 200),
    ('8000-byte header value', b'GET /static.txt?bigh HTTP/1.1\r\n' + H + b'X-Long: '
     + b'L' * 8000 + b'\r\n\r\n', 200),
    ('101 header fields', b'GET /static.txt HTTP/1.1\r\n' + H
     + b''.join(b'X-%d: v\r\n' % i for i in range(101)) + b'\r\n', 400),
    ('body over LimitRequestBody', b'POST /static.txt HTTP/1.1\r\n' + H
     + b'Content-Length: 5000\r\n\r\n' + b'z' * 5000, 413),
    ('NUL in URI', b'GET /sta\x00tic.txt HTTP/1.1\r\n' + H + b'\r\n', 400),
    ('NUL in a header', b'GET /static.txt HTTP/1.1\r\n' + H + b'X-A: a\x00b\r\n\r\n', 400),
    ('%00 in URI', b'GET /static.txt%00.html HTTP/1.1\r\n' + H + b'\r\n', 404),
    ('non-UTF-8 URI', b'GET /\xff\xfe\xc0\xaf?\xe9t\xe9 HTTP/1.1\r\n' + H + b'\r\n', 404),
    ('non-UTF-8 User-Agent', b'GET /static.txt?ua HTTP/1.1\r\n' + H
     + b'User-Agent: \xff\xfe\x80 agent \xc3\x28\r\n\r\n', 200),
    ('non-UTF-8 Host', b'GET /static.txt HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n', 400),
    ('8000-byte User-Agent', b'GET /static.txt?longua HTTP/1.1\r\n' + H + b'User-Agent: '
     + b'u' * 8000 + b'\r\n\r\n', 200),
    ('190-byte URI', b'GET /static.txt?' + b'q' * 178 + b' HTTP/1.1\r\n' + H + b'\r\n', 200),
    ('HTTP/1.1 without Host', b'GET /static.txt HTTP/1.1\r\n\r\n', 400),
    ('HTTP/1.0 without Host', b'GET /static.txt?v10 HTTP/1.0\r\n\r\n', 200),
    ('HTTP/0.9', b'GET /static.txt?v09\r\n', None),
    ('absolute URI', b'GET http://elsewhere.example/static.txt?abs HTTP/1.1\r\n' + H + b'\r\n',
     200),
    ('asterisk URI with GET', b'GET * HTTP/1.1\r\n' + H + b'\r\n', 400),
    ('header without colon', b'GET /static.txt HTTP/1.1\r\n' + H + b'NoColon\r\n\r\n', 400),
    ('obsolete line folding', b'GET /static.txt?fold HTTP/1.1\r\n' + H
     + b'X-A: a\r\n b\r\n\r\n', 200),
    ('space before colon', b'GET /static.txt HTTP/1.1\r\n' + H + b'X-A : a\r\n\r\n', 400),
    ('Content-Length and chunked', b'POST /static.txt?clte HTTP/1.1\r\n' + H
     + b'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 200),
    ('two Content-Lengths', b'POST /static.txt HTTP/1.1\r\n' + H
     + b'Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde', 400),
    ('bad chunk size', b'POST /static.txt HTTP/1.1\r\n' + H
     + b'Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400),
    ('negative Content-Length', b'POST /static.txt HTTP/1.1\r\n' + H
     + b'Content-Length: -1\r\n\r\n', 400),
    ('invalid HTTP/2 preface', b'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 400),
    ('HTTP/2 preface then garbage', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + bytes(range(256)),
     None),
    ('h2c Upgrade with bad settings', b'GET /static.txt?upg HTTP/1.1\r\n' + H
     + b'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: !!!\r\n\r\n',
     101),
    ('pipelined: 3 requests in one write', GET * 3, 200),
    ('blank lines before the request', b'\r\n\r\n' + GET, 200),
    ('only CRLFs', b'\r\n' * 50, 400),
    ('TAB in request line', b'GET\t/static.txt HTTP/1.1\r\n' + H + b'\r\n', 400),
]


def exchange(port, data, timeout=10):
    """Send data on a new connection, half-close, read until the server closes.
    (client port, bytes received, CLOCK_MONOTONIC ns before the connect: the
    clock of bpftrace's nsecs, which tells connections on one port apart)."""
    t0 = time.monotonic_ns()
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        lport = s.getsockname()[1]
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass        # the server may close as soon as it sees garbage
        got = b''
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            got += chunk
        return lport, got, t0
    finally:
        s.close()


STATUS = re.compile(rb'(?:^|\n)HTTP/1\.[01] (\d{3}) ')


def statuses(resp):
    return [int(x) for x in STATUS.findall(resp)]


# ---------------------------------------------------------------------------
# Fuzz inputs

H2_PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
TOKENS = [b'GET', b'POST', b'HEAD', b'OPTIONS', b'PRI', b'*', b'/', b'/static.txt', b'?',
          b'%', b'%00', b'HTTP/1.1', b'HTTP/1.0', b'HTTP/2.0', b' ', b'  ', b'\t', b'\r\n',
          b'\n', b'\r', b':', b'Host', b'Host: localhost', b'Content-Length: ', b'-1', b'0',
          b'99999999999999999999', b'Transfer-Encoding: chunked', b'Expect: 100-continue',
          b'Connection: Upgrade', b'Upgrade: h2c', b'\x00', b'\xff', b'\xc3\x28', b'\x7f']


def fuzz_inputs(seed, n):
    rng = random.Random(seed)
    valid = [GET, b'POST /static.txt?p HTTP/1.1\r\n' + H + b'Content-Length: 3\r\n\r\nabc',
             b'HEAD /dir/ HTTP/1.0\r\n\r\n', b'GET /missing?x=1 HTTP/1.1\r\n' + H
             + b'User-Agent: fuzz\r\n\r\n']
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:           # raw random bytes
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))))
        elif kind == 1:         # a valid request, mutated
            b = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(1, 8)):
                op = rng.randrange(3)
                pos = rng.randrange(len(b) + 1)
                if op == 0 and pos < len(b):
                    b[pos] = rng.randrange(256)
                elif op == 1:
                    b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
                elif pos < len(b):
                    del b[pos:pos + rng.randrange(1, 16)]
            out.append(bytes(b))
        elif kind == 2:         # a soup of HTTP tokens
            out.append(b''.join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 60))))
        else:                   # the HTTP/2 preface, a SETTINGS frame, random frames
            out.append(H2_PREFACE + b'\x00\x00\x00\x04\x00\x00\x00\x00\x00'
                       + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    return out


def run_fuzz(port, inputs):
    results = [None] * len(inputs)
    errors = []
    nxt = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(inputs):
                return
            try:
                results[i] = exchange(port, inputs[i], timeout=15)
            except OSError as e:
                errors.append('input %d: %r' % (i, e))
    threads = [threading.Thread(target=worker) for _ in range(FUZZ_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    return results, errors


# ---------------------------------------------------------------------------
# %r as mod_log_config writes it (ap_escape_logitem), read back

ESC = {b'b': b'\b', b'n': b'\n', b'r': b'\r', b't': b'\t', b'v': b'\v', b'\\': b'\\', b'"': b'"'}


def unescape(s):
    out, i = bytearray(), 0
    while i < len(s):
        if s[i:i + 1] == b'\\' and i + 1 < len(s):
            c = s[i + 1:i + 2]
            if c == b'x' and re.match(rb'[0-9a-fA-F]{2}', s[i + 2:i + 4]):
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            if c in ESC:
                out += ESC[c]
                i += 2
                continue
        out.append(s[i])
        i += 1
    return bytes(out)


def port_log(httpd):
    """[(client port, status, request line as Apache held it)] from port.log."""
    rows = []
    try:
        with open(httpd.path('logs', 'port.log'), 'rb') as f:
            for line in f:
                port, status, req = line.rstrip(b'\n').split(b' ', 2)
                rows.append((int(port), int(status), unescape(req[1:-1])))
    except OSError:
        pass
    return rows


# ---------------------------------------------------------------------------

def clients(d):
    return [('case ' + c['name'], c) for c in d['cases']] + \
        [('fuzz %d' % i, f) for i, f in enumerate(d['fuzz'])]


EXTRA = ('LimitRequestBody 1024\n'
         'LogFormat "%{remote}p %>s \\"%r\\"" usdtport\n'
         'CustomLog "logs/port.log" usdtport\n')


def setup():
    with rel.PrivateModule():
        return _setup()


def _setup():
    d = {}
    with rel.load_apache('event', FUZZ_THREADS + 8, extra=EXTRA) as httpd:
        tr = rel.MapTracer('hostile.bt', strlen=STRLEN, rb_pages=4096)
        tr.start()
        try:
            d['cases'] = []
            for name, data, want in CASES:
                port, resp, t0 = exchange(httpd.port, data)
                d['cases'].append({'name': name, 'sent': data, 'want': want, 'port': port,
                                   'got': statuses(resp), 'resp': resp, 't0': t0})
            big = 'x-big: ' + 'h' * 9000
            d['h2_431'], _ = harness.nghttp([httpd.url('/static.txt?h2big')], '-H', big)
            d['h2_ok'], _ = harness.nghttp([httpd.url('/static.txt?h2ok')])
            t0 = time.monotonic()
            inputs = fuzz_inputs(FUZZ_SEED, FUZZ)
            results, d['fuzz_errors'] = run_fuzz(httpd.port, inputs)
            d['fuzz_secs'] = time.monotonic() - t0
            d['fuzz'] = [{'sent': inputs[i], 'port': r[0], 'got': statuses(r[1]), 't0': r[2]}
                         for i, r in enumerate(results) if r]
            last = [-1, time.monotonic()]

            def quiet():
                n = len(httpd.access_log())
                if n != last[0]:
                    last[:] = [n, time.monotonic()]
                return time.monotonic() - last[1] > 1.5
            harness.wait_until(quiet, 30, 0.2)
        finally:
            tr.stop()
        d['events'] = tr.events()
        d['lost'] = tr.lost()
        d['tracer_err'] = tr.stderr()
        tr.cleanup()
        d['ports'] = port_log(httpd)
        d['access'] = httpd.access_log()
        d['serving'] = harness.curl(httpd.url('/static.txt?after'))[0]
        d['crash'] = rel.no_crash(httpd)
        d['children'] = httpd.children()
    # each event belongs to the last connection from its client port that
    # connected before it (ports are reused over thousands of connections)
    conns = collections.defaultdict(list)
    for name, c in clients(d):
        conns[c['port']].append((c['t0'], name))
    for v in conns.values():
        v.sort()
    d['by_conn'] = collections.defaultdict(list)
    for e in d['events']:
        v = conns.get(e.get('rport'), [])
        i = bisect.bisect_right(v, (e['t'], '\uffff')) - 1
        if i >= 0:
            d['by_conn'][v[i][1]].append(e)
    log('%d cases, %d fuzz connections (seed %d) in %.1fs, %d probe events'
        % (len(CASES), len(d['fuzz']), FUZZ_SEED, d['fuzz_secs'], len(d['events'])))
    return d


t = harness.Tap()


def is_dummy(e):
    return e.get('method') == b'OPTIONS' and e.get('uri') == b'*' and e.get('rport') == 0


@t.check('Apache still answers, and its error log shows no crash')
def _(d):
    expect_eq(d['serving'], 200, 'status of a request after all the hostile input')
    expect(not d['crash'], d['crash'])


@t.check('the tracer lost no event')
def _(d):
    expect(not d['lost'], 'lost: %r\n%s' % (d['lost'], d['tracer_err']))


@t.check('the hostile cases got the statuses expected of Apache 2.4')
def _(d):
    bad = []
    for c in d['cases']:
        n = 3 if c['name'].startswith('pipelined') else 1
        want = [] if c['want'] is None else [c['want']] * n
        got = c['got'][:n]
        if got != want:
            bad.append('%s: got %r, want %r (%r)' % (c['name'], got, want, c['resp'][:80]))
    expect_eq(d['h2_431'], [431], 'HTTP/2 with an overlong header')
    expect_eq(d['h2_ok'], [200], 'HTTP/2 afterwards')
    expect(not bad, '\n'.join(bad))


@t.check('every status line a client read is reported by a request-done on its connection')
def _(d):
    bad = []
    for name, c in clients(d):
        probed = collections.Counter(e['status'] for e in d['by_conn'].get(name, [])
                                     if e['probe'] == 'done')
        got = collections.Counter(c['got'])
        if got - probed:
            bad.append('%s (port %d): client read %r, request-done said %r; sent %r'
                       % (name, c['port'], dict(got), dict(probed), c['sent'][:100]))
    expect(not bad, '%d connections:\n%s' % (len(bad), '\n'.join(bad[:20])))


@t.check('every request Apache logged is one request-done with the status it logged')
def _(d):
    logged = collections.Counter((port, status) for port, status, _ in d['ports'])
    probed = collections.Counter((e.get('rport'), e['status']) for e in d['events']
                                 if e['probe'] == 'done' and not is_dummy(e))
    log('%d requests logged, by status: %r' % (len(d['ports']), dict(collections.Counter(
        s for _, s, _ in d['ports']))))
    expect_eq(len(d['ports']), len(d['access']), 'port.log vs access.log lines')
    diff = []
    for k in sorted(set(logged) | set(probed)):
        if logged[k] != probed[k]:
            diff.append('port %s status %s: logged %d, request-done %d'
                        % (k[0], k[1], logged[k], probed[k]))
    expect(not diff, '\n'.join(diff[:30]))


@t.check('no id repeats; every start has one done; a done without start is a rejected request')
def _(d):
    by = collections.defaultdict(lambda: ([], []))
    for e in (e for e in d['events'] if e['probe'] in ('start', 'done')):
        by[e['id']][0 if e['probe'] == 'start' else 1].append(e)
    bad = []
    for i, (ss, ds) in sorted(by.items()):
        if len(ss) > 1 or len(ds) > 1:
            bad.append('id %d: %d starts, %d dones' % (i, len(ss), len(ds)))
        elif ss and not ds:
            bad.append('start without done: %r' % ss[0])
        elif ds and not ss and ds[0]['status'] < 400:
            bad.append('done without start, status %d: %r' % (ds[0]['status'], ds[0]))
    expect(not bad, '\n'.join(bad[:20]))


def req_has(rows, port, text):
    return any(p == port and text in req for p, _, req in rows)


def held(e, key):
    return e.get(key, b'')


@t.check('strings: method and URI are the request line Apache logged, byte for byte; '
         'start and done agree')
def _(d):
    lines = collections.defaultdict(list)
    for port, status, req in d['ports']:
        lines[(port, status)].append(req)
    starts = {e['id']: e for e in d['events'] if e['probe'] == 'start'}
    bad, checked = [], 0
    for e in d['events']:
        if e['probe'] != 'done' or is_dummy(e):
            continue
        s = starts.get(e['id'])
        if s and any(held(s, k) != held(e, k) for k in ('method', 'uri', 'agent', 'protocol')):
            bad.append('start and done differ:\n  %r\n  %r' % (s, e))
        method, uri, proto = held(e, 'method'), held(e, 'uri'), held(e, 'protocol')
        if proto not in (b'HTTP/1.0', b'HTTP/1.1', b'HTTP/0.9', b'HTTP/2.0') and \
                not req_has(d['ports'], e.get('rport'), proto):
            bad.append('protocol %r is neither Apache\'s nor in the request line' % proto)
        reqs = lines.get((e.get('rport'), e['status']), [])
        if not reqs:
            bad.append('no log line for %r' % e)
            continue
        # what Apache held (%r, r->the_request): the probe's method and URI
        # must be its first tokens, byte for byte, each ending where Apache's
        # ends (a space or the end); "" where Apache parsed nothing.  bpftrace
        # reads at most STRLEN - 1 bytes of a string.
        ok = not method and not uri     # Apache gave up before parsing the line
        for req in reqs:
            if ok:
                break
            if len(method) >= STRLEN - 1:
                ok = req.startswith(method)
            elif not uri:
                ok = req == method or req.startswith(method + b' ')
            elif len(uri) >= STRLEN - 1:
                ok = req.startswith(method + b' ' + uri)
            else:
                head = method + b' ' + uri
                ok = req == head or req.startswith(head + b' ')
        checked += 1
        if not ok:
            bad.append('probe %r %r %r vs logged %r' % (method, uri[:80], proto,
                                                        [r[:100] for r in reqs]))
    log('%d request-dones compared with the request line Apache logged' % checked)
    expect(not bad, '\n'.join(bad[:20]))


@t.check('strings: the URI and User-Agent of requests Apache took are exactly what was sent')
def _(d):
    bad = []
    for name, c in clients(d):
        if not name.startswith('case'):
            continue
        evs = [e for e in d['by_conn'].get(name, []) if e['probe'] == 'start']
        if not evs:
            continue
        first = c['sent'].lstrip(b'\r\n').split(b'\r\n', 1)[0]
        parts = first.split(b' ')
        m = re.search(rb'\r\nUser-Agent: ([^\r\n]*)\r\n', c['sent'])
        for e in evs[:1]:
            if len(parts) >= 2 and held(e, 'uri') != parts[1][:STRLEN - 1]:
                bad.append('%s: uri %r, sent %r' % (c['name'], held(e, 'uri')[:80],
                                                     parts[1][:80]))
            want_ua = m.group(1)[:STRLEN - 1] if m else b''
            if held(e, 'agent') != want_ua:
                bad.append('%s: agent %r, sent %r' % (c['name'], held(e, 'agent')[:80],
                                                       want_ua[:80]))
    for name, c in clients(d):
        for e in d['by_conn'].get(name, []):
            for k in ('uri', 'method', 'agent'):
                v = held(e, k)
                if v and v not in c['sent'] and not (name.startswith('fuzz') and
                                                     k == 'uri' and v == b'*'):
                    bad.append('%s: %s %r is not in what the client sent' % (name, k, v[:80]))
    expect(not bad, '\n'.join(bad[:20]))


def request_headers(d, name):
    """[(name, value)] of the request-headers of the first request Apache
    took on connection name (none if it took none)."""
    starts = [e for e in d['by_conn'].get(name, []) if e['probe'] == 'start']
    if not starts:
        return None
    rid = starts[0]['id']
    return [(e.get('name', b''), e.get('value', b'')) for e in d['events']
            if e['probe'] == 'request-header' and e['id'] == rid]


@t.check('request-header: every header reported is in what the client sent, never longer '
         'than the string limit')
def _(d):
    bad, n = [], 0
    for name, c in clients(d):
        hdrs = request_headers(d, name)
        for k, v in hdrs or []:
            n += 1
            if not k or k not in c['sent']:
                bad.append('%s: header name %r not sent' % (name, k[:80]))
            if len(k) > STRLEN - 1 or len(v) > STRLEN - 1:
                bad.append('%s: %r longer than the string limit' % (name, k[:40]))
            # Apache joins a header sent twice with ", " and unfolds
            # obsolete line folding into a space: each part was sent
            for part in re.split(rb', | ', v):
                if part and part not in c['sent']:
                    bad.append('%s: %r: %r is not in what was sent' % (name, k[:40], part[:80]))
    log('%d request-header events checked' % n)
    expect(n > 0, 'no request-header event at all')
    expect(not bad, '\n'.join(bad[:20]))


@t.check('request-header: many, merged, binary and long headers as Apache holds them')
def _(d):
    got = {c['name']: request_headers(d, 'case ' + c['name']) for c in d['cases']}
    many = got['99 header fields'] or []
    expect_eq(many, [(b'Host', b'localhost')] + [(b'X-%d' % i, b'v%d' % i) for i in range(98)],
              '99 header fields')
    expect_eq(got['a header sent three times'],
              [(b'Host', b'localhost'), (b'X-Dup', b'one, \xfftwo, three')], 'merged X-Dup')
    expect_eq(got['binary header value'],
              [(b'Host', b'localhost'), (b'X-Bin', b'\x80\xfe\xff \xc3\x28 ~')],
              'binary header')
    expect_eq(got['8000-byte header value'],
              [(b'Host', b'localhost'), (b'X-Long', b'L' * (STRLEN - 1))], 'long header')


@t.check('response-header: every request-done of a request Apache took has its response '
         'headers, before it')
def _(d):
    bad = []
    done_t = {e['id']: e['t'] for e in d['events'] if e['probe'] == 'done'}
    started = {e['id'] for e in d['events'] if e['probe'] == 'start'}
    resp = collections.defaultdict(list)
    for e in d['events']:
        if e['probe'] == 'response-header':
            resp[e['id']].append(e)
    for rid in started & set(done_t):
        hs = resp.get(rid, [])
        if not hs:
            continue        # a 101 or an aborted response may have none
        if any(not h.get('name') or h['t'] > done_t[rid] for h in hs):
            bad.append('request %d: %r' % (rid, [(h.get('name'), h['t']) for h in hs][:5]))
    expect(sum(len(v) for v in resp.values()) > 0, 'no response-header event at all')
    expect(not set(resp) - set(done_t), 'response headers of requests without a done: %r'
           % sorted(set(resp) - set(done_t))[:10])
    expect(not bad, '\n'.join(bad[:20]))


if __name__ == '__main__':
    t.run(setup, needs=rel.NEEDS)
