#!/usr/bin/python3
"""test_bench.py: the benchmarks still run, and the module's costs hold.

The README's Performance table comes from bench/run.sh; a benchmark that no
test runs rots unseen (a tool's options change, and variant (d) stops
tracing).  This runs both benchmarks briefly against the built module:

  bench/instructions.py --n1 50 --n2 250   (exact: callgrind counts)
  bench/overhead.py --rounds 1 --seconds 1 (every variant once)

and checks what is exact, with a margin only for another compiler:
  - untraced, mod_usdt adds at most 30 instructions per request (28 with
    Debian 12's gcc: 8 in its two hooks, 20 in Apache's hook runners
    calling them), its own hooks at most 10;
  - traced, its hooks and all they call stay under 2,000 instructions per
    request (861 here): building the record formats nothing, copies no
    string;
  - overhead.py prints a row for each of the five variants, and in (d)
    http-requests.bt wrote a line for every request (overhead.py itself
    fails otherwise).
Timings are not judged: they are the README's business, from a full run.

Needs what the live tests need, plus valgrind and wrk; skips like them.
Licensed under the Apache License, Version 2.0.
"""

import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'live'))
import harness  # noqa: E402
from harness import expect  # noqa: E402

BENCH = os.path.join(harness.SRCDIR, 'bench')
t = harness.Tap()


def bench(script, *args, timeout):
    p = subprocess.run([sys.executable, os.path.join(BENCH, script)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout)
    return p.returncode, p.stdout


def setup():
    for tool in ('valgrind', 'wrk'):
        if not shutil.which(tool):
            raise RuntimeError('no %s in PATH (tests/deps.sh installs it)' % tool)
    d = {}
    d['instr_rc'], d['instr'] = bench('instructions.py', '--n1', '50', '--n2', '250',
                                      timeout=600)
    d['over_rc'], d['over'] = bench('overhead.py', '--rounds', '1', '--seconds', '1',
                                    timeout=600)
    return d


def row(out, label):
    """The number in the table row that starts with label."""
    for line in out.splitlines():
        if line.startswith('| ' + label):
            return float(line.rstrip(' |').rsplit('|', 1)[1])
    raise harness.Failure('no row %r in:\n%s' % (label, out))


@t.check('bench/instructions.py runs to its table')
def _(d):
    expect(d['instr_rc'] == 0, 'exit %d:\n%s' % (d['instr_rc'], d['instr']))


@t.check('untraced, mod_usdt adds at most 30 instructions per request')
def _(d):
    added = row(d['instr'], 'added by mod_usdt, untraced')
    expect(0 < added <= 30, 'added %r:\n%s' % (added, d['instr']))


@t.check('untraced, its two hooks run at most 10 instructions per request')
def _(d):
    own = row(d['instr'], "of which mod_usdt's two hooks (the rest")
    expect(0 < own <= 10, 'hooks %r:\n%s' % (own, d['instr']))


@t.check('traced, its hooks and all they call stay under 2,000 instructions per request')
def _(d):
    own = row(d['instr'], "of which mod_usdt's two hooks and all they call")
    expect(100 < own < 2000, 'traced hooks %r:\n%s' % (own, d['instr']))


@t.check('bench/overhead.py runs every variant, (d) tracing every request')
def _(d):
    expect(d['over_rc'] == 0, 'exit %d:\n%s' % (d['over_rc'], d['over']))
    rows = re.findall(r'^\| \(([a-e])\) ', d['over'], re.M)
    expect(rows == list('abcde'), 'variant rows %r:\n%s' % (rows, d['over']))


t.run(setup)
