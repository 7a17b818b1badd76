#!/usr/bin/python3
"""test_semaphores.py: the probes' semaphores, read from the server's memory.

The module builds probe arguments only when a probe's semaphore is nonzero,
and the kernel raises the semaphores of every process that maps the module
when a tracer attaches by the module's path.  This test finds each
semaphore's link-time address in the module's stapsdt notes (readelf -n),
the module's place in a process (/proc/PID/maps), and reads the two bytes
from /proc/PID/mem of Apache's parent and of every child:

  no tracer            every semaphore reads 0 (needs root, no bpftrace)
  bpftrace attached    nonzero everywhere, also in children forked by a
                       graceful restart while it is attached
  bpftrace gone        0 again

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_semaphores.py
The readelf check runs anywhere; reading memory needs root, the attached
phases bpftrace too (they skip otherwise, and fail under CI=true).  Prints TAP.
"""

import os
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
PROBES = ('request__start', 'request__header', 'request__handler', 'proxy__start',
          'proxy__done', 'response__header', 'request__done', 'conn__start', 'conn__done',
          'child__start', 'child__done')


def read_all(pids):
    return {pid: harness.read_semaphores(pid) for pid in pids}


def setup():
    d = {'notes': harness.stapsdt_notes(harness.MODULE)}
    if harness.missing(('root', 'apache')):
        return d        # the checks that need them say why they skip
    with harness.Apache() as httpd:
        d['idle'] = read_all([httpd.pid] + httpd.children())
        if harness.missing(('bpftrace',)):
            return d
        with harness.Tracer('test_semaphores.bt') as tracer:
            d['attached'] = read_all([httpd.pid] + httpd.children())
            with harness.Http1(httpd.port) as c:
                d['port'] = c.local_port
                d['status'] = c.get('/static.txt?sem=1', agent='sem').status
            d['events'] = tracer.wait_for(lambda evs: harness.settled(evs, 1), 10)
            new = httpd.graceful()
            d['restarted'] = read_all([httpd.pid] + new)
        d['detached'] = read_all([httpd.pid] + httpd.children())
        d['stderr'] = tracer.stderr()
    return d


def expect_values(readings, nonzero, what):
    bad = []
    for pid, vals in sorted(readings.items()):
        expect_eq(sorted(vals), sorted(PROBES), 'semaphores found in pid %d' % pid)
        for name, v in sorted(vals.items()):
            if bool(v) != nonzero:
                bad.append('pid %d %s = %d' % (pid, name, v))
    expect(not bad, '%s, want %s:\n%s' % (what, 'nonzero' if nonzero else '0', '\n'.join(bad)))


@t.check('readelf -n: every httpd probe has a semaphore')
def _(d):
    sems = {(p, n): a for p, n, a in d['notes']}
    for name in PROBES:
        expect(sems.get(('httpd', name)), 'no semaphore for httpd:%s in %r' % (name, d['notes']))


@t.check('no tracer: every semaphore reads 0 in the parent and every child')
def _(d):
    harness.require('root', 'apache')
    expect(len(d['idle']) >= 3, 'read only %d processes' % len(d['idle']))
    expect_values(d['idle'], False, 'with no tracer')


@t.check('bpftrace attached by path: every semaphore nonzero in the parent and every child')
def _(d):
    harness.require('root', 'apache', 'bpftrace')
    expect_values(d['attached'], True, 'with bpftrace attached')


@t.check('with the semaphores on, one request fires one start and one done')
def _(d):
    harness.require('root', 'apache', 'bpftrace')
    expect_eq(d['status'], 200, 'status the client got')
    evs = [e for e in harness.client_events(d['events']) if e['probe'] in ('start', 'done')]
    expect_eq(sorted(e['probe'] for e in evs), ['done', 'start'], 'events\n' + harness.fmt_all(evs))
    expect_eq(len({e['id'] for e in evs}), 1, 'ids')


@t.check('children forked by a graceful restart while attached: semaphores nonzero')
def _(d):
    harness.require('root', 'apache', 'bpftrace')
    expect(len(d['restarted']) >= 3, 'read only %d processes' % len(d['restarted']))
    expect_values(d['restarted'], True, 'after a graceful restart with bpftrace attached')


@t.check('bpftrace gone: every semaphore reads 0 again')
def _(d):
    harness.require('root', 'apache', 'bpftrace')
    expect_values(d['detached'], False, 'after bpftrace exited')


if __name__ == '__main__':
    t.run(setup, needs=('module',))
