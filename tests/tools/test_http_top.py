#!/usr/bin/python3
"""test_http_top.py: examples/http-top.bt against a real Apache.

A private Apache with the built module and two name-based virtual hosts
(usdt.test, the default, and other.test), mod_status (server-status) and
mod_cgid (a CGI script), and a second access log with each request's
virtual host, status and bytes (%v %>s %B).  The tool runs
as an operator runs it on a local build, every 2 s and limited to that
server (USDT_MODULE=... examples/http-top.bt 2 PID), its output a pipe, and
a second copy with no argument (every 5 s, every server: only its first
lines are judged).  Right after an interval is printed, a known mix goes
out within well under 2 s: many fast requests of a few URIs from
127.0.0.1, some of them to other.test, two of server-status and one of the
CGI script, one slow request from ::1.  The checks parse each interval's
block: requests and bytes per second, requests and bytes by status class,
top URIs and clients by count and by total time, virtual hosts by count and
by bytes, handlers by count and by total time, and compare them with what
was sent and what Apache logged.

Then the screen: the tool runs directly in a tmux pane (a terminal), so it
picks SCREEN 1 by itself; the pane is read with capture-pane while a mix
of seven URIs goes out, and the tool is stopped with send-keys C-c.  The
screen holds one interval at a time, drawn from its top line, with the top
5 of each list.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_top.py
Needs root, bpftrace and tmux (skips otherwise, fails under CI=true).  Prints TAP.
"""

import collections
import os
import re
import shlex
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

SLOW = 0.4
SLOW_URI = '/static.txt?slow=1'
CGI_URI = '/cgi-bin/hello.sh'
# (uri, status, virtual host)
MIX = ([('/static.txt', 200, 'usdt.test')] * 4 + [('/static.txt', 200, 'other.test')] * 2
       + [('/missing', 404, 'usdt.test')] * 3 + [('/dir', 301, 'other.test')] * 2
       + [('/server-status?auto', 200, 'usdt.test')] * 2 + [(CGI_URI, 200, 'other.test')])
# The handler each URI's request-done names, the one ap_invoke_handler()
# dispatched on (tests/live/test_handler.py): a static file its content
# type; /missing the 404 ErrorDocument's (/errors/404.html, an internal
# redirect); /dir none, "-" (mod_dir redirects it, in fixups, before any
# handler).  Not %R: Apache puts r->handler back after the handler runs, so
# %R logs "-" for a static file and httpd/unix-directory for /dir.
HANDLER = {'/static.txt': 'text/plain', SLOW_URI: 'text/plain', '/missing': 'text/html',
           '/dir': '-', '/server-status?auto': 'server-status', CGI_URI: 'cgi-script'}
# seven URIs, so that the screen's top 5 leaves two out
SCREEN_MIX = [('/static.txt', 200)] * 6 + [('/missing', 404)] * 5 + [('/dir', 301)] * 4 + [
    ('/static.txt?s=%d' % i, 200) for i in range(4) for _ in range(4 - i)]
