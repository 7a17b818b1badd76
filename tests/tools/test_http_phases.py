#!/usr/bin/python3
"""test_http_phases.py: examples/http-phases.bt against a real Apache.

A private Apache (toolrun.FullServer) and two copies of the tool: one that
reports at Ctrl-C only, limited to the server (http-phases.bt 0 PID), and
one that also reports every second (http-phases.bt 1).  The traffic: 4
static requests on a keep-alive connection, 2 slow CGI requests (the CGI
waits 0.3 s before it answers: the handler's segment), 2 proxied requests
(each also a request of the backend vhost), 2 h2c streams, and one request
Apache rejects before any handler (400).  The checks compare the
histograms' totals with the requests sent, the CGI's rows with its delay,
and the shares with the segments' totals.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_phases.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
SEGMENTS = ['@us_1_before_handler', '@us_2_handler_to_first_byte', '@us_3_first_to_last_byte',
            '@us_4_last_byte_to_done']
# handler -> requests: static files by content type, CGI, mod_proxy; the
# backend's own requests for /px/ are static files too
HANDLED = {'text/plain': 4 + 2 + 2, 'cgi-script': 2, 'proxy-server': 2}
ALL = sum(HANDLED.values()) + 1          # and the 400


def setup():
    with toolrun.FullServer(tls=False) as s:
        with toolrun.Tool('http-phases.bt', 0, s.httpd.pid) as tool, \
                toolrun.Tool('http-phases.bt', 1) as ticking:
            sent = []
            with harness.Http1(s.port) as c:
                sent += [c.get('/static.txt?ph=%d' % i).status for i in range(4)]
            with harness.Http1(s.port) as c:
                sent += [c.get('/cgi-bin/slow.sh?ph=%d' % i).status for i in range(2)]
            with harness.Http1(s.port) as c:
                sent += [c.get('/px/static.txt?ph=%d' % i).status for i in range(2)]
            statuses, _ = harness.nghttp([s.httpd.url('/static.txt?ph=h2-%d' % i)
                                          for i in range(2)])
            sent += statuses
            with harness.Http1(s.port) as c:
                c.send(b'GARBAGE\r\n\r\n')
                sent.append(c.response().status)
            # an idle second for the ticking copy, then both stop
            ticking.wait_for(lambda ls: sum(1 for l in ls if 'no requests' in l) >= 1
                             and any('@requests[all]' in l for l in ls), 10)
            tool.stop()
            time.sleep(0.1)
            ticking.stop()
        return {'s': s, 'sent': sent, 'out': tool.body(), 'ticking': ticking.body(),
                'maps': toolrun.parse_maps(tool.body()),
                'stderr': tool.stderr() + ticking.stderr()}


@t.check('BEGIN says what is traced and how to stop; the clients got 200s and a 400')
def _(d):
    expect_eq(d['out'][0], "Tracing Apache's time by segment (mod_usdt), server PID %d, until "
              "Ctrl-C. Hit Ctrl-C to end." % d['s'].httpd.pid, 'first line')
    expect_eq(d['ticking'][0], "Tracing Apache's time by segment (mod_usdt), every server, every "
              "1 s. Hit Ctrl-C to end.", 'first line, every second')
    expect_eq(sorted(d['sent']), [200] * 10 + [400], 'statuses')


@t.check('requests: all of them, the 400 without a handler')
def _(d):
    expect_eq(d['maps'].get('@requests'), {'all': ALL, 'without a handler': 1},
              'requests\n' + '\n'.join(d['out']))


@t.check('each segment\'s histogram holds every request that reached a handler')
def _(d):
    for name in SEGMENTS:
        rows = d['maps'].get(name, {}).get(None)
        expect(rows is not None, 'no %s' % name)
        expect_eq(toolrun.hist_total(rows), ALL - 1, 'total of ' + name)


@t.check('by handler: each segment, each handler, its requests')
def _(d):
    for name in SEGMENTS:
        got = {k: toolrun.hist_total(v) for k, v in d['maps'].get(name + '_by_handler', {}).items()}
        expect_eq(got, HANDLED, name + '_by_handler')


@t.check('the slow CGI: handler to first byte in the rows of %s s and more' % harness.SLOW_CGI_S)
def _(d):
    rows = d['maps']['@us_2_handler_to_first_byte_by_handler']['cgi-script']
    for lo, hi, n in rows:
        if n:
            expect(hi is not None and hi > harness.SLOW_CGI_S * 1e6 and lo < 10e6,
                   'a CGI request in [%s, %s)' % (lo, hi))


@t.check('the share: four per cents of the segments\' totals, summing to the whole')
def _(d):
    text = '\n'.join(d['out'])
    m = re.search(r'Share of the time, of (\d+) us in all:\n((?:  \d .*\n){4})', text + '\n')
    expect(m, 'no share block in\n' + text)
    total = int(m.group(1))
    rows = re.findall(r'^  (\d) [a-z ]+ +(\d+)\.(\d)%  (\d+) us$', m.group(2), re.M)
    expect_eq([r[0] for r in rows], ['1', '2', '3', '4'], 'segments')
    us = [int(r[3]) for r in rows]
    expect_eq(sum(us), total, 'the segments\' us against the whole')
    for seg, whole, tenth, n in rows:
        expect_eq(int(whole) * 10 + int(tenth), n and int(n) * 1000 // total, 'per mille of ' + seg)
    expect(us[1] >= 2 * harness.SLOW_CGI_S * 1e6 * 0.9 and us[1] == max(us),
           'the CGI\'s segment is the largest: %r' % us)


@t.check('every second: reports, an idle one, their requests adding up to at most those sent')
def _(d):
    heads = [l for l in d['ticking'] if re.match(r'^\d\d:\d\d:\d\d, the last 1 s:', l)]
    expect(heads, 'no interval report\n' + '\n'.join(d['ticking']))
    expect(any(l.endswith('no requests') for l in heads), 'no idle report: %r' % heads)
    counts = [int(x) for x in re.findall(r'^@requests\[all\]: (\d+)$', '\n'.join(d['ticking']),
                                         re.M)]
    # a request done while bpftrace prints and clears, at the turn of a
    # second, can go uncounted; other tests' servers can add some
    expect(counts and sum(counts) >= ALL - 1, 'requests in the reports: %r' % counts)


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
