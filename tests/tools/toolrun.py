#!/usr/bin/python3
"""toolrun.py: what the tests of the operator tools (examples/*.bt) share.

Each test runs a bpftrace tool the way an operator runs a tool against a
module built from source: directly, through the tool's /bin/sh preamble,
with USDT_MODULE naming the module,

    USDT_MODULE=$builddir/src/.libs/mod_usdt.so $builddir/examples/NAME.bt ARGS

against a private Apache (tests/live/harness.py); it sends requests, stops
the tool with SIGINT (Ctrl-C) and judges what the tool printed.

  Tool            one running tool: start() returns once its BEGIN line
                  is out (every probe attached), stop() is Ctrl-C
  slow_request()  a request whose headers arrive late, so that Apache takes
                  that long: latency comes from the client, not from luck
  HARMLESS        bpftrace's stderr lines that say nothing about the tool

The tests skip like the live tests (no root, no bpftrace, USDT_LIVE_TESTS=no)
and use harness.Tap for TAP.  Environment: builddir (where the generated
tools are; default srcdir), plus harness.py's.

Licensed under the Apache License, Version 2.0.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'live'))
import harness  # noqa: E402

BUILDDIR = os.path.abspath(os.environ.get('builddir') or harness.SRCDIR)

# bpftrace 0.17 on stderr, whatever the program: RLIMIT_MEMLOCK where the
# limit cannot be raised (containers), and a failed detach where tracefs is
# not mounted (the probes are perf events and go away with bpftrace anyway)
HARMLESS = re.compile(r"couldn't set RLIMIT_MEMLOCK|^open\(/sys/kernel/(debug/)?tracing/"
                      r"uprobe_events\)|^ERROR: failed to detach probe")


def tool_path(name):
    return os.path.join(BUILDDIR, 'examples', name)


class Tool:
    """A tool from $builddir/examples, run directly with USDT_MODULE set.

        with Tool('http-requests.bt', str(pid)) as t: ...; t.stop(); t.lines
    """

    def __init__(self, name, *args, attach_timeout=60):
        self.name = name
        self.args = [str(a) for a in args]
        self.attach_timeout = attach_timeout
        self.proc = None
        self.lines = []
        self.errlines = []
        self.lock = threading.Lock()
        self.started = None

    def start(self):
        env = dict(os.environ, USDT_MODULE=harness.MODULE)
        env.pop('BPFTRACE_STRLEN', None)        # the tool's own default
        with open(tool_path(self.name)) as f:
            probes = harness.probes_used(f.read())
        self.proc = subprocess.Popen(
            [tool_path(self.name)] + self.args, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            errors='replace', env=env, preexec_fn=harness._tracer_preexec)
        self._readers = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines)),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.errlines))]
        for th in self._readers:
            th.daemon = True
            th.start()
        # Each tool's BEGIN ends its first line with "Hit Ctrl-C to end.";
        # bpftrace 0.17 runs BEGIN before it attaches the USDT probes, so
        # then wait until the kernel has the tool's programs on them.
        ok = harness.wait_until(lambda: self.proc.poll() is not None
                                or any('Hit Ctrl-C to end.' in l for l in self.out()),
                                self.attach_timeout, 0.05)
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError('%s did not start within %ss (exit %s):\n%s\n%s' % (
                self.name, self.attach_timeout, self.proc.returncode,
                '\n'.join(self.lines), '\n'.join(self.errlines)))
        if not harness.wait_attached(self.proc.pid, probes, self.attach_timeout):
            self.stop()
            raise RuntimeError('%s started but had not attached to %s within %ss: it has %r'
                               % (self.name, probes, self.attach_timeout,
                                  harness.uprobes_of(self.proc.pid)))
        self.started = time.monotonic()
        return self

    def _pump(self, stream, into):
        for line in stream:
            with self.lock:
                into.append(line.rstrip('\n'))

    def out(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, pred, timeout=10):
        """Wait (bounded) until pred(body lines) is true; return them."""
        harness.wait_until(lambda: pred(self.body()), timeout, 0.1)
        return self.body()

    def stop(self, timeout=15):
        """Ctrl-C: SIGINT, repeated every 2 s (bpftrace 0.17 can miss one
        that arrives while it prints; see harness.Tracer.stop); SIGKILL if
        it still runs after timeout.  Returns the stdout lines."""
        if self.proc and self.proc.poll() is None:
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(min(2, max(0.1, deadline - time.monotonic())))
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                harness.log('%s ignored SIGINT for %ss: SIGKILL' % (self.name, timeout))
                self.proc.kill()
                self.proc.wait(5)
        for th in getattr(self, '_readers', []):
            th.join(5)
        return self.out()

    def stderr(self):
        """stderr less HARMLESS lines: what the tool or bpftrace complained of."""
        with self.lock:
            return [l for l in self.errlines if l.strip() and not HARMLESS.search(l)]

    def body(self):
        """stdout from the BEGIN line on (bpftrace's "Attaching N probes..." left out)."""
        lines = self.out()
        for i, l in enumerate(lines):
            if 'Hit Ctrl-C to end.' in l:
                return lines[i:]
        return lines

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def slow_request(port, host='127.0.0.1', delay=0.5, target='/static.txt?slow=1',
                 agent='usdt-tools/slow', headers=(), body=b'', body_delay=0):
    """A GET (or POST with body) whose last header line, or body, arrives
    `delay` s after Apache has read the request line: Apache's latency for
    it is at least that (its clock, r->request_time, starts when it has
    read the line; on a loaded machine that is a while after the client
    sent it).  Returns (status, client port)."""
    c = harness.Http1(port, host, timeout=10)
    try:
        method = 'POST' if body else 'GET'
        head = ['%s %s HTTP/1.1' % (method, target), 'Host: localhost',
                'User-Agent: %s' % agent] + list(headers)
        if body:
            head.append('Content-Length: %d' % len(body))
        if body_delay:
            c.send(('\r\n'.join(head) + '\r\n\r\n').encode())
            c.wait_read()
            time.sleep(body_delay)
            c.send(body)
        else:
            c.send(('\r\n'.join(head) + '\r\n').encode())
            c.wait_read()
            time.sleep(delay)
            c.send(b'Connection: keep-alive\r\n\r\n' + body)
        return c.response().status, c.local_port
    finally:
        c.close()


def trailing_noise(lines, last_marker):
    """Lines after the last line matching last_marker that are not blank:
    what a tool printed at exit that it did not mean to (maps left over)."""
    idx = max((i for i, l in enumerate(lines) if re.search(last_marker, l)), default=-1)
    return [l for l in lines[idx + 1:] if l.strip()]


# The server the tools of the new probes are tested against: harness.proxy_conf()
# (/px/, /lb/, /dead/ and /flaky/ to a backend virtual host of the same
# server), harness.cgi_conf() with /cgi-bin/slow.sh (harness.SLOW_CGI: a slow
# handler), /cookie/ (a Set-Cookie answer), /big.bin, and mod_ssl with h2
# on a second port.
# /big.bin: more than the socket buffers hold, for a client that goes away
BIG_SIZE = 4 << 20
FULL_EXTRA = """
LoadModule headers_module {moddir}/mod_headers.so
<Location /cookie/>
    Header always set Set-Cookie "session=0123456789abcdef; Path=/"
</Location>
"""


class FullServer:
    """A private Apache with proxy_conf(), cgi_conf(), FULL_EXTRA and tls_conf():

        with FullServer() as s: s.httpd, s.port, s.tls_port, s.bport, s.dport
    """

    def __init__(self, tls=True):
        self.bport, self.dport = harness.free_port(), harness.free_port()
        extra = (harness.proxy_conf(self.bport, self.dport) + harness.cgi_conf() +
                 FULL_EXTRA.format(moddir=harness.APACHE_MODULES))
        self.tls_port = None
        self.certdir = None
        if tls:
            self.certdir = tempfile.mkdtemp(prefix='usdt-tools-tls-')
            crt, key = harness.make_cert(self.certdir)
            self.tls_port = harness.free_port()
            extra += harness.tls_conf(self.tls_port, crt, key)
        self.httpd = harness.Apache(extra=extra)
        harness.cgi_script(self.httpd, 'slow.sh')
        os.mkdir(os.path.join(self.httpd.docroot, 'cookie'), 0o755)
        page = os.path.join(self.httpd.docroot, 'cookie', 'index.html')
        with open(page, 'w') as f:
            f.write('a cookie for you\n')
        os.chmod(page, 0o644)
        with open(os.path.join(self.httpd.docroot, 'big.bin'), 'wb') as f:
            f.write(b'x' * BIG_SIZE)
        os.chmod(os.path.join(self.httpd.docroot, 'big.bin'), 0o644)
        self.port = self.httpd.port

    def __enter__(self):
        self.httpd.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            return self.httpd.__exit__(*exc)
        finally:
            if self.certdir:
                shutil.rmtree(self.certdir, ignore_errors=True)

    def tls_urls(self, paths):
        return ['https://localhost:%d%s' % (self.tls_port, p) for p in paths]

    def tls_curl(self, paths, *args):
        """curl over TLS, all paths on one connection; [(status, local port)]."""
        return harness.curl_many(self.tls_urls(paths), '-k', '--resolve',
                                 'localhost:%d:127.0.0.1' % self.tls_port, *args)


MAP_VALUE = re.compile(r'^(@\w+)(?:\[(.*)\])?: (-?\d+)$')
MAP_HIST = re.compile(r'^(@\w+)(?:\[(.*)\])?: $')
HIST_ROW = re.compile(r'^\[([^\],)]*)(?:, ([^\])]*))?[\])]\s+(\d+) \|')
UNITS = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}


