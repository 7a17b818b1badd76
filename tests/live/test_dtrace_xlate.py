#!/usr/bin/python3
"""test_dtrace_xlate.py: a real DTrace translates the record of a live request.

The module is built here through configure and make on the real-DTrace
route with Oracle's dtrace-utils (../shared/tools/dtrace-utils, built with
FEED=1 into $USDT_DTRACE_UTILS_CACHE, default /var/cache/mod-usdt-dtrace-utils;
tests/static/test_dtrace_real.sh builds it under CI), with one change in
this test's own build tree: its USDT_<PROBE>_ENABLED() checks are forced
true, because this kernel's lockdown forbids the BPF helper dtrace-utils
sets is-enabled probes with (bpf_probe_write_user), and it has no CUSE for
the helper device a process registers its probes through, so feed.sh
registers the module's DOF for each child instead (dtprobed -X), into a
DOF stash of this run's own.  The D library httpd.d is installed where
that dtrace reads libraries (and removed at the end).  A private Apache serves HTTP/1.1 over IPv4 and IPv6 and h2c;
dtrace runs `httpd$PID:::request-done` with xlate <httpd_rqinfo_t *> and
xlate <conninfo_t *> of arg0, the record; the checks compare what it
printed with what each client did: URI, status, method, addresses, ports,
IP version, protocol.

Run: srcdir=. tests/live/test_dtrace_xlate.py     (root; TAP; about a minute)
Skips with the reason where there is no such dtrace-utils, except under CI=true.

Licensed under the Apache License, Version 2.0.
"""

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

PREFIX = os.environ.get('USDT_DTRACE_UTILS_CACHE', '/var/cache/mod-usdt-dtrace-utils')
TOOLS = os.environ.get('USDT_DTRACE_UTILS',
                       os.path.join(harness.SRCDIR, '..', 'shared', 'tools', 'dtrace-utils'))
DTRACE = os.path.join(PREFIX, 'sbin', 'dtrace')
FEED = os.path.join(TOOLS, 'feed.sh')
NEEDS = ('root', 'apache', 'curl', 'nghttp')

REC = '((dthttpd_t *)arg0)'
RQ = 'xlate <httpd_rqinfo_t *>' + REC
CI = 'xlate <conninfo_t *>' + REC
# At most two translated strings per clause: dtrace-utils aborts on more
# (dt_cg_tstring_xalloc); this-> variables carry them to the printing clause.
PROGRAM = """\
#pragma D option quiet
#pragma D option strsize=256
BEGIN {{ printf("ready\\n"); }}
{probes} {{ this->uri = {rq}->rq_uri; this->proto = {rq}->rq_protocol; }}
{probes} {{ this->local = {ci}->ci_local; this->remote = {ci}->ci_remote; }}
{probes} {{ this->method = {rq}->rq_method; this->family = {ci}->ci_protocol; }}
{probes}
{{
	printf("REQ status=%d lport=%d rport=%d ipversion=%d id=%d uri=%s protocol=%s local=%s remote=%s method=%s family=%s\\n",
	    {rq}->rq_status, {rq}->rq_lport, {rq}->rq_rport, {rq}->rq_ipversion,
	    {rq}->rq_id, this->uri, this->proto, this->local, this->remote, this->method,
	    this->family);
}}
"""

t = harness.Tap()


def lock():
    """One test at a time builds dtrace-utils or installs httpd.d into its
    library directory (tests/static/test_dtrace_real.sh takes the same lock)."""
    try:
        f = open(PREFIX + '.lock', 'a')
    except OSError:
        return None
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def why_not():
    build_sh = os.path.join(TOOLS, 'build.sh')
    if (not os.path.isfile(os.path.join(PREFIX, '.feed')) and os.path.isfile(build_sh)
            and os.geteuid() == 0 and (harness.IN_CI or os.environ.get('USDT_BUILD_DTRACE') == '1')):
        p = subprocess.run(['bash', build_sh, PREFIX], env=dict(os.environ, FEED='1'),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=1800)
        if p.returncode != 0:
            return 'FEED=1 bash %s %s failed:\n%s' % (build_sh, PREFIX, p.stdout[-2000:])
    if not os.path.isfile(os.path.join(PREFIX, '.feed')) or not os.access(DTRACE, os.X_OK):
        return ('no dtrace-utils built with FEED=1 in %s (FEED=1 bash %s/build.sh %s)'
                % (PREFIX, TOOLS, PREFIX))
    if not os.path.isfile(FEED):
        return 'no %s (set USDT_DTRACE_UTILS to ../shared/tools/dtrace-utils)' % FEED
    return None


