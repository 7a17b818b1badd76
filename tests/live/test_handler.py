#!/usr/bin/python3
"""test_handler.py: httpd:::request-handler and the timeline of
request-done as a tracer sees them.

A private Apache with the module, mod_status (server-status), mod_cgid
(a CGI script that waits 0.3 s before it answers), mod_auth_basic (a page
that needs a user) and a page denied to all, bpftrace running
test_handler.bt, and requests to each.  The checks judge what the probes
reported: the handler's name as %R logs it (ap_invoke_handler()'s: for a
static file its content type), one request-handler per handler run (an
ErrorDocument is a second one, same id), none for a request denied before
its handler; the timeline 0 < handler_us <= first_byte_us <= last_byte_us
<= elapsed_us; a slow handler seen in first_byte_us - handler_us; a slow
client (it stops reading near the end of a 1 MB file) seen in elapsed_us -
last_byte_us; zeros where a stage was not reached; the record's filename,
content type and user.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_handler.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import base64
import os
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
SLOW_CGI_S = harness.SLOW_CGI_S
CLIENT_STALL_S = 0.6
BIG_SIZE = 1 << 20
# The slow client stops reading with this much of the body still to come:
# more than the socket buffers hold (so Apache still has bytes to write),
# less than they and the core's 64 KB of set-aside data hold (so the end of
# the response has left the request's filters).
STALL_TAIL = 72 * 1024
EXTRA = """
LoadModule status_module {moddir}/mod_status.so
LoadModule auth_basic_module {moddir}/mod_auth_basic.so
LoadModule authn_core_module {moddir}/mod_authn_core.so
LoadModule authn_file_module {moddir}/mod_authn_file.so
LoadModule authz_user_module {moddir}/mod_authz_user.so
<Location /server-status>
    SetHandler server-status
</Location>
<Location /denied.txt>
    Require all denied
</Location>
<Location /private.txt>
    AuthType Basic
    AuthName usdt
    AuthUserFile "{{root}}/htpasswd"
    Require valid-user
