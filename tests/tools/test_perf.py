#!/usr/bin/python3
"""test_perf.py: the perf route of docs/tracers.md (linux-perf 6.1), run for real.

A private Apache with the built module.  The test runs the commands the
docs/tracers.md gives an operator, against the module's path:

  perf buildid-cache --add SO          perf lists the module's SDT events
  perf probe -x SO sdt_httpd:request__done
                                       the uprobe, with the semaphore's file
                                       offset and the six note arguments
  the string event                     docs/tracers.md's sed over that uprobe's
                                       line in uprobe_events: method and uri
                                       fetched as strings (perf 6.1 ignores
                                       fetch arguments given for an SDT
                                       event), in a group of this test's own
  perf record -e ... -a                both events, during a known mix of
                                       requests (keep-alive HTTP/1.1, IPv6,
                                       h2c); stopped with SIGINT
  perf script                          the records

and judges what perf recorded against Apache's own access log (one record
per request, ids distinct, statuses, methods and URIs), the semaphore in the
parent and every child (set while perf records, 0 once it has exited), and
that the events are gone after "perf probe -d".

Run: USDT_MODULE=src/.libs/mod_usdt.so builddir=. srcdir=.. tests/tools/test_perf.py
Needs root, perf, curl and nghttp (skips otherwise, fails under CI=true).  Prints TAP.
"""

import collections
import os
import re
import select
import signal
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import toolrun  # noqa: E402
from toolrun import harness  # noqa: E402
from harness import expect, expect_eq  # noqa: E402

t = harness.Tap()

TRACEFS = '/sys/kernel/tracing'
UPROBE_EVENTS = os.path.join(TRACEFS, 'uprobe_events')
# the string event's group: this test's own, so that it cannot clash with
# an operator's or another test's events
GROUP = 'usdt_test_%d' % os.getpid()
# docs/tracers.md's sed (with this test's group for its httpd_str): perf's
# uprobe line for the SDT event, renamed, its arguments named, arg3 and
# arg4 (method, uri: pointers) fetched as strings, and arg6 (the record)
# read at raddr's offset (136 in a 64-bit process: src/dthttpd.h)
STRING_SED = [r's|^p:sdt_httpd/|p:%s/|' % GROUP,
              r's/ arg1=/ id=/', r's/ arg2=/ status=/',
              r's/ arg3=\([^ ]*\):u64/ method=+0(\1):string/',
              r's/ arg4=\([^ ]*\):u64/ uri=+0(\1):string/',
              r's/ arg5=/ elapsed_us=/',
              r's/ arg6=\([^ ]*\):u64/ raddr=+0(+136(\1)):string/']
RECORD = re.compile(r'^\s*(\d+)/(\d+)\s+(\w+):(\w+):\s+\(([0-9a-f]+)\)(.*)$')
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def perf(*args, timeout=120):
    p = subprocess.run(['perf'] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, errors='replace',
                       timeout=timeout)
    return p.returncode, p.stdout


def uprobe_lines():
    """The kernel's uprobe events; none before tracefs is mounted (perf
    probe mounts it at /sys/kernel/tracing where it is not)."""
    if not os.path.exists(UPROBE_EVENTS):
        return []
    with open(UPROBE_EVENTS) as f:
        return [l.rstrip('\n') for l in f if l.strip()]


def write_uprobe_events(line):
    """What `echo LINE >> uprobe_events` does (Python's append mode seeks,
    which tracefs refuses)."""
    fd = os.open(UPROBE_EVENTS, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + '\n').encode())
    finally:
        os.close(fd)


def parse_records(text):
    """[{'pid', 'tid', 'event', field: value}] from `perf script`'s lines."""
    out = []
    for line in text.splitlines():
        m = RECORD.match(line)
        if not m:
            continue
        rec = {'pid': int(m.group(1)), 'tid': int(m.group(2)),
               'event': '%s:%s' % (m.group(3), m.group(4))}
        for k, v in FIELD.findall(m.group(6)):
            rec[k] = v[1:-1] if v.startswith('"') else int(v, 0)
        out.append(rec)
    return out


