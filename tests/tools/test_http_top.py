#!/usr/bin/python3
"""test_http_top.py: examples/http-top.bt against a real Apache.

A private Apache with the built module; the tool runs as an operator runs
it on a local build, every 2 s and limited to that server
(USDT_MODULE=... examples/http-top.bt 2 PID), and a second copy with no
argument (every 5 s, every server: only its first lines are judged).  Right after an interval
is printed, a known mix goes out within well under 2 s: many fast requests
of a few URIs from 127.0.0.1, one slow request from ::1.  The checks parse
each interval's block: requests per second, status classes, top URIs and
clients by count and by total time, and compare them with what was sent.

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_http_top.py
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

SLOW = 0.4
SLOW_URI = '/static.txt?slow=1'
MIX = [('/static.txt', 200)] * 6 + [('/missing', 404)] * 3 + [('/dir', 301)] * 2
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


def setup():
    with harness.Apache() as httpd:
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
                for uri, want in MIX:
                    expect_eq(c.get(uri).status, want, 'status of ' + uri)
            status, _ = toolrun.slow_request(httpd.port, '::1', delay=SLOW, target=SLOW_URI)
            expect_eq(status, 200, 'status of the slow request')
            n = len(MIX) + 1
            tool.wait_for(lambda ls: summed(blocks(ls), 'requests').get('all', 0) >= n, 6)
            default.wait_for(lambda ls: len(blocks(ls)) >= 1, 8)
        return {'out': tool.body(), 'default': default.body(), 'pid': httpd.pid,
                'stderr': tool.stderr() + default.stderr()}


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
    expect(all(set(b[3]) == {'requests_per_s', 'requests', 'top_uri_by_count',
                             'top_uri_by_total_us', 'top_client_by_count',
                             'top_client_by_total_us'} for b in bl if not b[2]),
           'maps of a busy block: %r' % [list(b[3]) for b in bl])
    dbl = blocks(d['default'][1:])
    expect(dbl and dbl[0][1] == 5, 'the default run\'s first block: %r' % dbl[:1])


@t.check('requests by status class, summed over the blocks: what was sent')
def _(d):
    got = summed(blocks(d['out']), 'requests')
    n = dummies(d)
    want = {'2xx': 7 + n, '3xx': 2, '4xx': 3, 'all': len(MIX) + 1 + n}
    expect_eq(got, want, '@requests\n' + '\n'.join(d['out']))


@t.check('requests per second: each block\'s count divided by 2, rounded down')
def _(d):
    for _, iv, _, maps in blocks(d['out']):
        if maps:
            expect_eq(maps['requests_per_s'], [('all', dict(maps['requests'])['all'] // iv)],
                      'requests_per_s vs requests[all]')


@t.check('top URIs and clients by count, summed over the blocks: what was sent')
def _(d):
    bl = blocks(d['out'])
    n = dummies(d)
    uris = collections.Counter(u for u, _ in MIX)
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


@t.check('bpftrace said nothing on stderr but its known harmless lines')
def _(d):
    expect_eq(d['stderr'], [], 'stderr')


if __name__ == '__main__':
    t.run(setup)
