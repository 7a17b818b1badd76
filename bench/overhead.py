#!/usr/bin/python3
"""overhead.py: what mod_usdt costs Apache, untraced and traced.

One run interleaves six variants of the same Apache (same configuration,
same content, same client) for several rounds, in a rotating order, so that
whatever else the machine does falls on all of them alike:

  a  no module                                   (the baseline)
  b  mod_usdt loaded, no tracer
  c  mod_usdt, bpftrace counting request-done
  d  mod_usdt, examples/http-requests.bt writing every request to a file
  e  no module, an access log with %D written to a file
     (what operators use instead of tracing)
  f  mod_usdt, bpftrace counting every probe of the provider (request,
     header, handler, connection, child and proxy probes: each hit a uprobe)

For each it measures, over a bounded loopback load from wrk (keep-alive,
fixed connections and duration): requests per second, and CPU time per
request from /proc (schedstat of every thread): Apache's alone (the
kernel's uprobe and BPF work runs in Apache's threads and is counted there)
and Apache's plus the tracer's.  Throughput on a small shared machine is
noisy; CPU per request is the steadier measure.  It prints medians and
ratios against (a).

Usage: bench/overhead.py [--rounds N] [--seconds S] [--connections C]
Needs root (bpftrace), wrk, and a built module (USDT_MODULE, default
_build/src/.libs/mod_usdt.so).  bench/run.sh builds and runs everything.

Licensed under the Apache License, Version 2.0.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'live'))
import benchlib as B  # noqa: E402
from harness import wait_attached  # noqa: E402

COUNT_BT = 'usdt:{module}:httpd:request__done {{ @done = count(); }}'
ALL_PROBES = ('request__start', 'request__header', 'request__handler', 'proxy__start',
              'proxy__done', 'response__header', 'request__done', 'conn__start',
              'conn__done', 'child__start', 'child__done')
COUNT_ALL_BT = '\n'.join('usdt:{module}:httpd:%s {{ @[%r] = count(); }}' % (p, p)
                         for p in ALL_PROBES).replace("'", '"')


def requests_tool():
    """The shipped http-requests.bt, as built (generated from its .bt.in)."""
    for d in (os.path.join(B.BUILDDIR, 'examples'), os.path.join(B.SRCDIR, 'examples')):
        p = os.path.join(d, 'http-requests.bt')
        if os.path.isfile(p):
            return p
    sys.exit('bench: no examples/http-requests.bt in %s: build first (make)' % B.BUILDDIR)


VARIANTS = [
    ('a', 'no module', '', None),
    ('b', 'mod_usdt, untraced', B.WITH_MODULE, None),
    ('c', 'mod_usdt, bpftrace count()', B.WITH_MODULE, 'count'),
    ('d', 'mod_usdt, http-requests.bt > file', B.WITH_MODULE, 'requests'),
    ('e', 'no module, access log with %D', B.ACCESS_LOG_D, None),
    ('f', 'mod_usdt, bpftrace count() of every probe', B.WITH_MODULE, 'all'),
]


class Tracer:
    def __init__(self, kind, workdir):
        self.out = open(os.path.join(workdir, 'trace.out'), 'w')
        env = dict(os.environ)
        self.probes = ['request__done']
        if kind == 'count':
            argv = ['bpftrace', '-e', COUNT_BT.format(module=B.MODULE)]
        elif kind == 'all':
            argv = ['bpftrace', '-e', COUNT_ALL_BT.format(module=B.MODULE)]
            self.probes = list(ALL_PROBES)
        else:
            # Run as an operator runs it on a local build: directly, with
            # the module's path in USDT_MODULE and its default string length.
            env['USDT_MODULE'] = B.MODULE
            argv = ['sh', requests_tool()]
        self.err_path = os.path.join(workdir, 'trace.err')
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=open(self.err_path, 'w'),
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        self.outpath = self.out.name

    def wait_attached(self, timeout=60):
        def attached():
            for p in (self.outpath, self.err_path):
                with open(p) as f:
                    if 'Attaching' in f.read(4096):
                        return True
            return self.proc.poll() is not None
        B.wait_until(attached, timeout, 0.1)
        if self.proc.poll() is not None:
            raise RuntimeError('bpftrace exited: ' + open(self.err_path).read())
        # the uprobes come after the message: wait for the kernel to have them
        if not wait_attached(self.proc.pid, self.probes, timeout, B.MODULE):
            raise RuntimeError('bpftrace %d had not attached to %s in %ss'
                               % (self.proc.pid, ', '.join(self.probes), timeout))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()

    def lines(self):
        """Request lines the tool wrote (http-requests.bt: 'time latency status ...')."""
        with open(self.outpath) as f:
            return sum(1 for line in f if re.match(r'\s*\d+\.\d+\s+\d+us\s', line))

    def lost(self):
        m = re.findall(r'Lost (\d+) events', open(self.err_path).read() + open(self.outpath).read())
        return sum(int(x) for x in m)


def wrk(url, seconds, connections):
    out = subprocess.run(['wrk', '-t1', '-c%d' % connections, '-d%ds' % seconds, url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=seconds + 60).stdout
    m = re.search(r'(\d+) requests in', out)
    if not m:
        raise RuntimeError('wrk said:\n' + out)
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if errors:
        raise RuntimeError('wrk saw errors:\n' + out)
    return int(m.group(1))


def measure(variant, seconds, connections):
    key, _, extra, tracer_kind = variant
    work = tempfile.mkdtemp(prefix='usdt-bench-trace-')
    tracer = None
    try:
        with B.Apache(extra) as httpd:
            if tracer_kind:
                tracer = Tracer(tracer_kind, work)
                tracer.wait_attached()
            wrk(httpd.url(), 1, connections)            # warm up
            pids = httpd.pids()
            a0 = B.cpu_ns(pids)
            t0 = B.cpu_ns([tracer.proc.pid]) if tracer else 0
            w0 = time.monotonic()
            n = wrk(httpd.url(), seconds, connections)
            wall = time.monotonic() - w0
            a1 = B.cpu_ns(pids)
            t1 = B.cpu_ns([tracer.proc.pid]) if tracer else 0
            lost = 0
            if tracer:
                tracer.stop()
                lost = tracer.lost()
                # A tracer that saw less than the load measured nothing:
                # every request (warm-up included) must be a line, or lost.
                if tracer_kind == 'requests' and tracer.lines() + lost < n:
                    raise RuntimeError('http-requests.bt wrote %d lines for %d requests'
                                       % (tracer.lines(), n))
            return {'rps': n / wall, 'apache_us': (a1 - a0) / 1e3 / n,
                    'total_us': ((a1 - a0) + (t1 - t0)) / 1e3 / n, 'n': n, 'lost': lost}
    finally:
        if tracer:
            tracer.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--seconds', type=int, default=5)
    ap.add_argument('--connections', type=int, default=8)
    ap.add_argument('--only', default='abcdef', help='variants to run (default abcdef)')
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench: run as root (bpftrace attaches uprobes)')
    B.need('wrk', 'wrk')
    B.need('bpftrace', 'bpftrace')
    if not os.path.isfile(B.MODULE):
        sys.exit('bench: no module at %s: build first, or set USDT_MODULE' % B.MODULE)
    variants = [v for v in VARIANTS if v[0] in args.only]
    if 'd' in args.only:
        requests_tool()
    results = {v[0]: [] for v in variants}
    print('# %d rounds of %d s per variant, wrk -t1 -c%d, order rotating each round'
          % (args.rounds, args.seconds, args.connections))
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            m = measure(v, args.seconds, args.connections)
            results[v[0]].append(m)
            print('# round %d %s: %7.0f req/s  apache %6.2f us/req  total %6.2f us/req%s'
                  % (r + 1, v[0], m['rps'], m['apache_us'], m['total_us'],
                     '  LOST %d events' % m['lost'] if m['lost'] else ''))
            sys.stdout.flush()
    base = {k: B.median([m[k] for m in results['a']]) if 'a' in results else float('nan')
            for k in ('rps', 'apache_us', 'total_us')}
    print()
    print('| variant | req/s | ratio | Apache CPU us/req | ratio | Apache+tracer CPU us/req | ratio | lost events |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for key, name, _, _ in variants:
        med = {k: B.median([m[k] for m in results[key]]) for k in ('rps', 'apache_us', 'total_us')}
        lost = sum(m['lost'] for m in results[key])
        print('| (%s) %s | %.0f | %.3f | %.2f | %.3f | %.2f | %.3f | %d |' % (
            key, name, med['rps'], med['rps'] / base['rps'], med['apache_us'],
            med['apache_us'] / base['apache_us'], med['total_us'],
            med['total_us'] / base['total_us'], lost))


if __name__ == '__main__':
    main()
