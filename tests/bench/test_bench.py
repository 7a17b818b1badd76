#!/usr/bin/python3
"""test_bench.py: the benchmarks still run, and the module's costs hold.

The README's Performance table comes from bench/run.sh; a benchmark that no
test runs rots unseen (a tool's options change, and variant (d) stops
tracing).  This runs both benchmarks briefly against the built module:

  bench/instructions.py --n1 50 --n2 250   (exact: callgrind counts)
  bench/overhead.py --rounds 1 --seconds 1 (every variant once)

and checks what is exact, with a margin only for another compiler:
  - an empty module (no hooks, no configuration) adds nothing to the hook
    runners: the count is exact;
  - untraced, mod_usdt with every probe compiled in adds at most 45
    instructions per keep-alive request over that empty module (DESIGN.md's
    budget), Apache's hook dispatch included, its own hooks at most 20
    (16: three per-request hooks of 4 to 7 instructions);
  - traced (every semaphore 1), its hooks and all they call stay under
    5,000 instructions per request: both records built, the timeline
    filter, a probe site per header, formatting nothing;
  - overhead.py prints a row for each of the six variants, and in (d)
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


@t.check('an empty module adds nothing to the hook runners: the count is exact')
def _(d):
    floor = row(d['instr'], 'an empty module (no hooks, no configuration), in those runners')
    expect(floor == 0, 'empty module %r:\n%s' % (floor, d['instr']))


@t.check('untraced, mod_usdt adds at most 45 instructions per request over the empty module')
def _(d):
    added = row(d['instr'], 'mod_usdt untraced, every probe compiled in, over the empty module')
    expect(0 < added <= 45, 'added %r:\n%s' % (added, d['instr']))


@t.check('untraced, its hooks run at most 20 instructions per request')
def _(d):
    own = row(d['instr'], "of which mod_usdt's own hooks (the rest")
    expect(0 < own <= 20, 'hooks %r:\n%s' % (own, d['instr']))


@t.check('traced, its hooks and all they call stay under 5,000 instructions per request')
def _(d):
    own = row(d['instr'], "of which mod_usdt's hooks and all they call")
    expect(100 < own < 5000, 'traced hooks %r:\n%s' % (own, d['instr']))


@t.check('bench/overhead.py runs every variant (f: every probe traced), (d) tracing every request')
def _(d):
    expect(d['over_rc'] == 0, 'exit %d:\n%s' % (d['over_rc'], d['over']))
    rows = re.findall(r'^\| \(([a-f])\) ', d['over'], re.M)
    expect(rows == list('abcdef'), 'variant rows %r:\n%s' % (rows, d['over']))


t.run(setup)
