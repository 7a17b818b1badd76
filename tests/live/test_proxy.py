#!/usr/bin/python3
"""test_proxy.py: httpd:::proxy-start and proxy-done as a tracer sees them.

A private Apache with the module, mod_proxy, mod_proxy_http and
mod_proxy_balancer, whose backend is a virtual host of the same server on
a second port: /px/ is a ProxyPass to it, /lb/ a balancer with it as the
only member, /dead/ a ProxyPass to a port where nothing listens (503), /flaky/ a
balancer whose first member is dead, so that mod_proxy tries again.
bpftrace runs test_proxy.bt.  The checks judge what the probes reported:
one proxy-start/proxy-done pair per backend attempt with the client
request's id, the worker's name as configured, the balancer's name, the
URL sent, the attempt's status and its own duration (backend_us: longer
than the backend's own request, shorter than the client's), and
request-handler's "proxy-server".

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_proxy.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import socket
import sys
import threading

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
PROXY_ERROR = harness.record_flag('DTHTTPD_PX_F_PROXY_ERROR')
# Two backends that break HTTP, on loopback ports of the test's own:
# /mute/ reads the request and never answers (mod_proxy_http gives up after
# the worker's timeout), /hangup/ reads it and closes.  Both are 502s of
# mod_proxy's own.
BROKEN = """
ProxyPass /mute/ http://127.0.0.1:{mport}/ timeout=1
ProxyPass /hangup/ http://127.0.0.1:{hport}/
"""


class BrokenBackend:
    """A listener that reads each request, then holds the connection open
    (mute) or closes it (hangup); stopped, it closes everything."""

    def __init__(self, mute):
        self.mute, self.held, self.stop = mute, [], threading.Event()
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(5)
            try:
                conn.recv(65536)
            except OSError:
                pass
            if self.mute:
                self.held.append(conn)
            else:
                conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.sock.close()
        return False


def setup():
    bport, dport = harness.free_port(), harness.free_port()
    with BrokenBackend(mute=True) as mute, BrokenBackend(mute=False) as hangup, \
            harness.Apache(extra=harness.proxy_conf(bport, dport) +
                           BROKEN.format(mport=mute.port, hport=hangup.port)) as httpd:
        with harness.Tracer('test_proxy.bt', strlen=120) as tracer:
            sent = {}
            # a connection each: Apache closes one after a 503
            for name, target in (('px', '/px/static.txt?p=1'), ('lb', '/lb/static.txt?p=2'),
                                 ('dead', '/dead/static.txt?p=3'), ('plain', '/static.txt?p=4'),
                                 ('flaky1', '/flaky/static.txt?p=5'),
                                 ('flaky2', '/flaky/static.txt?p=6'),
                                 ('busy', '/busy/static.txt?p=7'),
                                 ('override', '/busy-override/static.txt?p=8'),
                                 ('mute', '/mute/static.txt?p=9'),
                                 ('hangup', '/hangup/static.txt?p=10')):
                with harness.Http1(httpd.port) as c:
                    resp = c.get(target)
                sent[name] = {'target': target, 'status': resp.status, 'body': resp.body}
            statuses, _ = harness.nghttp([httpd.url('/px/static.txt?p=h2')])
            sent['h2'] = {'target': '/px/static.txt?p=h2', 'status': statuses[0]}
            # the client requests and the seven the backend served (px, lb,
            # flaky1, flaky2, busy, override, h2)
            tracer.wait_for(lambda evs: len([e for e in harness.client_events(evs)
                                             if e['probe'] == 'done']) >= len(sent) + 7, 15)
        events = tracer.events()
    return {'bport': bport, 'dport': dport, 'mport': mute.port, 'hport': hangup.port,
            'sent': sent, 'all': events,
            'lost': tracer.lost(), 'stderr': tracer.stderr(), 'errors': httpd.errors()}


def by(d, probe, **kw):
    return [e for e in d['all'] if e['probe'] == probe
            and all(e.get(k) == v for k, v in kw.items())]


def client_done(d, name):
    evs = by(d, 'done', uri=d['sent'][name]['target'])
    expect_eq(len(evs), 1, 'request-done of %s\n%s' % (name, harness.fmt_all(d['all'], 60)))
    return evs[0]


def attempt(d, name):
    rid = client_done(d, name)['id']
    starts, dones = by(d, 'proxy-start', id=rid), by(d, 'proxy-done', id=rid)
    expect_eq((len(starts), len(dones)), (1, 1), 'proxy-start, proxy-done of %s' % name)
    return starts[0], dones[0]


@t.check('the tracer saw proxy events and lost none; the clients got 200, 200, 503, 200, '
         'and the busy backend\'s 503s')
def _(d):
    expect(by(d, 'proxy-start'), 'no proxy-start event\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    expect_eq({k: v['status'] for k, v in d['sent'].items()},
              {'px': 200, 'lb': 200, 'dead': 503, 'plain': 200, 'h2': 200, 'flaky1': 200,
               'flaky2': 200, 'busy': 503, 'override': 503, 'mute': 502, 'hangup': 502},
              'statuses')
    expect_eq(d['sent']['px']['body'], harness.DOCS['static.txt'].encode(), 'proxied body')


@t.check('every proxy-start is followed by exactly one proxy-done with the same id')
def _(d):
    starts, dones = by(d, 'proxy-start'), by(d, 'proxy-done')
    expect_eq(sorted(e['id'] for e in starts), sorted(e['id'] for e in dones), 'ids')
    expect(len(starts) >= 11, 'attempts (px, lb, dead, h2, busy, override, mute, hangup, flaky '
           'twice, one of them retried): %d' % len(starts))
    # per request: start, done, start, done... (a retry is another pair)
    for rid in {e['id'] for e in starts}:
        seq = [e['probe'] for e in sorted(by(d, 'proxy-start', id=rid) + by(d, 'proxy-done', id=rid),
                                          key=lambda e: e['t'])]
        expect_eq(seq, ['proxy-start', 'proxy-done'] * (len(seq) // 2),
                  'proxy events of request %d in time order' % rid)
    expect_eq(by(d, 'proxy-start', id=client_done(d, 'plain')['id']), [],
              'proxy-start for a request that was not proxied')


@t.check('ProxyPass: the worker as configured, no balancer, the URL sent, status 200')
def _(d):
    s, q = attempt(d, 'px')
    worker = 'http://127.0.0.1:%d/' % d['bport']
    expect_eq((s.get('backend'), s.get('r_backend'), s.get('balancer'), s.get('r_balancer')),
              (worker, worker, '', ''), 'proxy-start backend and balancer (native, record)')
    expect_eq(s.get('url'), 'http://127.0.0.1:%d/static.txt?p=1' % d['bport'], 'URL sent')
    expect_eq((s.get('status'), s.get('r_status'), s.get('r_backend_us')), (0, 0, 0),
              'proxy-start status and backend_us')
    expect_eq((q.get('status'), q.get('r_status'), q.get('backend'), q.get('url')),
              (200, 200, worker, s.get('url')), 'proxy-done')
    expect_eq((s.get('r_flags'), q.get('r_flags')), (0, 0), 'flags at proxy-start and -done')
    expect_eq((s.get('r_id'), q.get('r_id')), (s['id'], q['id']), 'record ids')
    expect_eq((s.get('raddr'), s.get('laddr'), s.get('ipversion'), s.get('ptr_size')),
              ('127.0.0.1', '127.0.0.1', 4, 8), 'the client connection in the record')


@t.check('balancer: the member mod_proxy_balancer chose, the balancer\'s name')
def _(d):
    s, q = attempt(d, 'lb')
    member = 'http://127.0.0.1:%d' % d['bport']
    expect_eq((s.get('backend'), s.get('balancer')), (member, 'balancer://pool'),
              'proxy-start backend, balancer')
    expect_eq((q.get('backend'), q.get('balancer'), q.get('status')),
              (member, 'balancer://pool', 200), 'proxy-done backend, balancer, status')


@t.check('a dead backend: proxy-done 503, mod_proxy\'s own (flags PROXY_ERROR); request-done 503')
def _(d):
    s, q = attempt(d, 'dead')
    expect_eq(s.get('backend'), 'http://127.0.0.1:%d/' % d['dport'], 'backend')
    expect_eq((q.get('status'), q.get('r_flags')), (503, PROXY_ERROR), 'proxy-done status, flags')
    expect_eq(s.get('r_flags'), 0, 'proxy-start flags')
    expect_eq(client_done(d, 'dead').get('status'), 503, 'request-done status')


@t.check('a backend that answers nothing in time, or hangs up: proxy-done 502, mod_proxy\'s own')
def _(d):
    for name, port in (('mute', d['mport']), ('hangup', d['hport'])):
        s, q = attempt(d, name)
        expect_eq((q.get('backend'), q.get('status'), q.get('r_flags')),
                  ('http://127.0.0.1:%d/' % port, 502, PROXY_ERROR),
                  '%s: proxy-done backend, status, flags' % name)
        expect_eq(client_done(d, name).get('status'), 502, '%s: request-done status' % name)
    # the worker's timeout=1: the mute attempt lasted about a second
    expect(0.9e6 <= attempt(d, 'mute')[1]['backend_us'] < 5e6,
           'mute backend_us %r' % attempt(d, 'mute')[1])


@t.check('a backend that answers 503 itself: proxy-done 503, flags 0, with and without '
         'ProxyErrorOverride')
def _(d):
    worker = 'http://127.0.0.1:%d/' % d['bport']
    for name, uri in (('busy', '/unavailable/static.txt?p=7'),
                      ('override', '/unavailable/static.txt?p=8')):
        s, q = attempt(d, name)
        expect_eq((q.get('backend'), q.get('status'), q.get('r_flags')), (worker, 503, 0),
                  '%s: proxy-done backend, status, flags' % name)
        back = [e for e in by(d, 'done', uri=uri) if e.get('lport') == d['bport']]
        expect_eq([e.get('status') for e in back], [503], '%s: the backend\'s own request-done'
                  % name)
        expect_eq(client_done(d, name).get('status'), 503, '%s: request-done status' % name)


@t.check('backend_us: the attempt\'s own time, within the client request, around the backend\'s')
def _(d):
    for name, backend_uri in (('px', '/static.txt?p=1'), ('lb', '/static.txt?p=2'),
                              ('h2', '/static.txt?p=h2')):
        s, q = attempt(d, name)
        client = client_done(d, name)
        back = [e for e in by(d, 'done', uri=backend_uri) if e.get('lport') == d['bport']]
        expect_eq(len(back), 1, 'the backend\'s request-done for %s' % name)
        expect_eq(q.get('r_backend_us'), q.get('backend_us'), 'native vs record backend_us')
        expect(back[0]['elapsed'] < q['backend_us'] <= client['elapsed'],
               '%s: backend %d us < backend_us %d us <= client %d us'
               % (name, back[0]['elapsed'], q['backend_us'], client['elapsed']))
        expect(s.get('elapsed', 0) <= client['elapsed'], 'proxy-start elapsed')
    s, q = attempt(d, 'dead')
    expect(0 < q['backend_us'] <= client_done(d, 'dead')['elapsed'], 'dead backend_us %r' % q)


@t.check('a retried backend call is another pair: 503 from the dead member, then 200')
def _(d):
    dead, live = 'http://127.0.0.1:%d' % d['dport'], 'http://127.0.0.1:%d' % d['bport']
    retried = 0
    for name in ('flaky1', 'flaky2'):
        rid = client_done(d, name)['id']
        starts, dones = by(d, 'proxy-start', id=rid), by(d, 'proxy-done', id=rid)
        expect_eq(len(starts), len(dones), '%s: starts and dones' % name)
        got = [(s.get('backend'), q.get('backend'), q.get('status'), q.get('balancer'))
               for s, q in zip(starts, dones)]
        expect(all(s['t'] < q['t'] for s, q in zip(starts, dones)) and
               all(q['t'] < s['t'] for q, s in zip(dones, starts[1:])),
               '%s: pairs interleaved: %r' % (name, got))
        if len(starts) == 2:
            retried += 1
            expect_eq(got, [(dead, dead, 503, 'balancer://flaky'),
                            (live, live, 200, 'balancer://flaky')], '%s attempts' % name)
            expect_eq([q.get('r_flags') for q in dones], [PROXY_ERROR, 0], '%s flags' % name)
        else:
            expect_eq(got, [(live, live, 200, 'balancer://flaky')], '%s attempt' % name)
    expect(retried >= 1, 'neither request tried the dead member first')


@t.check('request-handler names the proxy: proxy-server')
def _(d):
    for name in ('px', 'lb', 'dead', 'h2'):
        rid = client_done(d, name)['id']
        expect_eq([e.get('handler') for e in by(d, 'handler', id=rid)], ['proxy-server'],
                  'request-handler of %s' % name)


if __name__ == '__main__':
    t.run(setup)