VHOSTS = """\
LoadModule status_module {moddir}/mod_status.so
<Location /server-status>
    SetHandler server-status
</Location>
<VirtualHost *:*>
    ServerName usdt.test
</VirtualHost>
<VirtualHost *:*>
    ServerName other.test
</VirtualHost>
CustomLog logs/vhost.log "%v %>s %B"
""".format(moddir=harness.APACHE_MODULES) + harness.cgi_conf()
CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\nfrom a CGI script\\n'
"""
BUSY_MAPS = {'requests_per_s', 'bytes_per_s', 'requests', 'bytes', 'top_uri_by_count',
             'top_uri_by_total_us', 'top_client_by_count', 'top_client_by_total_us',
             'top_vhost_by_count', 'top_vhost_by_bytes', 'top_handler_by_count',
             'top_handler_by_total_us'}
BLOCK = re.compile(r'^(\d\d):(\d\d):(\d\d), the last (\d+) s:( no requests)?$')
MAPLINE = re.compile(r'^@(\w+)\[(.*)\]: (\d+)$')


def blocks(lines):
    """[(seconds of the day, interval, idle, {map: [(key, value)] in order})]"""
    out = []
    for l in lines:
        m = BLOCK.match(l)
        if m:
            h, mi, s, iv, idle = m.groups()
            out.append((int(h) * 3600 + int(mi) * 60 + int(s), int(iv), bool(idle),
                        collections.OrderedDict()))
            continue
        m = MAPLINE.match(l)
        if m and out:
            out[-1][3].setdefault(m.group(1), []).append((m.group(2), int(m.group(3))))
        elif l.strip() and out:
            raise harness.Failure('line not in a block\'s format: %r' % l)
    return out


def summed(bl, name):
    total = collections.Counter()
    for _, _, _, maps in bl:
        for k, v in maps.get(name, []):
            total[k] += v
    return dict(total)


def vhost_log(httpd):
    """[(vhost, status, bytes)] of logs/vhost.log ("-" bytes as 0)."""
    rows = []
    for line in httpd.read('logs', 'vhost.log').splitlines():
        v, st, b = line.split(' ')
        rows.append((v, int(st), int(b) if b.isdigit() else 0))
    return rows


def prepare(httpd):
    harness.cgi_script(httpd, 'hello.sh', CGI)


def status_class(status):
    return '%dxx' % (status // 100)


def setup():
    httpd = harness.Apache(extra=VHOSTS)
    prepare(httpd)
    with httpd:
        # limited to this server: other tests' servers may load the same module
        with toolrun.Tool('http-top.bt', 2, httpd.pid) as tool, \
                toolrun.Tool('http-top.bt') as default:
            # start right after an interval was printed, so that the mix
            # lands in one interval, away from the printing (bpftrace prints
            # and clears a map from user space: a request counted between
            # the two would be lost)
            n0 = len(blocks(tool.out()))
            tool.wait_for(lambda ls: len(blocks(ls)) > n0, 5)
            with harness.Http1(httpd.port, '127.0.0.1') as c:
                for uri, want, vhost in MIX:
                    expect_eq(c.get(uri, host=vhost).status, want, 'status of ' + uri)
            status, _ = toolrun.slow_request(httpd.port, '::1', delay=SLOW, target=SLOW_URI)
            expect_eq(status, 200, 'status of the slow request')
            n = len(MIX) + 1
            tool.wait_for(lambda ls: summed(blocks(ls), 'requests').get('all', 0) >= n, 6)
            default.wait_for(lambda ls: len(blocks(ls)) >= 1, 8)
        d = {'out': tool.body(), 'default': default.body(), 'pid': httpd.pid,
             'stderr': tool.stderr() + default.stderr(), 'vhost_log': vhost_log(httpd)}
        d.update(screen(httpd))
        return d


def zombie(pid):
    """'pid N a zombie, exit status S' (or 'killed by signal S') from
    /proc/N/stat, or None if N is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); field 52, exit_code, in waitpid()'s form
    if fields[0] != 'Z' or len(fields) < 50:
        return None
    code = int(fields[49])
    return 'pid %d a zombie, %s' % (pid, 'exit status %d' % os.WEXITSTATUS(code) if
                                    os.WIFEXITED(code) else 'killed by signal %d' %
                                    os.WTERMSIG(code))