def traffic(httpd):
    """A known mix on several connections and protocols; returns
    [(status, method, uri as sent)], each checked against what the client got."""
    sent = []

    def note(status, want, method, uri):
        expect_eq(status, want, '%s %s' % (method, uri))
        sent.append((status, method, uri))
    with harness.Http1(httpd.port, '127.0.0.1') as c:
        for i in range(6):
            uri = '/static.txt?perf=%d' % i
            note(c.get(uri).status, 200, 'GET', uri)
        note(c.get('/missing?perf=1').status, 404, 'GET', '/missing?perf=1')
        note(c.get('/dir?perf=301').status, 301, 'GET', '/dir?perf=301')
        note(c.request('HEAD', '/static.txt?perf=head').status, 200, 'HEAD',
             '/static.txt?perf=head')
    note(harness.curl(httpd.url('/static.txt?perf=v6', '::1'))[0], 200, 'GET',
         '/static.txt?perf=v6')
    uris = ['/static.txt?perf=h2', '/missing?perf=h2']
    statuses, _ = harness.nghttp([httpd.url(u) for u in uris])
    expect_eq(sorted(statuses), [200, 404], 'h2c statuses')
    sent += [(200, 'GET', uris[0]), (404, 'GET', uris[1])]
    return sent


def semaphores(httpd):
    return {pid: harness.read_semaphores(pid) for pid in [httpd.pid] + httpd.children()}


