#!/usr/bin/python3
"""test_http_backends.py: examples/http-backends.bt against a real Apache.

A private Apache (toolrun.FullServer) whose backends are a virtual host of
its own on a second port (ProxyPass /px/, the balancer /lb/, /busy/, where
the backend answers 503 itself), a port where nothing listens (/dead/),
and a balancer whose first member is that port (/flaky/: mod_proxy tries
the next member after the 503; which /flaky/ requests tried the dead
member first, the error log says: AH01114 with the client's port).  The
tool runs as an operator runs it on a local build, limited to that server
(http-backends.bt PID); the test sends 3 /px/, 2 /lb/, 2 /dead/, 2 /flaky/
and 2 /busy/ requests (whose backend URL is under /px/'s, so mod_proxy
uses /px/'s worker), stops it and compares every map with the attempts
made.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_backends.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
SENT = (('px', 3), ('lb', 2), ('dead', 2), ('flaky', 2), ('busy', 2))


def setup():
    with toolrun.FullServer(tls=False) as s:
        with toolrun.Tool('http-backends.bt', s.httpd.pid) as tool:
            statuses, ports = {}, {}
            for name, n in SENT:
                for i in range(n):
                    # a connection each: Apache closes one after a 503
                    with harness.Http1(s.port) as c:
                        statuses.setdefault(name, []).append(
                            c.get('/%s/static.txt?b=%d' % (name, i)).status)
                        ports.setdefault(name, []).append(c.local_port)
            # proxy-done fires before the client has its response: every
            # attempt is in the maps now
            tool.stop()
            # mod_proxy_balancer (byrequests) does not always pick the dead
            # member of /flaky/ first: the error log says which requests did
            failed = toolrun.failed_connects(s.httpd)
        retried = sum(1 for p in ports['flaky'] if failed.get(p))
        return {'s': s, 'statuses': statuses, 'out': tool.body(), 'retried': retried,
                'failed': failed, 'ports': ports,
                'maps': toolrun.parse_maps(tool.body()), 'stderr': tool.stderr()}


def keys(d):
    s = d['s']
    live, dead = 'http://127.0.0.1:%d' % s.bport, 'http://127.0.0.1:%d' % s.dport
    return {'px': live + '/, ', 'lb': live + ', balancer://pool', 
            'dead': dead + '/, ', 'flaky-dead': dead + ', balancer://flaky',
            'flaky-live': live + ', balancer://flaky'}


@t.check('BEGIN says what is traced and how to stop; the clients got 200 and 503')
def _(d):
    expect_eq(d['out'][0], "Tracing Apache's backends (mod_usdt), server PID %d. Hit Ctrl-C to end."
              % d['s'].httpd.pid, 'first line')
    expect_eq(d['statuses'], {'px': [200] * 3, 'lb': [200] * 2, 'dead': [503] * 2,
                              'flaky': [200] * 2, 'busy': [503] * 2}, 'statuses')


@t.check('attempts per [worker, balancer]: each request one, a retried one two')
def _(d):
    k = keys(d)
    expect_eq([d['failed'].get(p) for p in d['ports']['dead']], [1, 1], 'the error log\'s failed '
              'connects of the /dead/ requests')
    expect(d['retried'] >= 1, 'no /flaky/ request tried the dead member first: %r' % d['failed'])
    # /busy/'s URL is under /px/'s worker: mod_proxy shares it
    want = {k['px']: 3 + 2, k['lb']: 2, k['dead']: 2, k['flaky-live']: 2,
            k['flaky-dead']: d['retried']}
    expect_eq(d['maps'].get('@attempts'), want, 'attempts\n' + '\n'.join(d['out']))


@t.check('status classes: 2xx from the live backend, 5xx from the dead one and /busy/')
def _(d):
    k = keys(d)
    want = {k['px'] + ', 2xx': 3, k['lb'] + ', 2xx': 2, k['dead'] + ', 5xx': 2,
            k['flaky-dead'] + ', 5xx': d['retried'], k['flaky-live'] + ', 2xx': 2,
            k['px'] + ', 5xx': 2}
    expect_eq(d['maps'].get('@attempts_by_status_class'), want, 'status classes')


@t.check('errors: the dead worker\'s 503s are mod_proxy\'s own, /busy/\'s the backend\'s; '
         'the retried requests')
def _(d):
    k = keys(d)
    expect_eq(d['maps'].get('@proxy_errors'), {k['dead'] + ', 503': 2,
                                               k['flaky-dead'] + ', 503': d['retried']},
              'mod_proxy\'s own errors')
    expect_eq(d['maps'].get('@backend_errors'), {k['px'] + ', 503': 2}, 'the backends\' 5xx '
              '(/busy/, under /px/\'s worker)')
    expect_eq(d['maps'].get('@retried_requests'), {'balancer://flaky': d['retried']},
              'retried requests')


@t.check('backend_us: a histogram per key, its total the attempts, within the test\'s time')
def _(d):
    hists = d['maps'].get('@backend_us', {})
    attempts = d['maps'].get('@attempts', {})
    expect_eq(sorted(hists), sorted(attempts), 'histogram keys')
    for key, rows in hists.items():
        expect_eq(toolrun.hist_total(rows), attempts[key], 'histogram total of ' + key)
        expect(all(lo < 10e6 for lo, _, n in rows if n), '%s: an attempt of 10 s or more: %r'
               % (key, rows))


@t.check('bpftrace said nothing on stderr but its known harmless lines; END printed all')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')
    expect_eq(toolrun.trailing_noise(d['out'], r'^\[|^@backend_us'), [], 'after the last map')


if __name__ == '__main__':
    t.run(setup)
