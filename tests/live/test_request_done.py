#!/usr/bin/python3
"""test_request_done.py: httpd:::request-done as a tracer sees it.

A private Apache with the module, bpftrace running test_request_done.bt
(attached by the module's path), harness.standard_traffic(), and then
requests Apache rejects while reading them (400, 414, 408), each on its own
connection.  The checks judge what the probe reported: final statuses
(test_request_done.expected), the access log's statuses, fields, addresses,
ports, bytes sent and elapsed time.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_request_done.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

# Requests Apache rejects while reading them: name -> (bytes sent, wanted status).
# Each goes on a new connection, so its done is found by the client's port.
REJECTED = {
    'garbage request line': (b'GARBAGE\r\n\r\n', 400),
    'header line without colon': (b'GET /static.txt HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', 400),
    'request line over LimitRequestLine': (
        b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 414),
    'header field over LimitRequestFieldSize': (
        b'GET /static.txt HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'b' * 9000 + b'\r\n\r\n', None),
    # half a request, then silence: mod_reqtimeout (header=2) answers 408
    'headers not finished within RequestReadTimeout': (
        b'GET /static.txt HTTP/1.1\r\nHost: x\r\n', 408),
}


def setup():
    with harness.Apache() as httpd:
        with harness.Tracer('test_request_done.bt') as tracer:
            sent = harness.standard_traffic(httpd)
            rejected = {}
            for name, (data, _) in REJECTED.items():
                with harness.Http1(httpd.port, timeout=10) as c:
                    c.send(data)
                    try:
                        status = c.response().status
                    except (EOFError, OSError) as e:
                        status = 'no response: %s' % e
                    rejected[name] = (c.local_port, status)
            n = len(harness.read_expected('test_request_done.expected')) + len(REJECTED)
            # log_transaction may run after the client has its response:
            # wait (bounded) for every done
            tracer.wait_for(lambda evs: len(harness.client_events(evs)) >= n, 10)
            harness.wait_until(lambda: len(httpd.client_access_log()) >= n, 5)
            access = httpd.client_access_log()
        events = tracer.events()
        return {'httpd': httpd, 'port': httpd.port, 'sent': sent, 'rejected': rejected,
                'all': events, 'ev': harness.client_events(events), 'lost': tracer.lost(),
                'stderr': tracer.stderr(), 'errors': httpd.errors(),
                'access': access, 'size': len(harness.DOCS['static.txt'])}


def by_port(d, key):
    return [e for e in d['ev'] if e.get('rport') == d['sent'][key]]


def by_uri(d, uri, proto=None):
    return [e for e in d['ev'] if e.get('uri') == uri
            and (proto is None or e.get('protocol') == proto)]


def rejected_done(d, name):
    port, _ = d['rejected'][name]
    evs = [e for e in d['all'] if e.get('rport') == port]
    expect_eq(len(evs), 1, 'dones from client port %d (%s)\nall events:\n%s'
              % (port, name, harness.fmt_all(d['all'], 60)))
    return evs[0]


@t.check('the tracer saw request-done events and lost none')
def _(d):
    expect(d['ev'], 'no request-done event at all\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    expect(all(e['probe'] == 'done' for e in d['all']), 'an event that is not a done')


@t.check('one done per client request, final statuses as test_request_done.expected lists')
def _(d):
    ports = {p for p, _ in d['rejected'].values()}
    got = ['%s %s %s %s' % (e.get('status'), e.get('protocol'), e.get('method'), e.get('uri'))
           for e in d['ev'] if e.get('rport') not in ports]
    diff = harness.compare_lines(got, harness.read_expected('test_request_done.expected'))
    expect(not diff, diff + '\nevents:\n' + harness.fmt_all(d['ev']))


@t.check('dones match the access log: same (status, bytes sent %B) pairs, same count')
def _(d):
    # %U is not the unparsed URI (DirectoryIndex logs /dir/index.html), so
    # compare statuses and %B; Apache's dummy connections left out on both sides
    got = ['%s %s' % (e.get('status'), e.get('bytes_sent')) for e in d['ev']]
    want = ['%s %s' % (s, b) for s, _, _, b in d['access']]
    diff = harness.compare_lines(got, want, 'the trace ("status bytes" vs the access log)')
    expect(not diff, diff + '\naccess log:\n' + '\n'.join(map(str, d['access'])))


@t.check('native arguments agree with the record (id, status, method, uri, elapsed)')
def _(d):
    for e in d['all']:
        for a, r in (('id', 'r_id'), ('status', 'r_status'), ('method', 'r_method'),
                     ('uri', 'r_uri'), ('elapsed', 'r_elapsed')):
            expect_eq(e.get(r), e.get(a), '%s vs %s in %s' % (r, a, harness.fmt(e)))


@t.check('string arguments and record strings are never NULL, rejected requests too')
def _(d):
    for e in d['all']:
        nulls = [k for k in e if k.startswith('p_') and not e[k]]
        expect(not nulls, 'NULL %s in %s' % (', '.join(nulls), harness.fmt(e)))


@t.check('request ids are unique')
def _(d):
    ids = [e['id'] for e in d['all']]
    expect_eq(len(set(ids)), len(ids), 'distinct ids among %d dones' % len(ids))


@t.check('elapsed time is plausible: 0 < elapsed < 10 s')
def _(d):
    bad = [e for e in d['all'] if not 0 < e.get('elapsed', -1) < 10000000]
    expect(not bad, harness.fmt_all(bad))


@t.check('IPv4: remote 127.0.0.1, remote port = the client socket port, local port')
def _(d):
    evs = by_port(d, 'ka')
    expect_eq(len(evs), 9, 'dones with rport %d (the keep-alive client)\n%s'
              % (d['sent']['ka'], harness.fmt_all(d['ev'])))
    for e in evs:
        expect_eq((e['raddr'], e['laddr'], e['ipversion']), ('127.0.0.1', '127.0.0.1', 4),
                  'raddr, laddr, ipversion')
    bad = [e for e in d['ev'] if e.get('lport') != d['port']]
    expect(not bad, 'want lport %d:\n%s' % (d['port'], harness.fmt_all(bad)))


@t.check('IPv6: remote ::1, remote port = curl\'s local port')
def _(d):
    evs = by_port(d, 'v6')
    expect_eq(len(evs), 1, 'dones with rport %d (curl over IPv6)\n%s'
              % (d['sent']['v6'], harness.fmt_all(d['ev'])))
    e = evs[0]
    expect_eq((e['raddr'], e['laddr'], e['ipversion']), ('::1', '::1', 6),
              'raddr, laddr, ipversion')
    expect_eq((e['status'], e['uri']), (200, '/static.txt?v=6'), 'status, uri')


@t.check('User-Agent present, and "" when absent')
def _(d):
    expect_eq({e['agent'] for e in by_port(d, 'ka')}, {harness.AGENT}, 'keep-alive agents')
    expect_eq([e['agent'] for e in by_port(d, 'noagent')], [''], 'agent when absent')


@t.check('bytes sent: the file size for GET, 0 for HEAD')
def _(d):
    [get] = by_uri(d, '/static.txt?a=1&b=two')
    expect_eq(get['bytes_sent'], d['size'], 'bytes_sent of GET /static.txt')
    [head] = [e for e in by_port(d, 'ka') if e['method'] == 'HEAD']
    expect_eq(head['bytes_sent'], 0, 'bytes_sent of HEAD /static.txt')


@t.check('internal redirects: one done, the client\'s URI, the final status (%>s)')
def _(d):
    # ErrorDocument: 404 then a page; mod_rewrite: /old -> 200, /gone -> 200
    # on the first request_rec, 404 on the last of the chain
    for uri, status in (('/missing?x=1', 404), ('/old?r=1', 200), ('/gone', 404)):
        expect_eq([e['status'] for e in by_uri(d, uri)], [status], 'statuses of dones for ' + uri)
    expect_eq([e['uri'] for e in d['ev'] if e['uri'].startswith(('/errors/', '/nowhere'))],
              [], 'dones for the redirect targets')


@t.check('DirectoryIndex: GET /dir/ is one done with 200, none for its subrequests')
def _(d):
    expect_eq([e['status'] for e in by_uri(d, '/dir/', 'HTTP/1.1')], [200], 'HTTP/1.1 /dir/')
    expect_eq([e['status'] for e in by_uri(d, '/dir/', 'HTTP/2.0')], [200], 'HTTP/2.0 /dir/')
    expect_eq(len([e for e in d['ev'] if 'index.html' in e['uri']]), 0,
              'dones for /dir/index.html')


@t.check('h2c prior knowledge: three streams on one connection, HTTP/2.0, their statuses')
def _(d):
    h2 = [e for e in d['ev'] if e['protocol'] == 'HTTP/2.0']
    expect_eq(sorted((e['uri'], e['status']) for e in h2),
              [('/dir/', 200), ('/missing?h2=1', 404), ('/static.txt?h2=1', 200)],
              'h2 streams (uri, status)')
    expect_eq(len({e['rport'] for e in h2}), 1, 'client ports of the h2 streams')
    expect_eq({e['agent'] for e in h2}, {harness.AGENT + '/h2'}, 'h2 agents')


def rejected_check(name):
    want = REJECTED[name][1]

    def check(d):
        _, client_status = d['rejected'][name]
        e = rejected_done(d, name)
        logged = [s for s, _, _, _ in d['access']]
        expect_eq(e['status'], client_status, 'done status vs the status the client got')
        if want is not None:
            expect_eq(e['status'], want, 'status')
        else:
            expect(e['status'] in (400, 431), 'status %r, want 400 or 431' % e['status'])
        expect(e['status'] in logged, 'status %r not in the access log' % e['status'])
        expect_eq((e['raddr'], e['lport']), ('127.0.0.1', d['port']), 'raddr, lport')
    return check


for _name, (_data, _want) in REJECTED.items():
    t.check('rejected while reading: %s -> one done with %s'
            % (_name, _want or '400/431'))(rejected_check(_name))


if __name__ == '__main__':
    t.run(setup)
