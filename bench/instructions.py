#!/usr/bin/python3
"""instructions.py: instructions per request that mod_usdt adds, exactly.

Runs the bench Apache single-process (-X) under valgrind --tool=callgrind
and sends it a fixed number of requests, 100 per keep-alive connection, in
these variants:

  without     no module
  empty       bench/mod_empty.so: a module with no hooks and no
              configuration, the floor of being a module at all (Apache's
              per-module bookkeeping on every request)
  untraced    mod_usdt, every probe compiled in, no tracer (semaphores 0)
  armed       mod_usdt with every semaphore set to 1 by writing the
              process's memory, as a tracer would: every hook then does its
              work and reaches its probe sites.  (Under valgrind no uprobe
              can fire, so the probe sites stay nops: this counts the
              module's own work while traced, not the kernel's.)
  armed:F     only the semaphores of one probe family F set (request,
              headers, handler, conn): that family's traced cost

Each variant runs twice, with N1 and N2 requests, and the instructions per
request are (Ir(N2) - Ir(N1)) / (N2 - N1): start-up and shutdown cancel
out.  Where they are counted:

  hook runners   inside Apache's runners of the hooks mod_usdt registers
                 for connections and requests (ap_run_pre_connection,
                 ap_run_post_read_request, ap_run_insert_filter,
                 ap_run_log_transaction; --toggle-collect).  Exact, and all
                 that mod_usdt adds untraced over the empty module: both
                 have no configuration, so Apache's per-module bookkeeping
                 (configuration vectors, per-directory merges) is the same
                 for both, and outside these runners mod_usdt does nothing
                 untraced.  Apache's hook dispatch is included.
  processing     inside the reading and handling of each request
                 (ap_read_request, ap_process_async_request) and
                 ap_run_pre_connection: includes the timeline filter and
                 the bookkeeping, for the traced costs.  Not exact: the
                 same variant differs by up to about 100 instructions per
                 request from one run to the next (and an empty module came
                 out 50 to 150 *cheaper* than none), so the floor itself,
                 the empty module's bookkeeping, cannot be measured to the
                 instruction here.
  whole server   for scale.

The module's own share is read from the profile as well: the inclusive
cost of its hook functions.

Usage: bench/instructions.py [--n1 N] [--n2 N]
Needs root (to write the semaphores), valgrind, and a built module and
bench/mod_empty.so (make).

Licensed under the Apache License, Version 2.0.
"""

import argparse
import os
import pwd
import shutil
import re
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'live'))
import benchlib as B  # noqa: E402
from harness import proc_addr, stapsdt_notes  # noqa: E402

def send_requests(port, n, per_connection=100):
    """n GETs of the static file, keep-alive, per_connection per connection;
    each response read completely before the next request."""
    req = b'GET /index.html HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench/1\r\n\r\n'
    left = n
    while left:
        k = min(left, per_connection)
        with socket.create_connection(('127.0.0.1', port), timeout=60) as s:
            f = s.makefile('rb')
            for _ in range(k):
                s.sendall(req)
                status = f.readline()
                if b' 200 ' not in status:
                    raise RuntimeError('unexpected response: %r' % status)
                length = 0
                while True:
                    line = f.readline()
                    if line in (b'\r\n', b''):
                        break
                    if line.lower().startswith(b'content-length:'):
                        length = int(line.split(b':')[1])
                f.read(length)
        left -= k


# The probe families whose traced cost is measured one by one (proxy and
# child probes fire per proxied request and per child: none here).
FAMILIES = {
    'request': ('request__start', 'request__done'),
    'headers': ('request__header', 'response__header'),
    'handler': ('request__handler',),
    'conn': ('conn__start', 'conn__done'),
}
# Where a connection's requests are processed, start to end (not nested in
# one another: --toggle-collect flips at each entry and exit).
PROCESSING = ('ap_run_pre_connection', 'ap_read_request', 'ap_process_async_request')
RUNNERS = ('ap_run_pre_connection', 'ap_run_post_read_request', 'ap_run_insert_filter',
           'ap_run_log_transaction')
# mod_usdt's per-request hooks (pre_connection runs once per connection).
HOOKS = ('usdt_post_read_request', 'usdt_insert_filter', 'usdt_log_transaction',
         'usdt_pre_connection')


def set_semaphores(pid, names, value=1):
    """Set the semaphores of the httpd probes names (None: all) in pid."""
    with open('/proc/%d/mem' % pid, 'r+b', buffering=0) as mem:
        for prov, name, vaddr in stapsdt_notes(B.MODULE):
            if prov == 'httpd' and vaddr and (names is None or name in names):
                mem.seek(proc_addr(pid, B.MODULE, vaddr))
                mem.write(value.to_bytes(2, sys.byteorder))