class Tmux:
    """A tmux server of our own (-L: its own socket), one detached session
    running one command in a pane of a fixed size; kill() ends the server."""

    def __init__(self, command, width=160, height=60):
        self.sock = 'usdt-top-%d' % os.getpid()
        self.tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'top', '-x', str(width),
                  '-y', str(height), command)
        self.tmux('set-option', '-t', 'top', 'remain-on-exit', 'on')

    def tmux(self, *args):
        return subprocess.run(['tmux', '-L', self.sock] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, check=True,
                              timeout=30).stdout

    def screen(self):
        """The pane's visible lines, trailing blank ones left out."""
        lines = self.tmux('capture-pane', '-p', '-t', 'top').split('\n')
        while lines and not lines[-1].strip():
            lines.pop()
        return lines

    def pane(self, fmt):
        return self.tmux('display-message', '-p', '-t', 'top', fmt).strip()

    def end(self, timeout):
        """How the pane's process ended, as tmux saw it: {'dead', 'status',
        'signal'} (#{pane_dead}, #{pane_dead_status}, #{pane_dead_signal}),
        once tmux has its exit status or after timeout s; 'first': the three
        when the pane was first seen dead; 'nudged': None, or the pane's
        process as /proc saw it when our server was last sent a SIGCHLD.

        tmux 3.3a marks a pane dead when its terminal closes, and learns the
        exit status later, from SIGCHLD and waitpid(): in between, the pane is
        dead with no status (tmux pull request 4841).  And Debian's tmux is
        built with libutempter, whose utempter_remove_record(), called as the
        terminal closes, sets SIGCHLD to SIG_DFL while it waits for its own
        helper: the pane's SIGCHLD, if it comes then, is discarded, and tmux
        never reaps the pane (it stays a zombie, status empty; tmux issue
        311).  Another SIGCHLD makes tmux call waitpid() again, which is
        tmux's own workaround: it only makes tmux read the real status.  The
        three are read in one display-message, so they agree."""
        server, pid = int(self.pane('#{pid}')), int(self.pane('#{pane_pid}'))
        out = {'first': None, 'nudged': None}

        def read():
            dead, status, sig = self.pane(
                '#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}').split('|')
            out.update(dead=dead, status=status, signal=sig)
            if dead == '1' and out['first'] is None:
                out['first'], out['since'] = (dead, status, sig), time.monotonic()
            if dead == '1' and not (status or sig):
                if time.monotonic() - out['since'] >= 1:
                    # each second: what the kernel holds for tmux, then our
                    # own server, by its pid, told to look (WNOHANG)
                    out['nudged'] = zombie(pid) or 'pane pid %d not a zombie yet' % pid
                    out['since'] = time.monotonic()
                    os.kill(server, signal.SIGCHLD)
                return False
            return dead == '1'
        harness.wait_until(read, timeout, 0.1)
        return out

    def kill(self):
        subprocess.run(['tmux', '-L', self.sock, 'kill-server'], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)


def screen(httpd):
    """The tool run directly in a tmux pane, where its stdout is a terminal."""
    d = {'screens': [], 'screen_mix': None}
    tool = toolrun.tool_path('http-top.bt')
    with open(tool) as f:
        probes = harness.probes_used(f.read())
    cmd = 'exec env -u BPFTRACE_STRLEN USDT_MODULE=%s %s 2 %d' % (
        shlex.quote(harness.MODULE), shlex.quote(tool), httpd.pid)
    tm = Tmux(cmd)
    try:
        # the pane runs the tool, which execs bpftrace: one pid
        pid = int(tm.pane('#{pane_pid}'))
        expect(harness.wait_attached(pid, probes, 60), 'http-top.bt in tmux did not attach')

        def shot():
            sc = tm.screen()
            d['screens'].append(sc)
            return sc

        def fresh_block():
            # a screen whose interval has just been drawn
            n = len([s for s in d['screens'] if blocks(s)])
            first = harness.wait_until(lambda: blocks(shot()) and shot(), 6, 0.1)
            expect(first, 'no interval on the screen:\n' + '\n'.join(d['screens'][-1]))
            stamp = blocks(first)[0][0]
            return harness.wait_until(lambda: blocks(shot()) and blocks(d['screens'][-1])[0][0]
                                      != stamp, 6, 0.05), n
        fresh_block()
        with harness.Http1(httpd.port, '127.0.0.1') as c:
            for uri, want in SCREEN_MIX:
                expect_eq(c.get(uri).status, want, 'status of ' + uri)

        def mix_shown():
            sc = shot()
            bl = blocks(sc)
            if bl and dict(bl[0][3].get('requests', [])).get('4xx') == 5:
                d['screen_mix'] = sc
                return True
            return False
        harness.wait_until(mix_shown, 8, 0.1)
        tm.tmux('send-keys', '-t', 'top', 'C-c')
        d['screen_exit'] = tm.end(20)
        e = d['screen_exit']
        if e['nudged']:
            harness.log('tmux had no exit status a second after the pane died (%s): sent it '
                        'a SIGCHLD, then read (dead, status, signal) %r' % (
                            e['nudged'], (e['dead'], e['status'], e['signal'])))
        # tmux's own last line on a dead pane (remain-on-exit) left out
        d['screen_last'] = [l for l in tm.screen() if not l.startswith('Pane is dead')]
    finally:
        tm.kill()
    return d


