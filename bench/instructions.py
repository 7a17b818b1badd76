#!/usr/bin/python3
"""instructions.py: instructions per request that mod_usdt adds, exactly.

Runs the bench Apache single-process (-X) under valgrind --tool=callgrind
and sends it a fixed number of requests, one keep-alive connection at a
time, in three variants:

  without     no module
  untraced    mod_usdt loaded, no tracer (semaphores 0)
  armed       mod_usdt loaded, both semaphores set to 1 by writing the
              process's memory, as a tracer would: every hook then builds
              the record and reaches the probe site.  (Under valgrind no
              uprobe can fire, so the probe sites stay nops: this counts
              the module's own work while traced, not the kernel's.)

Each variant runs twice, with N1 and N2 requests, and the instructions per
request are (Ir(N2) - Ir(N1)) / (N2 - N1): server start-up and shutdown
cancel out.  Instruction counts are exact and repeatable where timings are
not.  The module's share is also read from the callgrind profile itself:
the inclusive cost of its two hook functions, per request.

Usage: bench/instructions.py [--n1 N] [--n2 N]
Needs root (to write the semaphores), valgrind, and a built module.

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
from harness import write_semaphores  # noqa: E402

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


# The module's whole cost per request lies inside Apache's two hook runners:
# its hooks, their cold halves, what those call, and the runners' loop
# iterations that call them.  Callgrind counts only inside these (and all
# they call) with --toggle-collect; the difference with the module and
# without it is the module's cost, free of the rest of the server's noise.
RUNNERS = ('ap_run_post_read_request', 'ap_run_log_transaction')


def run(variant, n, workdir, toggles=()):
    """Instructions of one callgrind run of variant serving n requests (plus
    one warm-up), counted only inside the toggles if any."""
    out = os.path.join(workdir, 'callgrind.%s.%d' % (variant, n))
    extra = '' if variant == 'without' else B.WITH_MODULE
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
            write_semaphores(httpd.proc.pid, 1, B.MODULE)
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
    where = 'whole server'
    if toggles:
        where = 'hook runners' if toggles == RUNNERS else 'its hooks'
    print('# %-8s %-12s Ir(%d) = %d, Ir(%d) = %d: %.2f per request'
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
    if not os.path.isfile(B.MODULE):
        sys.exit('bench: no module at %s: build first, or set USDT_MODULE' % B.MODULE)
    work = tempfile.mkdtemp(prefix='usdt-callgrind-')
    os.chmod(work, 0o755)       # Apache's User writes the profile in here
    try:
        server = per_request('without', args.n1, args.n2, work)
        runners = {v: per_request(v, args.n1, args.n2, work, RUNNERS)
                   for v in ('without', 'untraced', 'armed')}
        # Only the two hooks: --toggle-collect flips collection at each entry
        # and exit of a matching function, so naming their callees too would
        # switch counting off inside the hooks.  The callees, and the hooks'
        # .cold halves (reached by a jump), are counted as part of the hooks.
        hooks = ('usdt_post_read_request', 'usdt_log_transaction')
        own = {v: per_request(v, args.n1, args.n2, work, hooks)
               for v in ('untraced', 'armed')}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print('| Apache -X under callgrind, requests %d..%d | instructions per request |'
          % (args.n1, args.n2))
    print('|---|---:|')
    print('| Apache serving a 101-byte static file, without mod_usdt | %.0f |' % server)
    print('| Apache\'s two hook runners, without mod_usdt | %.1f |' % runners['without'])
    print('| added by mod_usdt, untraced (semaphores 0) | %+.1f |'
          % (runners['untraced'] - runners['without']))
    print('| of which mod_usdt\'s two hooks (the rest: Apache calling them) | %.1f |'
          % own['untraced'])
    print('| added by mod_usdt, traced (semaphores 1: record built, probe sites reached) | %+.1f |'
          % (runners['armed'] - runners['without']))
    print('| of which mod_usdt\'s two hooks and all they call | %.1f |' % own['armed'])


if __name__ == '__main__':
    main()