def run(cmd, cwd=None, timeout=600, env=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise RuntimeError('%s: exit %d:\n%s' % (' '.join(cmd), p.returncode, p.stdout[-3000:]))
    return p.stdout


def build(tmp):
    """The module on the real-DTrace route, its checks forced true."""
    b = os.path.join(tmp, 'build')
    os.mkdir(b)
    env = {k: v for k, v in os.environ.items() if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')}
    run([os.path.join(harness.SRCDIR, 'configure'), '--with-dtrace=' + DTRACE,
         '--with-apache-moduledir=' + os.path.join(tmp, 'modules')], cwd=b, env=env)
    run(['make', 'src/usdt_probe_macros.h'], cwd=b, env=env)
    macros = os.path.join(b, 'src', 'usdt_probe_macros.h')
    with open(macros) as f:
        text = f.read()
    forced = re.sub(r'^(#define USDT_\w+_ENABLED\(\)) .*$', r'\1 1', text, flags=re.M)
    expect(forced != text, 'no USDT_*_ENABLED() in %s' % macros)
    with open(macros, 'w') as f:
        f.write(forced)
    run(['make', '-j2'], cwd=b, env=env)
    with open(macros) as f:
        expect(f.read() == forced, 'make regenerated %s' % macros)
    return b, os.path.join(PREFIX, 'lib64', 'dtrace')


def setup():
    tmp = tempfile.mkdtemp(prefix='usdt-xlate-')
    data = {'tmp': tmp, 'installed': None}
    try:
        b, libdir = build(tmp)
        data['build'] = b
        module = os.path.join(b, 'src', '.libs', 'mod_usdt.so')
        data['dof'] = run(['python3', os.path.join(harness.SRCDIR, 'tests', 'static', 'dof_probes.py'),
                           module])
        target = os.path.join(libdir, 'httpd.d')
        expect(not os.path.exists(target), '%s exists already: not ours to replace' % target)
        shutil.copyfile(os.path.join(b, 'dtrace', 'httpd.d'), target)
        data['installed'] = target
        harness.MODULE = module
        # A DOF stash of this run's own (dtprobed -s, dtrace -x dofstashpath,
        # as dtrace-utils' runtest.sh does), not the system's /run/dtrace:
        # nothing removes a fed process's entries there when it dies (that
        # is the daemon's job, and there is no daemon without CUSE), and
        # when a child of a later run gets a dead child's pid, dtprobed
        # keeps the dead one's probe link (linkat EEXIST is ignored in
        # dof_stash_write_parsed) with addresses that are not mapped in the
        # new process, so dtrace matches no probe for that pid.
        stash = os.path.join(tmp, 'dtrace-stash')
        dtrace = [DTRACE, '-x', 'dofstashpath=' + stash]
        with harness.Apache(start_servers=1) as httpd:
            data['port'] = httpd.port
            kids = httpd.children()
            expect(kids, 'no Apache child')
            data['feed'] = []
            for pid in kids:
                # SIGPIPE stays ignored (restore_signals=False): feed.sh runs
                # `readelf -sW | awk '... { print $2; exit }'` under set -e
                # and pipefail, so when awk exits at __SUNW_dof before
                # readelf has written the rest of the symbol table, readelf
                # dies of SIGPIPE and feed.sh exits 141 having registered
                # nothing (10 of 200 runs here).  Ignored, it is EPIPE, which
                # readelf does not fail on.
                p = subprocess.run(['bash', FEED, PREFIX, str(pid), module], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True, timeout=60,
                                   env=dict(os.environ, DTPROBED_OPTS='-s' + stash),
                                   restore_signals=False)
                data['feed'].append((pid, p.returncode, p.stdout))
            # dtprobed -X has written the stash before it exits: a probe it
            # did not register is a failure now, not something to wait for.
            for pid, rc, said in data['feed']:
                listed = subprocess.run(dtrace + ['-l', '-n', 'httpd%d:::request-done' % pid],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        universal_newlines=True, timeout=60)
                # (dtrace -l exits 0 when it matches nothing: look for the row)
                row = r'^\s*\d+\s+httpd%d\s+mod_usdt\.so\s+\S+\s+request-done\s*$' % pid
                expect(listed.returncode == 0 and re.search(row, listed.stdout, re.M),
                       'child %d: dtrace -l does not list httpd%d:::request-done after feed.sh '
                       '(exit %d):\n%s\nfeed.sh (exit %d) said:\n%s'
                       % (pid, pid, listed.returncode, listed.stdout[-2000:], rc, said))
            probes = ','.join('httpd%d:::request-done' % pid for pid in kids)
            prog = os.path.join(tmp, 'xlate.d')
            with open(prog, 'w') as f:
                f.write(PROGRAM.format(probes=probes, rq=RQ, ci=CI))
            out = open(os.path.join(tmp, 'dtrace.out'), 'w+')
            dt = subprocess.Popen(dtrace + ['-s', prog], stdout=out, stderr=subprocess.STDOUT,
                                  universal_newlines=True, preexec_fn=harness._tracer_preexec)

            def printed():
                out.flush()
                with open(out.name) as f:
                    return f.read()
            try:
                ready = harness.wait_until(lambda: 'ready' in printed() or dt.poll() is not None, 60)
                expect(ready and dt.poll() is None, 'dtrace did not start:\n' + printed()[-3000:])
                clients = {}
                with harness.Http1(httpd.port, '127.0.0.1') as c:
                    clients['/static.txt?n=1'] = (c.get('/static.txt?n=1', agent='xlate').status,
                                                  c.local_port, '127.0.0.1', 'HTTP/1.1')
                    clients['/nothing?n=2'] = (c.get('/nothing?n=2').status, c.local_port,
                                               '127.0.0.1', 'HTTP/1.1')
                with harness.Http1(httpd.port, '::1') as c:
                    clients['/static.txt?n=3'] = (c.get('/static.txt?n=3').status, c.local_port,
                                                  '::1', 'HTTP/1.1')
                statuses, _ = harness.nghttp([httpd.url('/static.txt?n=4')])
                clients['/static.txt?n=4'] = (statuses[0] if statuses else None, None,
                                              '127.0.0.1', 'HTTP/2.0')
                data['clients'] = clients
                harness.wait_until(lambda: all(u in printed() for u in clients), 20)
            finally:
                dt.send_signal(signal.SIGINT)
                try:
                    dt.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    dt.kill()
                    dt.wait()
            data['rc'] = dt.returncode
            data['out'] = printed()
            out.close()
    finally:
        if data['installed']:
            os.unlink(data['installed'])
        if not os.environ.get('KEEP_TMP'):
            shutil.rmtree(tmp, ignore_errors=True)
    data['events'] = [dict(kv.split('=', 1) for kv in l.split()[1:])
                      for l in data['out'].splitlines() if l.startswith('REQ ')]
    return data


def find(data, uri):
    got = [e for e in data['events'] if e['uri'] == uri]
    expect(len(got) == 1, '%s: %d request-done lines (want 1); dtrace printed:\n%s'
           % (uri, len(got), data['out'][-3000:]))
    return got[0]


@t.check('the module built through configure and make with dtrace-utils carries its probes in DOF')
def _(data):
    probes = [l.split('\t') for l in data['dof'].splitlines()]
    names = sorted({p[1] for p in probes})
    expect('request-done' in names and 'request-start' in names, 'DOF probes: %r' % names)
    for p in probes:
        if p[4] == p[2] and p[5] == p[3]:
            # the header and child probes: native arguments only, untranslated
            continue
        # a probe with a record: that record alone (DESIGN.md: one native argument)
        want = 'dthttpd_t *' if p[1].startswith('request-') else \
            'dthttpd_conn_t *' if p[1].startswith('conn-') else 'dthttpd_proxy_t *'
        expect(p[2] == '1' and p[3] == want, '%s: native arguments %s (%s), want 1 (%s)'
               % (p[1], p[2], p[3], want))


@t.check('feed.sh registered the module\'s probes for every child')
def _(data):
    for pid, rc, out in data['feed']:
        expect(rc == 0 and re.search(r'gen \d+', out), 'child %d: exit %d:\n%s' % (pid, rc, out))


@t.check('dtrace compiled httpd$PID:::request-done with the installed httpd.d and ran')
def _(data):
    expect('ready' in data['out'], data['out'][-2000:])
    expect(data['events'], 'no request-done line; dtrace printed:\n' + data['out'][-3000:])
    for line in data['out'].splitlines():
        if line.startswith('REQ '):
            print('# ' + line)


@t.check('each request is reported once with its URI, method and status')
def _(data):
    for uri, (status, _, _, _) in sorted(data['clients'].items()):
        e = find(data, uri)
        expect_eq(int(e['status']), status, '%s status' % uri)
        expect_eq(e['method'], 'GET', '%s method' % uri)
        expect(int(e['id']) > 0, '%s: id %s' % (uri, e['id']))


@t.check('addresses, ports and IP version are the connection\'s (IPv4 and IPv6)')
def _(data):
    for uri, (_, port, addr, _) in sorted(data['clients'].items()):
        e = find(data, uri)
        expect_eq(e['remote'], addr, '%s remote address (ci_remote)' % uri)
        expect_eq(e['local'], addr, '%s local address (ci_local)' % uri)
        expect_eq(int(e['lport']), data['port'], '%s local port' % uri)
        if port is not None:
            expect_eq(int(e['rport']), port, '%s remote port' % uri)
        else:
            expect(int(e['rport']) > 0, '%s: remote port %s' % (uri, e['rport']))
        v6 = ':' in addr
        expect_eq(int(e['ipversion']), 6 if v6 else 4, '%s rq_ipversion' % uri)
        expect_eq(e['family'], 'ipv6' if v6 else 'ipv4', '%s ci_protocol' % uri)


@t.check('the protocol is each client\'s: HTTP/1.1, and HTTP/2.0 for h2c')
def _(data):
    for uri, (_, _, _, proto) in sorted(data['clients'].items()):
        expect_eq(find(data, uri)['protocol'], proto, '%s protocol' % uri)


_missing = harness.missing


def missing(needs):
    return _missing(needs) or why_not()


harness.missing = missing
_lock = lock()
t.run(setup, needs=NEEDS)