def main_block(d):
    """The block with the slow request (and, unless the machine crawled, the whole mix)."""
    bl = [b for b in blocks(d['out']) if dict(b[3].get('top_uri_by_count', [])).get(SLOW_URI)]
    expect_eq(len(bl), 1, 'blocks with %s\n%s' % (SLOW_URI, '\n'.join(d['out'])))
    return bl[0]


def dummies(d):
    """Apache's internal dummy connections (OPTIONS *) counted in the run."""
    return summed(blocks(d['out']), 'top_uri_by_count').get('*', 0)


@t.check('BEGIN says what is traced, how often and how to stop')
def _(d):
    expect_eq(d['out'][0], 'Tracing Apache requests (mod_usdt), server PID %d, every 2 s. '
              'Hit Ctrl-C to end.' % d['pid'], 'first line, http-top.bt 2 PID')
    expect_eq(d['default'][0], 'Tracing Apache requests (mod_usdt), every server, every 5 s. '
              'Hit Ctrl-C to end.', 'first line, http-top.bt')


@t.check('a block every interval: "HH:MM:SS, the last N s:", then only "@map[key]: value" lines')
def _(d):
    bl = blocks(d['out'][1:])
    expect(len(bl) >= 2, 'blocks: %d' % len(bl))
    for (t1, iv, _, _), (t2, _, _, _) in zip(bl, bl[1:]):
        expect_eq(iv, 2, 'interval')
        expect((t2 - t1) % 86400 == 2, 'blocks at %d and %d s' % (t1, t2))
    idle = [b for b in bl if b[2]]
    expect(all(not b[3] for b in idle), 'an idle block with maps')
    expect(all(set(b[3]) == BUSY_MAPS for b in bl if not b[2]),
           'maps of a busy block: %r' % [list(b[3]) for b in bl])
    dbl = blocks(d['default'][1:])
    expect(dbl and dbl[0][1] == 5, 'the default run\'s first block: %r' % dbl[:1])


@t.check('requests by status class, summed over the blocks: what was sent')
def _(d):
    got = summed(blocks(d['out']), 'requests')
    n = dummies(d)
    want = collections.Counter(status_class(st) for _, st, _ in MIX)
    want['2xx'] += 1 + n    # the slow request, the dummies
    want['all'] = len(MIX) + 1 + n
    expect_eq(got, dict(want), '@requests\n' + '\n'.join(d['out']))


@t.check('requests and bytes per second: each block\'s count and bytes divided by 2, '
         'rounded down')