def hist_bound(text):
    """A histogram row's bound as bpftrace prints it ("256K") as a number."""
    m = re.match(r'^(-?\d+)([KMG]?)$', text.strip())
    return int(m.group(1)) * UNITS[m.group(2)]


def parse_maps(lines):
    """The maps bpftrace print()ed in lines: {name: {key: value}}, a key as
    printed between the brackets (None without), a value an int, or for a
    histogram [(from, to, count)] with to None for a single-value row."""
    out, hist = {}, None
    for l in lines:
        m = MAP_VALUE.match(l)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = int(m.group(3))
            hist = None
            continue
        m = MAP_HIST.match(l)
        if m:
            hist = out.setdefault(m.group(1), {}).setdefault(m.group(2), [])
            continue
        m = HIST_ROW.match(l)
        if m and hist is not None:
            hist.append((hist_bound(m.group(1)), hist_bound(m.group(2)) if m.group(2) else None,
                         int(m.group(3))))
            continue
        hist = None
    return out


def hist_total(rows):
    return sum(n for _, _, n in rows)


def failed_connects(httpd):
    """Client ports of the requests for which mod_proxy failed to connect
    to a backend (error log AH01114, "[client ADDR:PORT]"), with how many
    times: which balancer members were tried, as Apache tells it."""
    got = {}
    for m in re.finditer(r'\[client [^\]]*:(\d+)\] AH01114: ', httpd.errors()):
        got[int(m.group(1))] = got.get(int(m.group(1)), 0) + 1
    return got