</Location>
SendBufferSize 16384
""".format(moddir=harness.APACHE_MODULES) + harness.cgi_conf()


def prepare(httpd):
    harness.cgi_script(httpd, 'slow.sh')
    for name in ('denied.txt', 'private.txt'):
        with open(os.path.join(httpd.docroot, name), 'w') as f:
            f.write('not for everyone\n')
        os.chmod(os.path.join(httpd.docroot, name), 0o644)
    with open(os.path.join(httpd.docroot, 'big.bin'), 'wb') as f:
        f.write(b'x' * BIG_SIZE)
    os.chmod(os.path.join(httpd.docroot, 'big.bin'), 0o644)
    subprocess.run(['htpasswd', '-cb', httpd.path('htpasswd'), 'alice', 'secret'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    os.chmod(httpd.path('htpasswd'), 0o644)


def slow_client(port):
    """GET /big.bin, read all but STALL_TAIL bytes, stall, read the rest."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(('127.0.0.1', port))
    local = s.getsockname()[1]
    s.sendall(b'GET /big.bin?slow=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
    data = b''
    while b'\r\n\r\n' not in data:
        data += s.recv(4096)
    head, body = data.split(b'\r\n\r\n', 1)
    got = len(body)
    while got < BIG_SIZE - STALL_TAIL:
        chunk = s.recv(min(4096, BIG_SIZE - STALL_TAIL - got))
        if not chunk:
            break
        got += len(chunk)
    time.sleep(CLIENT_STALL_S)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += len(chunk)
    s.close()
    return {'port': local, 'status': int(head.split(b' ')[1]), 'bytes': got}


def setup():
    httpd = harness.Apache(extra=EXTRA)
    prepare(httpd)
    with httpd:
        with harness.Tracer('test_handler.bt') as tracer:
            sent = {}
            with harness.Http1(httpd.port) as c:
                for name, target, hdrs in (
                        ('static', '/static.txt?t=1', []),
                        ('status', '/server-status?auto', []),
                        ('cgi', '/cgi-bin/slow.sh', []),
                        ('dirindex', '/dir/', []),
                        ('missing', '/missing?t=1', []),
                        ('denied', '/denied.txt', []),
                        ('private', '/private.txt', ['Authorization: Basic ' +
                                                      base64.b64encode(b'alice:secret').decode()])):
                    sent[name] = {'status': c.get(target, headers=hdrs).status,
                                  'port': c.local_port, 'target': target}
                etag = c.get('/static.txt?t=etag').headers['etag']
                sent['notmodified'] = {'status': c.get('/static.txt?t=304', headers=[
                    'If-None-Match: ' + etag]).status, 'target': '/static.txt?t=304'}
            sent['slow'] = slow_client(httpd.port)
            statuses, _ = harness.nghttp([httpd.url('/static.txt?t=h2')])
            sent['h2'] = {'status': statuses[0], 'target': '/static.txt?t=h2'}
            tracer.wait_for(lambda evs: len([e for e in harness.client_events(evs)
                                             if e['probe'] == 'done']) >= len(sent) + 1, 15)
        events = tracer.events()
    return {'sent': sent, 'all': events, 'lost': tracer.lost(), 'stderr': tracer.stderr(),
            'errors': httpd.errors()}


def done_of(d, name):
    target = d['sent'][name].get('target', '/big.bin?slow=1')
    evs = [e for e in d['all'] if e['probe'] == 'done' and e.get('uri') == target]
    expect_eq(len(evs), 1, 'request-done for %s\n%s' % (target, harness.fmt_all(d['all'], 80)))
    return evs[0]


def handlers_of(d, name):
    rid = done_of(d, name)['id']
    return [e for e in d['all'] if e['probe'] == 'handler' and e['id'] == rid]


@t.check('the tracer saw request-handler events and lost none; clients got what they asked')
def _(d):
    expect(any(e['probe'] == 'handler' for e in d['all']),
           'no request-handler event\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    want = {'static': 200, 'status': 200, 'cgi': 200, 'dirindex': 200, 'missing': 404,
            'denied': 403, 'private': 200, 'notmodified': 304, 'slow': 200, 'h2': 200}
    expect_eq({k: v['status'] for k, v in d['sent'].items()}, want, 'statuses')
    expect_eq(d['sent']['slow']['bytes'], BIG_SIZE, 'bytes the slow client read')


@t.check('handler names as %R logs them: content type, server-status, cgi-script')
def _(d):
    for name, want in (('static', 'text/plain'), ('status', 'server-status'),
                       ('cgi', 'cgi-script'), ('dirindex', 'text/html'),
                       ('private', 'text/plain'), ('notmodified', 'text/plain')):
        evs = handlers_of(d, name)
        expect_eq([e.get('handler') for e in evs], [want], 'request-handler of %s' % name)
        expect_eq(evs[0].get('r_handler'), want, 'record handler of %s' % name)
        expect_eq(done_of(d, name).get('r_handler'), want, 'request-done handler of %s' % name)


@t.check('request-handler: the URI after mapping, and one per internal redirect')
def _(d):
    expect_eq([e.get('mapped') for e in handlers_of(d, 'dirindex')], ['/dir/index.html'],
              'mod_dir\'s DirectoryIndex')
    expect_eq([(e.get('handler'), e.get('mapped')) for e in handlers_of(d, 'missing')],
              [('default-handler', '/missing'), ('text/html', '/errors/404.html')],
              'a 404 with ErrorDocument: the first handler, then the error document\'s')
    done = done_of(d, 'missing')
    expect_eq((done.get('status'), done.get('status_first'), done.get('flags', 0) & 8),
              (404, 404, 8), 'request-done status, status_first, redirect flag')


@t.check('request-handler agrees with request-done: same id, 0 status, earlier elapsed')
def _(d):
    for e in [e for e in d['all'] if e['probe'] == 'handler']:
        done = [x for x in d['all'] if x['probe'] == 'done' and x['id'] == e['id']]
        expect_eq(len(done), 1, 'request-done for request-handler %r' % e)
        expect_eq((e.get('status'), e.get('r_id')), (0, e['id']), 'status and record id')
        expect(e.get('elapsed', -1) <= done[0].get('elapsed', 0), 'elapsed %r' % e)


@t.check('no request-handler for a request denied before its handler; its timeline is 0')
def _(d):
    expect_eq(handlers_of(d, 'denied'), [], 'request-handler of the 403')
    done = done_of(d, 'denied')
    expect_eq((done.get('handler_us'), done.get('first_byte_us'), done.get('last_byte_us')),
              (0, 0, 0), 'timeline of the 403')
    expect(done.get('elapsed', 0) > 0, 'elapsed of the 403')


@t.check('timeline: 0 < handler_us <= first_byte_us <= last_byte_us <= elapsed_us (HTTP/1.1, h2c)')
def _(d):
    for name in ('static', 'status', 'cgi', 'dirindex', 'private', 'notmodified', 'slow', 'h2'):
        e = done_of(d, name)
        marks = (e.get('handler_us'), e.get('first_byte_us'), e.get('last_byte_us'),
                 e.get('elapsed'))
        expect(0 < marks[0] <= marks[1] <= marks[2] <= marks[3],
               '%s: handler, first byte, last byte, elapsed = %r' % (name, marks))


@t.check('a slow handler shows in first_byte_us - handler_us (CGI waits 0.3 s)')
def _(d):
    e = done_of(d, 'cgi')
    gap = e['first_byte_us'] - e['handler_us']
    expect(gap >= SLOW_CGI_S * 1e6 * 0.9, 'first byte %d us after the handler began' % gap)
    fast = done_of(d, 'static')
    expect(fast['first_byte_us'] - fast['handler_us'] < SLOW_CGI_S * 1e6 / 3,
           'static file: first byte %d us after the handler' %
           (fast['first_byte_us'] - fast['handler_us']))


@t.check('a slow client shows after last_byte_us (it stalls 0.6 s before the last bytes)')
def _(d):
    e = done_of(d, 'slow')
    tail = e['elapsed'] - e['last_byte_us']
    expect(tail >= CLIENT_STALL_S * 1e6 * 0.8,
           'request-done %d us after the last byte left the filters (handler %d, first %d, '
           'last %d, elapsed %d)' % (tail, e['handler_us'], e['first_byte_us'],
                                     e['last_byte_us'], e['elapsed']))
    fast = done_of(d, 'static')
    expect(fast['elapsed'] - fast['last_byte_us'] < CLIENT_STALL_S * 1e6 / 3,
           'static file: done %d us after its last byte'
           % (fast['elapsed'] - fast['last_byte_us']))


@t.check('record: filename, response content type, authenticated user')
def _(d):
    e = done_of(d, 'static')
    expect(e.get('filename', '').endswith('/htdocs/static.txt'), 'filename %r' % e.get('filename'))
    expect_eq(e.get('content_type'), 'text/plain', 'content type')
    expect_eq(e.get('user'), '', 'user without authentication')
    expect_eq(done_of(d, 'private').get('user'), 'alice', 'user of the Basic-auth request')
    expect_eq(done_of(d, 'missing').get('content_type'), 'text/html', 'the error document\'s type')


if __name__ == '__main__':
    t.run(setup)
