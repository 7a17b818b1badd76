#!/usr/bin/python3
"""test_child.py: httpd:::child-start and child-done as a tracer sees them.

A private Apache with the module on the prefork MPM with
MaxConnectionsPerChild 3, bpftrace running test_child.bt, then 9
connections of one request each (children exit after 3 and are replaced)
and a graceful restart (a new generation of children; the old ones exit).
The checks judge what the probes reported: each child's pid (that of the
process that fired), its generation, pairs of child-start and child-done,
and child-done's requests: exactly the request-dones that child fired
while traced.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/live/test_child.py
Needs root and bpftrace (skips otherwise, fails under CI=true).  Prints TAP.
"""

import os
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()
PER_CHILD = 3
CONNECTIONS = 9


def setup():
    with harness.Apache(mpm='prefork', start_servers=2,
                        extra='MaxConnectionsPerChild %d' % PER_CHILD) as httpd:
        first = httpd.children()
        with harness.Tracer('test_child.bt', strlen=64) as tracer:
            statuses = []
            for i in range(CONNECTIONS):
                with harness.Http1(httpd.port) as c:
                    statuses.append(c.get('/static.txt?child=%d' % i).status)
            tracer.wait_for(lambda evs: len([e for e in harness.client_events(evs)
                                             if e['probe'] == 'done']) >= CONNECTIONS, 10)
            before = tracer.events()
            gen0 = set(first) | {e['id'] for e in before if e['probe'] == 'child-start'}
            httpd.graceful()
            # the new generation's children start; every old one exits
            # (its replacements forked just before the restart included)
            tracer.wait_for(lambda evs: len([e for e in evs if e['probe'] == 'child-start'
                                             and e.get('generation', 0) > 0]) >= 2
                            and {e['id'] for e in evs if e['probe'] == 'child-done'}
                            >= {e['id'] for e in evs if e['probe'] == 'child-start'
                                and e.get('generation') == 0} | set(first), 15)
            alive = httpd.children()
        events = tracer.events()
    return {'first': first, 'statuses': statuses, 'before': before, 'alive': alive, 'all': events, 'lost': tracer.lost(), 'stderr': tracer.stderr(),
            'errors': httpd.errors()}


def of(evs, probe):
    return [e for e in evs if e['probe'] == probe]


@t.check('the tracer saw child events and lost none; every request got a 200')
def _(d):
    expect(of(d['all'], 'child-done'), 'no child-done event\nbpftrace stderr:\n%s\nerror log:\n%s'
           % (d['stderr'], d['errors'][-3000:]))
    expect(not d['lost'], 'bpftrace lost events: %r' % d['lost'])
    expect_eq(d['statuses'], [200] * CONNECTIONS, 'statuses')


@t.check('child-start and child-done fire in the child itself: arg0 is its pid')
def _(d):
    for e in of(d['all'], 'child-start') + of(d['all'], 'child-done'):
        expect_eq(e['id'], e.get('pid'), 'pid argument vs the firing process: %r' % e)


@t.check('MaxConnectionsPerChild: children exit and are replaced, with a child-start each')
def _(d):
    exited = of(d['before'], 'child-done')
    started = of(d['before'], 'child-start')
    expect(len(exited) >= 2, 'child-dones before the restart: %r' % exited)
    expect(len(started) >= len(exited), 'child-starts %r for %d exits' % (started, len(exited)))
    expect(all(e['id'] in d['first'] or e['id'] in {s['id'] for s in started} for e in exited),
           'a child-done for a child we did not know: %r' % exited)


@t.check('child-done\'s requests: exactly the request-dones that child fired')
def _(d):
    for e in of(d['all'], 'child-done'):
        fired = [r for r in of(d['all'], 'done') if r.get('pid') == e['id']]
        expect_eq(e.get('requests'), len(fired), 'requests of child %d' % e['id'])
    full = [e for e in of(d['before'], 'child-done') if e.get('requests') == PER_CHILD]
    expect(full, 'no child exited after %d requests: %r' % (PER_CHILD, of(d['before'], 'child-done')))


@t.check('graceful restart: a child-start per new child, one generation up; old children done')
def _(d):
    gens = {e.get('generation') for e in of(d['before'], 'child-start')}
    expect_eq(gens, {0}, 'generations before the restart')
    gen0 = set(d['first']) | {e['id'] for e in of(d['all'], 'child-start')
                              if e.get('generation') == 0}
    after = [e for e in of(d['all'], 'child-start') if e['id'] not in gen0]
    expect(len(after) >= 2, 'child-starts after the restart: %r' % after)
    expect(all(e.get('generation') == 1 for e in after),
           'generations of the new children: %r' % after)
    expect({e['id'] for e in after} <= set(d['alive']),
           'new children %r, alive %r' % (sorted(e['id'] for e in after), d['alive']))
    done = {e['id']: e for e in of(d['all'], 'child-done')}
    expect(gen0 <= set(done), 'old children without child-done: %r' % sorted(gen0 - set(done)))
    expect(all(done[p].get('generation') == 0 for p in gen0),
           'old children\'s generations: %r' % [done[p] for p in gen0])


@t.check('pairs: each child-start has one child-done unless the child is still alive')
def _(d):
    dones = [e['id'] for e in of(d['all'], 'child-done')]
    expect_eq(len(dones), len(set(dones)), 'a child-done twice: %r' % dones)
    for e in of(d['all'], 'child-start'):
        expect((e['id'] in dones) != (e['id'] in d['alive']),
               'child %d: done %s, alive %s' % (e['id'], e['id'] in dones, e['id'] in d['alive']))


if __name__ == '__main__':
    t.run(setup)