def run(variant, n, workdir, toggles=()):
    """Instructions of one callgrind run of variant serving n requests (plus
    one warm-up), counted only inside the toggles if any."""
    out = os.path.join(workdir, 'callgrind.%s.%d' % (variant.replace(':', '-'), n))
    extra = {'without': '', 'empty': B.WITH_EMPTY}.get(variant, B.WITH_MODULE)
    valgrind = ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out,
                '--trace-children=no', '--vgdb=no']
    valgrind += ['--toggle-collect=' + t for t in toggles]
    # Callgrind creates its profile at start, as root, and writes it at exit,
    # after Apache -X has switched to its User: give that user the file.
    pw = pwd.getpwnam(B.RUN_USER)
    open(out, 'w').close()
    os.chown(out, pw.pw_uid, pw.pw_gid)
    httpd = B.Apache(extra, argv_prefix=valgrind, single_process=True)
    try:
        httpd.start(timeout=120)
        # Apache loads its modules twice (a configuration dry run first) and
        # listens before the second load: one request makes sure the module
        # that serves is the one mapped now.
        send_requests(httpd.port, 1)
        if variant == 'armed':
            set_semaphores(httpd.proc.pid, None)
        elif variant.startswith('armed:'):
            set_semaphores(httpd.proc.pid, FAMILIES[variant.split(':', 1)[1]])
        send_requests(httpd.port, n)
    finally:
        httpd.cleanup()     # SIGTERM: Apache exits cleanly, callgrind writes out
    total = None
    with open(out) as f:
        for line in f:
            m = re.match(r'(?:summary|totals):\s*(\d+)', line)
            if m:
                total = int(m.group(1))
    os.unlink(out)
    if total is None:
        raise RuntimeError('no callgrind profile for %s: %s' % (variant, httpd.log()))
    return total


def per_request(variant, n1, n2, workdir, toggles=()):
    """(Ir(n2) - Ir(n1)) / (n2 - n1): start-up and shutdown cancel out."""
    t1 = run(variant, n1, workdir, toggles)
    t2 = run(variant, n2, workdir, toggles)
    where = {(): 'whole server', PROCESSING: 'processing',
             RUNNERS: 'hook runners'}.get(tuple(toggles), 'its hooks')
    print('# %-16s %-12s Ir(%d) = %d, Ir(%d) = %d: %.2f per request'
          % (variant, where, n1, t1, n2, t2, (t2 - t1) / (n2 - n1)))
    sys.stdout.flush()
    return (t2 - t1) / (n2 - n1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--n1', type=int, default=200)
    ap.add_argument('--n2', type=int, default=2000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit('bench: run as root (arming the semaphores writes /proc/PID/mem)')
    B.need('valgrind', 'valgrind')
    for path in (B.MODULE, B.EMPTY_MODULE):
        if not os.path.isfile(path):
            sys.exit('bench: no module at %s: build first (make), or set USDT_MODULE '
                     'and USDT_EMPTY_MODULE' % path)
    work = tempfile.mkdtemp(prefix='usdt-callgrind-')
    os.chmod(work, 0o755)       # Apache's User writes the profile in here
    families = ['armed:' + f for f in FAMILIES]
    try:
        whole = per_request('without', args.n1, args.n2, work)
        runners = {v: per_request(v, args.n1, args.n2, work, RUNNERS)
                   for v in ('without', 'empty', 'untraced', 'armed')}
        proc = {v: per_request(v, args.n1, args.n2, work, PROCESSING)
                for v in ['untraced', 'armed'] + families}
        # Only the hooks: --toggle-collect flips collection at each entry
        # and exit of a matching function, so naming their callees too would
        # switch counting off inside the hooks.  The callees, and the hooks'
        # .cold halves, are counted as part of the hooks.
        own = {v: per_request(v, args.n1, args.n2, work, HOOKS) for v in ('untraced', 'armed')}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print('| Apache -X under callgrind, requests %d..%d, 100 per keep-alive connection '
          '| instructions per request |' % (args.n1, args.n2))
    print('|---|---:|')
    print('| Apache serving a 101-byte static file, no module added (whole server) | %.0f |'
          % whole)
    print('| its hook runners of pre_connection, post_read_request, insert_filter, '
          'log_transaction | %.1f |' % runners['without'])
    print('| an empty module (no hooks, no configuration), in those runners | %+.1f |'
          % (runners['empty'] - runners['without']))
    print('| mod_usdt untraced, every probe compiled in, over the empty module | %+.1f |'
          % (runners['untraced'] - runners['empty']))
    print('| of which mod_usdt\'s own hooks (the rest: Apache calling them) | %.1f |'
          % own['untraced'])
    print('| mod_usdt traced, every probe (semaphores 1): hook runners, over untraced | %+.1f |'
          % (runners['armed'] - runners['untraced']))
    print('| of which mod_usdt\'s hooks and all they call | %.1f |' % own['armed'])
    print('| mod_usdt traced, every probe: request processing (timeline filter too), '
          'over untraced | %+.0f |' % (proc['armed'] - proc['untraced']))
    for f, names in FAMILIES.items():
        print('| traced %s only (%s): request processing, over untraced | %+.0f |'
              % (f, ', '.join(n.replace('__', '-') for n in names),
                 proc['armed:' + f] - proc['untraced']))

if __name__ == '__main__':
    main()