def _(d):
    for _, iv, _, maps in blocks(d['out']):
        if maps:
            expect_eq(maps['requests_per_s'], [('all', dict(maps['requests'])['all'] // iv)],
                      'requests_per_s vs requests[all]')
            expect_eq(maps['bytes_per_s'], [('all', dict(maps['bytes'])['all'] // iv)],
                      'bytes_per_s vs bytes[all]')


@t.check('bytes by status class, summed over the blocks: the %B Apache logged')
def _(d):
    want = collections.Counter()
    for _, status, sent in d['vhost_log']:
        want[status_class(status)] += sent
        want['all'] += sent
    expect(want['2xx'] > 0 and want['4xx'] > 0, 'bytes logged: %r' % want)
    expect_eq(summed(blocks(d['out']), 'bytes'), {k: v for k, v in want.items() if k == 'all' or
                                                  any(status_class(st) == k
                                                      for _, st, _ in d['vhost_log'])},
              '@bytes')


@t.check('virtual hosts by count and by bytes, summed over the blocks: what Apache logged (%v)')
def _(d):
    by_count, by_bytes = collections.Counter(), collections.Counter()
    for v, _, sent in d['vhost_log']:
        by_count[v] += 1
        by_bytes[v] += sent
    bl = blocks(d['out'])
    expect_eq(summed(bl, 'top_vhost_by_count'), dict(by_count), 'requests by virtual host')
    expect_eq(summed(bl, 'top_vhost_by_bytes'), dict(by_bytes), 'bytes by virtual host')
    expect_eq(by_count['other.test'], sum(1 for _, _, v in MIX if v == 'other.test'),
              'requests other.test served')


@t.check('top URIs and clients by count, summed over the blocks: what was sent')
def _(d):
    bl = blocks(d['out'])
    n = dummies(d)
    uris = collections.Counter(u for u, _, _ in MIX)
    uris[SLOW_URI] += 1
    if n:
        uris['*'] = n
    expect_eq(summed(bl, 'top_uri_by_count'), dict(uris), 'requests by URI')
    clients = summed(bl, 'top_client_by_count')
    expect_eq(clients.get('::1'), 1, 'requests from ::1')
    expect_eq(clients.get('127.0.0.1', 0) - n, len(MIX), 'requests from 127.0.0.1 (less dummies)')


@t.check('each list sorted by value, the largest last: /static.txt and 127.0.0.1 top by count')
def _(d):
    _, _, _, maps = main_block(d)
    for name, kv in maps.items():
        vals = [v for _, v in kv]
        expect_eq(vals, sorted(vals), 'order of @' + name)
    expect_eq(maps['top_uri_by_count'][-1][0], '/static.txt', 'top URI by count')
    expect_eq(maps['top_client_by_count'][-1][0], '127.0.0.1', 'top client by count')


@t.check('by total time, the one slow request (%.1f s) and its client ::1 are on top' % SLOW)
def _(d):
    _, _, _, maps = main_block(d)
    uri, total = maps['top_uri_by_total_us'][-1]
    expect_eq(uri, SLOW_URI, 'top URI by total time')
    expect(SLOW * 1e6 <= total < 10e6, 'its total %d us' % total)
    expect_eq(maps['top_client_by_total_us'][-1], ('::1', total), 'top client by total time')


@t.check('total time: the same sum over URIs and over clients, in every block')
def _(d):
    for _, _, _, maps in blocks(d['out']):
        if maps:
            expect_eq(sum(v for _, v in maps['top_uri_by_total_us']),
                      sum(v for _, v in maps['top_client_by_total_us']), 'sums of total time')


@t.check('handlers by count, summed over the blocks: those of the traffic sent')
def _(d):
    got = collections.Counter(summed(blocks(d['out']), 'top_handler_by_count'))
    want = collections.Counter(HANDLER[u] for u, _, _ in MIX)
    want[HANDLER[SLOW_URI]] += 1
    expect_eq(dict(want - got), {}, 'requests by handler missing from %r' % dict(got))
    # and no more, but Apache's dummy connections (OPTIONS *)
    expect_eq(sum((got - want).values()), dummies(d),
              'requests by handler beyond those sent (%r)' % dict(got - want))


@t.check('by handler: text/plain tops both lists (the most requests, and the slow one)')
def _(d):
    _, _, _, maps = main_block(d)
    expect_eq(maps['top_handler_by_count'][-1][0], 'text/plain', 'top handler by count')
    h, total = maps['top_handler_by_total_us'][-1]
    expect_eq(h, 'text/plain', 'top handler by total time')
    expect(total >= maps['top_uri_by_total_us'][-1][1],
           'its total %d us, less than the slow request\'s' % total)


@t.check('total time: the same sum over handlers as over URIs, in every block')
def _(d):
    for _, _, _, maps in blocks(d['out']):
        if maps:
            expect_eq(sum(v for _, v in maps['top_handler_by_total_us']),
                      sum(v for _, v in maps['top_uri_by_total_us']), 'sums of total time')


@t.check('output to a pipe: no terminal escape (SCREEN 0 by itself)')
def _(d):
    expect(not any('\033' in l for l in d['out'] + d['default']), 'an escape in the output')


@t.check('on a terminal (tmux): each interval redrawn from the top line, one at a time')
def _(d):
    # those drawn by an interval (before the first: bpftrace's own lines)
    screens = [s for s in d['screens'] if any(BLOCK.match(l) for l in s)]
    expect(len(screens) >= 3, 'screens with an interval: %d' % len(screens))
    for sc in screens:
        expect(re.match(r'^Tracing Apache requests \(mod_usdt\), server PID %d, every 2 s\. '
                        r'Hit Ctrl-C to end\.$' % d['pid'], sc[0]) and sc[1] == '',
               'the top lines of a screen:\n' + '\n'.join(sc[:3]))
        expect_eq(len(blocks(sc)), 1, 'blocks on one screen:\n' + '\n'.join(sc))


@t.check('on a terminal: the mix on one screen, with the top 5 of each list')
def _(d):
    sc = d['screen_mix']
    expect(sc, 'no screen showed the whole mix; the last:\n' + '\n'.join(d['screens'][-1]))
    _, iv, _, maps = blocks(sc)[0]
    req = dict(maps['requests'])
    # Apache's dummy connections (OPTIONS *, 200) may add to 2xx and all
    expect((req['3xx'], req['4xx']) == (4, 5) and req['2xx'] >= 16, '@requests: %r' % req)
    uris = collections.Counter(u for u, _ in SCREEN_MIX)
    top = maps['top_uri_by_count']
    expect_eq(sorted(top), sorted((u, c) for u, c in uris.items() if c >= 3),
              'the top 5 URIs by count (of %d)' % len(uris))
    expect_eq([v for _, v in top], sorted(v for _, v in top), 'order, the largest last')
    expect(all(len(kv) <= 5 for kv in maps.values()), 'a list longer than 5: %r' % maps)
    expect_eq(set(maps), BUSY_MAPS, 'maps on the screen')
    # static files text/plain, the 404 page text/html, /dir none; dummies
    # (OPTIONS *) may add a request to any
    hc = dict(maps['top_handler_by_count'])
    expect(hc.get('text/plain', 0) >= 16 and hc.get('text/html', 0) >= 5 and
           hc.get('-', 0) >= 4 and sum(hc.values()) == sum(req[c] for c in req if c != 'all'),
           '@top_handler_by_count: %r' % hc)
    expect_eq(maps['top_handler_by_count'][-1][0], 'text/plain', 'top handler by count')


@t.check('on a terminal: C-c ends the tool (exit 0), the last screen stays, nothing after it')
def _(d):
    e = d['screen_exit']
    expect_eq((e['dead'], e['status'], e['signal']), ('1', '0', ''),
              '(pane dead, exit status, signal) (first seen dead: %r; a SIGCHLD sent to tmux: '
              '%s)' % (e['first'], e['nudged'] or 'none'))
    last = d['screen_last']
    end = max(i for i, l in enumerate(last) if BLOCK.match(l) or MAPLINE.match(l))
    expect(all(l.strip() in ('', '^C') for l in last[end + 1:]),
           'after the last interval:\n' + '\n'.join(last))


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup, needs=harness.LIVE + ('tmux',))
