#!/usr/bin/python3
"""test_http_latency.py: examples/http-latency.bt against a real Apache.

A private Apache with the built module; the tool runs as an operator runs
it on a local build, limited to that server (USDT_MODULE=...
examples/http-latency.bt PID).  A known mix
of statuses (200, 404, 301, a request Apache rejects with 400, a slow 200),
then Ctrl-C.  The checks parse the histograms and the per-status lines and
compare them with the server's access log: the histogram's total is the
number of requests, each status's histogram has that status's count, the
slow request lands in its power-of-two bucket.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_latency.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import collections
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

SLOW = 0.3          # seconds the slow request's headers are late
MIX = [('/static.txt?n=%d' % i, 200) for i in range(5)] + \
      [('/missing?n=%d' % i, 404) for i in range(3)] + [('/dir', 301), ('/dir', 301)]
UNITS = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}


def setup():
    with harness.Apache() as httpd:
        # limited to this server: other tests' servers may load the same module
        with toolrun.Tool('http-latency.bt', httpd.pid) as tool:
            with harness.Http1(httpd.port) as c:
                for uri, want in MIX:
                    expect_eq(c.get(uri).status, want, 'status of ' + uri)
            with harness.Http1(httpd.port) as c:
                c.send(b'GARBAGE\r\n\r\n')
                expect_eq(c.response().status, 400, 'status of a garbage request line')
            status, _ = toolrun.slow_request(httpd.port, delay=SLOW)
            expect_eq(status, 200, 'status of the slow request')
            # every request logged (log_transaction runs after the response)
            n = len(MIX) + 2
            harness.wait_until(lambda: len(httpd.client_access_log()) >= n, 10)
            access = httpd.access_log()
            tool.stop()
        return {'out': tool.body(), 'access': access, 'stderr': tool.stderr(), 'pid': httpd.pid}


def parse(lines):
    """{'@name' or '@name[key]': [(lo, hi, count)]} for histograms,
    {'@name[key]': (count, average, total)} for stats lines, and the other
    non-blank lines."""
    hists, stats, other = collections.OrderedDict(), {}, []
    cur = None
    for l in lines:
        m = re.match(r'^(@\w+(?:\[[^\]]*\])?): ?$', l)
        if m:
            cur = hists.setdefault(m.group(1), [])
            continue
        m = re.match(r'^\[(\d+)([KMG]?), (\d+)([KMG]?)\)\s+(\d+) \|[@ ]*\|$', l)
        if m and cur is not None:
            cur.append((int(m.group(1)) * UNITS[m.group(2)], int(m.group(3)) * UNITS[m.group(4)],
                        int(m.group(5))))
            continue
        m = re.match(r'^\[(\d+)\]\s+(\d+) \|[@ ]*\|$', l)       # the [0] bucket
        if m and cur is not None:
            cur.append((0, 1, int(m.group(2))))
            continue
        cur = None
        m = re.match(r'^(@\w+\[[^\]]*\]): count (\d+), average (\d+), total (\d+)$', l)
        if m:
            stats[m.group(1)] = tuple(int(x) for x in m.group(2, 3, 4))
        elif l.strip():
            other.append(l)
    return hists, stats, other


def logged_statuses(d):
    return collections.Counter(row[0] for row in d['access'])


@t.check('BEGIN says what is traced and how to stop')
def _(d):
    expect_eq(d['out'][0], 'Tracing Apache request latency (mod_usdt), server PID %d. '
              'Hit Ctrl-C to end.' % d['pid'], 'first line')


@t.check('at Ctrl-C: the overall histogram, the stats and the per-status histograms, '
         'under their titles, nothing else')
def _(d):
    hists, stats, other = parse(d['out'][1:])
    expect_eq(other, ['Latency of every request, microseconds:',
                      'Count, average and total latency (us) by status:',
                      'Latency by status, microseconds:'], 'lines other than maps')
    expect(all(re.match(r'^@us(_by_status\[\d+\])?$', k) for k in hists), 'maps: %r' % list(hists))
    expect(all(re.match(r'^@us_stats_by_status\[\d+\]$', k) for k in stats), 'maps: %r' % list(stats))


@t.check('the histogram\'s total equals the number of requests (the access log\'s)')
def _(d):
    hists, _, _ = parse(d['out'])
    total = sum(c for _, _, c in hists.get('@us', []))
    expect_eq(total, len(d['access']), 'requests in @us\n' + '\n'.join(d['out']))
    expect_eq(len(d['access']), len(MIX) + 2 + len([r for r in d['access'] if r[2] == '*']),
              'access log: the mix, the rejected and the slow request, and dummy connections')


@t.check('one histogram per status, each with that status\'s count')
def _(d):
    hists, _, _ = parse(d['out'])
    got = {int(k[len('@us_by_status['):-1]): sum(c for _, _, c in v)
           for k, v in hists.items() if k.startswith('@us_by_status[')}
    expect_eq(got, dict(logged_statuses(d)), 'requests per status: histograms vs the access log')
    expect_eq(got.get(400), 1, 'the rejected request\'s 400')


@t.check('stats by status: the counts, and averages within the histograms\' ranges')
def _(d):
    hists, stats, _ = parse(d['out'])
    expect_eq({int(k[len('@us_stats_by_status['):-1]): v[0] for k, v in stats.items()},
              dict(logged_statuses(d)), 'counts per status: stats vs the access log')
    for k, (count, avg, total) in stats.items():
        h = [b for b in hists['@us_by_status[' + k[len('@us_stats_by_status['):]] if b[2]]
        expect(h[0][0] <= avg < h[-1][1], '%s: average %d outside [%d, %d)'
               % (k, avg, h[0][0], h[-1][1]))
        expect(abs(total - avg * count) < count, '%s: total %d vs %d x %d' % (k, total, count, avg))


@t.check('histogram rows: contiguous power-of-two ranges, ending on non-empty rows')
def _(d):
    hists, _, _ = parse(d['out'])
    for name, rows in hists.items():
        expect(rows and rows[0][2] and rows[-1][2], '%s: empty first or last row: %r' % (name, rows))
        for (lo, hi, _), (lo2, _, _) in zip(rows, rows[1:]):
            expect(hi == lo2 and (lo == 0 or hi == 2 * lo), '%s: rows %r' % (name, rows))


@t.check('the slow request (%.1f s) is counted in the [256K, 512K) row' % SLOW)
def _(d):
    hists, _, _ = parse(d['out'])
    rows = {(lo, hi): c for lo, hi, c in hists['@us']}
    expect(rows.get((256 << 10, 512 << 10), 0) >= 1, 'rows of @us: %r' % hists['@us'])
    expect_eq(sum(c for (lo, _), c in rows.items() if lo >= 256 << 10), 1,
              'requests of 256 ms or more')


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