def setup():
    so = harness.MODULE
    d = {'notes': harness.probe_notes(so)}
    data = tempfile.NamedTemporaryFile(prefix='usdt-perf-', suffix='.data', delete=False)
    data.close()
    added = []
    with harness.Apache() as httpd:
        try:
            # perf's SDT event has a fixed name: one left by a run of this
            # test that was killed (same module) goes, anyone else's stops it
            for line in uprobe_lines():
                if line.startswith('p:sdt_httpd/request__done '):
                    if line.split()[1].startswith(os.path.realpath(so) + ':'):
                        perf('probe', '-d', 'sdt_httpd:request__done')
                    else:
                        raise RuntimeError('an sdt_httpd:request__done event for another '
                                           'module exists (%s): perf probe -d it' % line)
            # from an empty build-id cache: perf probe -x adds the module
            perf('buildid-cache', '--remove', so)
            d['probe'] = perf('probe', '-x', so, 'sdt_httpd:request__done')
            d['list'] = perf('list', 'sdt')
            m = re.search(r'^\s+(sdt_httpd:request__done\w*) \(on ', d['probe'][1], re.M)
            if not m:
                raise RuntimeError('perf probe added no event:\n' + d['probe'][1])
            event = m.group(1)
            added.append(('perf', event))
            d['event'] = event
            d['perf_line'] = [l for l in uprobe_lines()
                              if l.startswith('p:%s ' % event.replace(':', '/'))]
            sed = ['sed'] + [a for e in STRING_SED for a in ('-e', e)]
            string_line = subprocess.run(
                sed, input='\n'.join(d['perf_line']) + '\n',
                stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()
            d['string_line'] = string_line
            if not string_line.startswith('p:'):
                raise RuntimeError('no uprobe line for %s in %s: %r'
                                   % (event, UPROBE_EVENTS, uprobe_lines()))
            write_uprobe_events(string_line)
            added.append(('tracefs', '%s/request__done' % GROUP))
            d['before'] = semaphores(httpd)
            # perf record -a opens its events, then writes every running
            # task's maps into perf.data, and only then enables the events:
            # hits in between are not recorded, though the semaphores are
            # already set.  So it starts disabled (-D -1) and the test
            # enables it through --control and waits for perf's "ack" (a
            # line, then a NUL).
            ctl_r, ctl_w = os.pipe()
            ack_r, ack_w = os.pipe()
            rec = subprocess.Popen(['perf', 'record', '-e', event, '-e', GROUP + ':request__done',
                                    '-a', '-o', data.name, '-D', '-1',
                                    '--control', 'fd:%d,%d' % (ctl_r, ack_w)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True,
                                   pass_fds=(ctl_r, ack_w), preexec_fn=harness._tracer_preexec)
            os.close(ctl_r)
            os.close(ack_w)
            try:
                os.write(ctl_w, b'enable\n')
                ack = harness.wait_until(lambda: select.select([ack_r], [], [], 0)[0], 30, 0.05)
                expect(ack and os.read(ack_r, 16).startswith(b'ack\n') and rec.poll() is None,
                       'perf record did not acknowledge "enable"')
                ok = harness.wait_until(lambda: all(
                    v['request__done'] for v in semaphores(httpd).values()), 10, 0.05)
                expect(ok, 'perf record did not set the semaphores')
                d['recording'] = semaphores(httpd)
                d['sent'] = traffic(httpd)
                # request-done fires before mod_log_config writes the line
                harness.wait_until(lambda: len(httpd.client_access_log()) >= len(d['sent']),
                                   10, 0.05)
                d['log'] = httpd.access_log()
                d['recording_end'] = semaphores(httpd)
            finally:
                # the control pipe stays open until perf has exited: perf
                # 6.1 fails ("Thread and evlist pollfd index mismatch") if
                # it is closed under it
                rec.send_signal(signal.SIGINT)
                d['record_out'] = rec.communicate(timeout=60)[0]
                d['record_rc'] = rec.returncode
                os.close(ctl_w)
                os.close(ack_r)
            d['after'] = semaphores(httpd)
            rc, out = perf('script', '-i', data.name, '-F', 'trace:pid,tid,event,trace')
            d['script_rc'], d['script'] = rc, out
        finally:
            for kind, name in reversed(added):
                if kind == 'perf':
                    d['delete'] = perf('probe', '-d', name)
                else:
                    write_uprobe_events('-:' + name)
            d['left'] = [l for l in uprobe_lines() if any(
                l.startswith('p:%s ' % n.replace(':', '/')) for _, n in added)]
            perf('buildid-cache', '--remove', so)
            if not os.environ.get('KEEP_TMP'):
                os.unlink(data.name)
    d['all_records'] = parse_records(d['script'])
    # a hit is ours if the string event saw one of our URIs (each has "perf=";
    # other servers of the same module file, if any, are left out)
    ours = {r['id'] for r in d['all_records'] if r['event'] == GROUP + ':request__done'
            and 'perf=' in r['uri']}
    d['records'] = [r for r in d['all_records'] if r.get('id', r.get('arg1')) in ours]
    return d


def of(d, event):
    return [r for r in d['records'] if r['event'] == event]


def strings(d):
    return of(d, GROUP + ':request__done')


def client_log(d):
    """The access log less Apache's internal dummy connections (OPTIONS *)."""
    return [row for row in d['log'] if row[1:3] != ('OPTIONS', '*')]


def sent(d):
    """(status, method, uri) of each request the test sent."""
    return collections.Counter(d['sent'])


@t.check('perf probe -x SO sdt_httpd:request__done, from an empty build-id cache; '
         'then perf list sdt shows the module\'s probes')
def _(d):
    expect_eq(d['probe'][0], 0, 'perf probe exit status (%s)' % d['probe'][1])
    expect_eq(d['event'], 'sdt_httpd:request__done', 'event name')
    listed = set(re.findall(r'^\s*(sdt_httpd:\w+)\s+\[SDT event\]', d['list'][1], re.M))
    want = {'sdt_httpd:' + n['name'] for n in d['notes'] if n['provider'] == 'httpd'}
    expect_eq(listed, want, 'perf list sdt against the module\'s notes')


@t.check('the uprobe perf wrote: the probe site, the semaphore (ref_ctr_offset), six arguments')
def _(d):
    expect_eq(len(d['perf_line']), 1, 'lines for the event in uprobe_events')
    note = [n for n in d['notes'] if (n['provider'], n['name']) == ('httpd', 'request__done')][0]
    want = '%s:0x%016x(0x%x)' % (os.path.realpath(harness.MODULE),
                                 harness.file_offset(harness.MODULE, note['location']),
                                 harness.file_offset(harness.MODULE, note['semaphore']))
    words = d['perf_line'][0].split()
    expect_eq(words[1], want, 'probe site and semaphore')
    expect_eq([w.split('=')[0] for w in words[2:]],
              ['arg%d' % i for i in range(1, 7)], 'arguments (perf counts them from 1)')


@t.check('the string event, from the README\'s sed: method and uri fetched as strings')
def _(d):
    line = d['string_line']
    expect(line.startswith('p:%s/request__done ' % GROUP), 'renamed: %s' % line)
    expect(re.search(r' method=\+0\([^ ]+\):string ', line)
           and re.search(r' uri=\+0\([^ ]+\):string ', line)
           and re.search(r' raddr=\+0\(\+136\([^ ]+\)\):string$', line),
           'string fetches: %s' % line)


@t.check('no tracer: the semaphores are 0; perf record: request-done\'s set in the parent '
         'and every child, the other probes\' not')
def _(d):
    expect(all(not any(v.values()) for v in d['before'].values()),
           'before perf record: %r' % d['before'])
    for when in ('recording', 'recording_end'):
        expect(len(d[when]) >= 3, 'read %d processes' % len(d[when]))
        others = [{k: n for k, n in v.items() if k != 'request__done'}
                  for v in d[when].values()]
        expect(all(v['request__done'] > 0 for v in d[when].values())
               and not any(any(o.values()) for o in others),
               'while perf records: %r' % d[when])


@t.check('perf record stopped with SIGINT: every semaphore is 0 again')
def _(d):
    # perf record ends a SIGINT by raising it again, once perf.data is written
    expect(d['record_rc'] in (0, -signal.SIGINT) and 'Captured and wrote' in d['record_out'],
           'perf record: exit %s, %s' % (d['record_rc'], d['record_out']))
    expect(all(not any(v.values()) for v in d['after'].values()),
           'after perf record: %r' % d['after'])


@t.check('perf script: one request-done record per request Apache logged, ids distinct')
def _(d):
    expect_eq(d['script_rc'], 0, 'perf script exit status')
    nums = of(d, d['event'])
    expect_eq((len(nums), len(client_log(d))), (len(d['sent']), len(d['sent'])),
              '(records, access log lines) against requests sent:\n%s\n%s'
              % (d['record_out'], d['script']))
    ids = [r['arg1'] for r in nums]
    expect(len(set(ids)) == len(ids) and 0 not in ids, 'ids: %r' % ids)


@t.check('numeric arguments: arg2 is the status Apache logged; method and uri are pointers')
def _(d):
    nums = of(d, d['event'])
    expect_eq(sorted(r['arg2'] for r in nums),
              sorted(row[0] for row in client_log(d)), 'statuses')
    # perf prints them as numbers: addresses in the process, not text
    expect(all(isinstance(r[a], int) and r[a] > 4096
               for r in nums for a in ('arg3', 'arg4', 'arg6')),
           'arg3, arg4, arg6 as numbers: %r' % nums[:3])
    expect(all(r['arg5'] > 0 for r in nums), 'elapsed_us (arg5) > 0')


@t.check('the string event: each request\'s method, URI and status, as the client sent and '
         'saw them, and its client address from the record')
def _(d):
    got = collections.Counter((r['status'], r['method'], r['uri']) for r in strings(d))
    expect_eq(got, sent(d), 'status, method, uri')
    # from the record: curl over IPv6, the rest over IPv4
    expect_eq(sorted((r['uri'], r['raddr']) for r in strings(d) if r['raddr'] != '127.0.0.1'),
              [('/static.txt?perf=v6', '::1')], 'clients (raddr) other than 127.0.0.1')


@t.check('both events saw the same hits: same ids, statuses, elapsed times')
def _(d):
    nums = {r['arg1']: (r['arg2'], r['arg5']) for r in of(d, d['event'])}
    strs = {r['id']: (r['status'], r['elapsed_us']) for r in strings(d)}
    expect_eq(strs, nums, 'id: (status, elapsed_us)')


@t.check('perf probe -d and the tracefs "-:" line remove both events')
def _(d):
    expect_eq(d['delete'][0], 0, 'perf probe -d exit status (%s)' % d['delete'][1])
    expect_eq(d['left'], [], 'our events left in uprobe_events')


if __name__ == '__main__':
    t.run(setup, needs=('root', 'apache', 'module', 'curl', 'nghttp', 'perf'))
