#!/usr/bin/python3
"""test_request_start.py: httpd:::request-start as a tracer sees it.

A private Apache with the module, bpftrace running test_request_start.bt
(attached by the module's path), and harness.standard_traffic(): HTTP/1.1
keep-alive over IPv4, HTTP/1.0, curl over IPv6, h2c streams, an ErrorDocument
internal redirect and a DirectoryIndex.  The checks judge what the probe
reported; test_request_start.expected lists the starts the traffic must fire.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_request_start.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()


def setup():
    with harness.Apache() as httpd:
        with harness.Tracer('test_request_start.bt') as tracer:
            sent = harness.standard_traffic(httpd)
            n = len(harness.read_expected('test_request_start.expected'))
            # starts fire before the responses are sent, so they are all
            # there by now; give the output pipe a bounded moment anyway
            tracer.wait_for(lambda evs: len(harness.client_events(evs)) >= n, 10)
        events = tracer.events()
        return {'httpd': httpd, 'port': httpd.port, 'sent': sent, 'all': events,
                'ev': harness.client_events(events), 'lost': tracer.lost(),
                'stderr': tracer.stderr(), 'errors': httpd.errors()}


def by_port(d, key):
    return [e for e in d['ev'] if e.get('rport') == d['sent'][key]]


def by_uri(d, uri, proto=None):
    return [e for e in d['ev'] if e.get('uri') == uri
            and (proto is None or e.get('protocol') == proto)]


@t.check('the clients got the responses the traffic expects')
def _(d):
    bad = [(n, s) for n, s in d['sent']['responses']
           if s != {'ka 404': 404, 'ka dir': 301, 'ka gone': 404}.get(n, 200)]
    expect(not bad, 'unexpected HTTP statuses: %r' % bad)
    expect_eq(d['sent']['h2'], [200, 200, 404], 'h2 stream statuses')


@t.check('the tracer saw request-start events and lost none')
def _(d):
    expect(d['ev'], 'no request-start event at all\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    expect(all(e['probe'] == 'start' for e in d['all']), 'an event that is not a start')


@t.check('one start per client request, as test_request_start.expected lists')
def _(d):
    got = ['%s %s %s "%s"' % (e.get('protocol'), e.get('method'), e.get('uri'), e.get('agent'))
           for e in d['ev']]
    diff = harness.compare_lines(got, harness.read_expected('test_request_start.expected'))
    expect(not diff, diff + '\nevents:\n' + harness.fmt_all(d['ev']))


@t.check('status is 0 at request-start (arg1 and record)')
def _(d):
    bad = [e for e in d['all'] if e.get('status') != 0 or e.get('r_status') != 0]
    expect(not bad, harness.fmt_all(bad))


@t.check('native arguments agree with the record (id, method, uri, elapsed)')
def _(d):
    for e in d['all']:
        for a, r in (('id', 'r_id'), ('method', 'r_method'), ('uri', 'r_uri'),
                     ('elapsed', 'r_elapsed')):
            expect_eq(e.get(r), e.get(a), '%s vs %s in %s' % (r, a, harness.fmt(e)))


@t.check('string arguments and record strings are never NULL')
def _(d):
    for e in d['all']:
        nulls = [k for k in e if k.startswith('p_') and not e[k]]
        expect(not nulls, 'NULL %s in %s' % (', '.join(nulls), harness.fmt(e)))


@t.check('request ids are unique')
def _(d):
    ids = [e['id'] for e in d['all']]
    expect_eq(len(set(ids)), len(ids), 'distinct ids among %d starts' % len(ids))


@t.check('elapsed time is plausible: 0 <= elapsed < 5 s')
def _(d):
    bad = [e for e in d['ev'] if not 0 <= e.get('elapsed', -1) < 5000000]
    expect(not bad, harness.fmt_all(bad))


@t.check('method and URI with query string as the client sent them')
def _(d):
    expect_eq(len(by_uri(d, '/static.txt?a=1&b=two')), 1, 'starts for /static.txt?a=1&b=two')
    expect_eq(sorted(e['method'] for e in by_port(d, 'ka')),
              sorted(['GET', 'HEAD', 'POST'] + ['GET'] * 6),
              'methods on the keep-alive connection')


@t.check('a URI longer than 64 bytes arrives whole')
def _(d):
    expect_eq(len(by_uri(d, harness.LONG_URI)), 1, 'starts with the %d-byte URI'
              % len(harness.LONG_URI))


@t.check('IPv4: remote 127.0.0.1, remote port = the client socket port, local address')
def _(d):
    evs = by_port(d, 'ka')
    expect_eq(len(evs), 9, 'starts with rport %d (the keep-alive client)\n%s'
              % (d['sent']['ka'], harness.fmt_all(d['ev'])))
    for e in evs:
        expect_eq(e['raddr'], '127.0.0.1', 'raddr')
        expect_eq(e['laddr'], '127.0.0.1', 'laddr')
        expect_eq(e['ipversion'], 4, 'ipversion')
    for key in ('noagent', 'http10'):
        expect_eq(len(by_port(d, key)), 1, 'starts with rport of client %s' % key)


@t.check('IPv6: remote ::1, remote port = curl\'s local port')
def _(d):
    evs = by_port(d, 'v6')
    expect_eq(len(evs), 1, 'starts with rport %d (curl over IPv6)\n%s'
              % (d['sent']['v6'], harness.fmt_all(d['ev'])))
    e = evs[0]
    expect_eq(e['raddr'], '::1', 'raddr')
    expect_eq(e['laddr'], '::1', 'laddr')
    expect_eq(e['ipversion'], 6, 'ipversion')
    expect_eq(e['uri'], '/static.txt?v=6', 'uri')


@t.check('local port is the server\'s port')
def _(d):
    bad = [e for e in d['ev'] if e.get('lport') != d['port']]
    expect(not bad, 'want lport %d:\n%s' % (d['port'], harness.fmt_all(bad)))


@t.check('User-Agent present, and "" when absent')
def _(d):
    for e in by_port(d, 'ka'):
        expect_eq(e['agent'], harness.AGENT, 'agent on the keep-alive connection')
    [e] = by_port(d, 'noagent')
    expect_eq(e['agent'], '', 'agent of a request without User-Agent')
    expect(e['p_agent'] != 0, 'agent pointer is NULL')


@t.check('protocol: HTTP/1.1, HTTP/1.0, HTTP/2.0')
def _(d):
    expect_eq({e['protocol'] for e in by_port(d, 'ka')}, {'HTTP/1.1'}, 'keep-alive connection')
    expect_eq([e['protocol'] for e in by_port(d, 'http10')], ['HTTP/1.0'], 'HTTP/1.0 request')
    expect_eq([e['protocol'] for e in by_port(d, 'v6')], ['HTTP/1.1'], 'curl')
    expect_eq(len([e for e in d['ev'] if e['protocol'] == 'HTTP/2.0']), 3, 'HTTP/2.0 starts')


@t.check('Host header and virtual host name')
def _(d):
    for e in by_port(d, 'ka'):
        expect_eq(e['host'], 'localhost', 'host')
    for e in d['ev']:
        expect_eq(e['vhost'], harness.SERVER_NAME, 'vhost of ' + harness.fmt(e))


@t.check('keep-alive: every request on the connection seen, in order')
def _(d):
    uris = [e['uri'] for e in by_port(d, 'ka')]     # events are in time order
    expect_eq(uris, ['/static.txt?a=1&b=two', '/static.txt', '/static.txt', '/missing?x=1',
                     '/dir/', '/dir', harness.LONG_URI, '/old?r=1', '/gone'],
              'URIs on the keep-alive connection')


@t.check('h2c prior knowledge: three streams on one connection, HTTP/2.0')
def _(d):
    h2 = [e for e in d['ev'] if e['protocol'] == 'HTTP/2.0']
    expect_eq(sorted(e['uri'] for e in h2), ['/dir/', '/missing?h2=1', '/static.txt?h2=1'],
              'h2 stream URIs')
    expect_eq(len({e['rport'] for e in h2}), 1, 'client ports of the h2 streams (one connection)')
    for e in h2:
        expect_eq(e['method'], 'GET', 'method')
        expect_eq(e['raddr'], '127.0.0.1', 'raddr')
        expect_eq(e['agent'], harness.AGENT + '/h2', 'agent')
        expect(e['rport'] not in (0, d['port']), 'h2 rport %r' % e['rport'])


@t.check('internal redirects (ErrorDocument, mod_rewrite): one start, the client\'s URI')
def _(d):
    for uri in ('/missing?x=1', '/old?r=1', '/gone'):
        expect_eq(len(by_uri(d, uri)), 1, 'starts for ' + uri)
    expect_eq([e['uri'] for e in d['ev'] if e['uri'].startswith(('/errors/', '/nowhere'))],
              [], 'starts for the redirect targets')


@t.check('DirectoryIndex: GET /dir/ is one start, no start for its subrequests')
def _(d):
    expect_eq(len(by_uri(d, '/dir/', 'HTTP/1.1')), 1, 'HTTP/1.1 starts for /dir/')
    expect_eq(len(by_uri(d, '/dir/', 'HTTP/2.0')), 1, 'HTTP/2.0 starts for /dir/')
    expect_eq(len([e for e in d['ev'] if 'index.html' in e['uri']]), 0,
              'starts for /dir/index.html')


if __name__ == '__main__':
    t.run(setup)
