#!/usr/bin/python3
"""suite.py: one run of Apache httpd's own regression suite, and its results.

The suite is apache/httpd-tests (the Perl framework Apache::Test) with the
run.sh beside it (/work/shared/tools/httpd-tests in this project: read its
README): run.sh WORKDIR MPM [EXTRA_CONF [TEST...]] runs t/TEST as the user
httptest against Debian's Apache with every module Debian ships loaded, and
writes WORKDIR/test.log and WORKDIR/t/logs/error_log.

  locate()      where the suite is ($USDT_HTTPD_TESTS, else
                $srcdir/../shared/tools/httpd-tests), or why it is not there
  run_suite()   one run, bounded in time; test.log, result.txt and the error
                log are copied out (the next run's "t/TEST -clean" removes
                them), and the time each test file ended is recorded
  parse_log()   the framework's report: per file ok / skipped / failed, and
                for a failed file its failed subtests, from the "Test Summary
                Report"; the Files= and Tests= totals
  error_lines() the error-log lines written while one test file ran

Licensed under the Apache License, Version 2.0.
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get('srcdir') or os.path.join(HERE, '..', '..'))
SUITE_ENV = 'USDT_HTTPD_TESTS'
# the ports the framework listens on: 8529 and the 35 or so after it (its
# vhosts); a server already there would make the run fail for a reason
# that is not the module's
# The framework's first port (t/TEST's default, or -port N): two runs at once
# need ranges of their own, USDT_HTTPD_SUITE_PORT moves this one.
DEFAULT_PORT = 8529
BASE_PORT = int(os.environ.get('USDT_HTTPD_SUITE_PORT') or DEFAULT_PORT)
PORTS = 40


def locate():
    """(suite dir, None) or (None, why it is not usable here)."""
    where = os.environ.get(SUITE_ENV)
    default = os.path.join(SRCDIR, '..', 'shared', 'tools', 'httpd-tests')
    path = os.path.abspath(where or default)
    if not os.path.isfile(os.path.join(path, 'run.sh')):
        return None, ('no httpd-tests suite: %s/run.sh is missing (set %s to the directory '
                      'that holds run.sh and the httpd-tests tarball)'
                      % (path, SUITE_ENV))
    return path, None


def busy_ports(base=BASE_PORT, n=PORTS):
    """The ports of the framework's range that something listens on (loopback)."""
    import socket
    busy = []
    for port in range(base, base + n):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(('127.0.0.1', port)) == 0:
                busy.append(port)
    return busy


# "t/apache/etags.t ........ ok", "... skipped: <reason>", "... Failed 2/9 subtests"
FILE_LINE = re.compile(r'^(t/\S+\.t) \.+ ?(ok|skipped:.*|Failed \d+/\d+ subtests.*|Dubious.*'
                       r'|No subtests run.*)\s*$')
FILE_NAME = re.compile(r'^(t/\S+\.t) \.+ ?')


class Run:
    """One run of run.sh: what it reported and where its files are kept."""

    def __init__(self, name, keep_dir):
        self.name = name
        self.dir = keep_dir
        self.rc = None
        self.secs = None
        self.ended = {}         # test file: wall-clock time its result line appeared
        self.began = None
        self.report = None

    def path(self, rel):
        return os.path.join(self.dir, rel)

    def read(self, rel):
        try:
            with open(self.path(rel), errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def lines(self, rel):
        """The lines of a kept file, one at a time (the suite's error log of
        a whole run is about 600 MB: it logs at trace8)."""
        try:
            with open(self.path(rel), errors='replace') as f:
                for line in f:
                    yield line.rstrip('\n')
        except OSError:
            return


def _watch(log_path, ended, stop):
    """Note the time each test file's result line first shows in test.log
    (the framework writes it as the file ends): the windows error_lines()
    cuts the error log by."""
    while not stop.wait(0.5):
        try:
            with open(log_path, errors='replace') as f:
                text = f.read()
        except OSError:
            continue
        now = time.time()
        for line in text.splitlines():
            # a failed file's name line ends at the dots, its "Failed 4/12
            # subtests" on the next line: the name is what marks its end
            m = FILE_NAME.match(line)
            if m and m.group(1) not in ended:
                ended[m.group(1)] = now


def run_suite(suite, work, mpm, extra_conf, tests, name, keep_dir, timeout):
    """Run run.sh once (as its own process group, killed on timeout, and the
    framework's server stopped with t/TEST -stop); return a Run whose files
    (test.log, result.txt, error_log, access_log) are copied to keep_dir."""
    os.makedirs(keep_dir, exist_ok=True)
    r = Run(name, keep_dir)
    log_path = os.path.join(work, 'test.log')
    port = ['-port', str(BASE_PORT)] if BASE_PORT != DEFAULT_PORT else []
    cmd = ['bash', os.path.join(suite, 'run.sh'), work, mpm, extra_conf or ''] + port + list(tests)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(log_path, r.ended, stop))
    watcher.daemon = True
    r.began = time.time()
    t0 = time.monotonic()
    with open(os.path.join(keep_dir, 'run.out'), 'w') as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env=dict(os.environ, DEBIAN_FRONTEND='noninteractive'))
    watcher.start()
    try:
        r.rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        r.rc = 'timeout after %ds' % timeout
    finally:
        if proc.poll() is None:                 # the test itself is being killed
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        stop.set()
        watcher.join(5)
        _stop_framework_server(work)
    r.secs = time.monotonic() - t0
    for src, dst in (('test.log', 'test.log'), ('result.txt', 'result.txt'),
                     ('t/logs/error_log', 'error_log'), ('t/logs/access_log', 'access_log')):
        try:
            shutil.copyfile(os.path.join(work, src), r.path(dst))
        except OSError:
            pass
    r.report = parse_log(r.read('test.log'))
    # the framework keeps only some directives of EXTRA_CONF (LoadModule
    # among them: Apache::TestConfigParse's "inherit" list): what its
    # generated config loaded is what the run loaded
    try:
        with open(os.path.join(work, 't', 'conf', 'httpd.conf'), errors='replace') as f:
            r.modules = set(re.findall(r'^\s*LoadModule\s+(\w+)', f.read(), re.M))
    except OSError:
        r.modules = set()
    # for a run that went wrong: how its output ended (the files go at the end)
    r.tail = (r.read('test.log') or r.read('run.out')).splitlines()[-30:]
    return r


def _stop_framework_server(work):
    """t/TEST stops its server at the end of a run; after a timeout or a kill
    it may still run (it daemonized, out of our process group): stop the
    one its own pid file names, as the framework does."""
    pidfile = os.path.join(work, 't', 'logs', 'httpd.pid')
    if os.path.exists(pidfile):
        subprocess.run(['runuser', '-u', 'httptest', '--', 't/TEST', '-stop'], cwd=work,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)


# the suite's access log: "%h %l %u %t \"%r\" %>s %b"
ACCESS_STATUS = re.compile(r'" (\d{3}) (?:\d+|-)\s*$')


def logged_statuses(run):
    """({status: requests} of the run's access log, [lines not understood])."""
    import collections
    counts, odd = collections.Counter(), []
    for line in run.lines('access_log'):
        m = ACCESS_STATUS.search(line)
        if m:
            counts[int(m.group(1))] += 1
        else:
            odd.append(line)
    return counts, odd


def _expand(numbers):
    """'3, 7-9' -> {3, 7, 8, 9}"""
    out = set()
    for part in numbers.replace(' ', '').split(','):
        if not part:
            continue
        a, _, b = part.partition('-')
        out.update(range(int(a), int(b or a) + 1))
    return out


def parse_log(text):
    """{'files': {file: status}, 'failed': {file: {'subtests': set, 'wstat', 'tests',
    'other'}}, 'nfiles', 'ntests', 'result', 'summary'} from t/TEST's output.

    status is 'ok', 'skipped: <reason>' or 'failed'.  A failed file's
    subtests come from the Test Summary Report ("Failed tests:  3, 7-9",
    which may go on over several lines); 'other' keeps its other lines
    (a non-zero exit, parse errors such as a wrong plan)."""
    files, failed = {}, {}
    lines = text.splitlines()
    for line in lines:
        m = FILE_LINE.match(line)
        if m:
            st = m.group(2)
            files[m.group(1)] = st if st.startswith(('ok', 'skipped')) else 'failed'
    cur = key = None
    for line in lines[next((i for i, l in enumerate(lines) if l.startswith('Test Summary Report')),
                           len(lines)):]:
        m = re.match(r'^(t/\S+\.t)\s+\(Wstat: (\d+) Tests: (\d+) Failed: (\d+)\)', line)
        if m:
            cur = failed.setdefault(m.group(1), {'subtests': set(), 'wstat': int(m.group(2)),
                                                 'tests': int(m.group(3)), 'other': []})
            files[m.group(1)] = 'failed'
            key = None
            continue
        if cur is None or line.startswith(('Files=', 'Result:')):
            cur = None if line.startswith(('Files=', 'Result:')) else cur
            continue
        m = re.match(r'^\s+Failed tests?:\s+(.*)$', line)
        if m:
            cur['subtests'] |= _expand(m.group(1))
            key = 'subtests'
            continue
        if key == 'subtests' and re.match(r'^\s+[\d, -]+$', line):
            cur['subtests'] |= _expand(line)
            continue
        if line.strip():
            cur['other'].append(line.strip())
            key = None
    m = re.search(r'^Files=(\d+), Tests=(\d+)', text, re.M)
    res = re.search(r'^Result: (\w+)', text, re.M)
    return {'files': files, 'failed': failed,
            'nfiles': int(m.group(1)) if m else None, 'ntests': int(m.group(2)) if m else None,
            'summary': m.group(0) if m else None, 'result': res.group(1) if res else None}


def signature(report, f):
    """What a test file's outcome is, as compared between runs."""
    st = report['files'].get(f, 'not run')
    if f in report['failed']:
        d = report['failed'][f]
        return 'failed subtests %s of %d (wstat %d)%s' % (
            _ranges(d['subtests']), d['tests'], d['wstat'],
            ''.join('; ' + o for o in d['other']))
    return st


def _ranges(nums):
    out, nums = [], sorted(nums)
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else '%d-%d' % (nums[i], nums[j]))
        i = j + 1
    return '{' + ', '.join(out) + '}'


ERRLOG_TIME = re.compile(r'^\[\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2})(\.\d+)? (\d{4})\] '
                         r'\[[\w-]*:(\w+)\]')
# the suite's servers log at trace8; what says something went wrong
WORRYING = ('emerg', 'alert', 'crit', 'error', 'warn')


def error_lines(run, test_file, pad=1.0, limit=40):
    """The error-log lines of run at level warn or worse (the suite logs at
    trace8) stamped while test_file ran: after the file before it ended, up
    to its own end (padded by pad seconds: the result lines are seen every
    0.5 s)."""
    order = sorted(run.ended.items(), key=lambda kv: kv[1])
    end = run.ended.get(test_file)
    if end is None:
        return ['(%s: no result line seen, so no window in the error log)' % test_file]
    prev = [t for f, t in order if t < end]
    start = (prev[-1] if prev else run.began) - pad
    end += pad
    out = []
    for line in run.lines('error_log'):
        m = ERRLOG_TIME.match(line)
        if not m or m.group(4) not in WORRYING:
            continue
        t = time.mktime(time.strptime('%s %s' % (m.group(1), m.group(3)),
                                      '%b %d %H:%M:%S %Y')) + float(m.group(2) or 0)
        if start <= t <= end:
            out.append(line)
    if len(out) > limit:
        out = out[:limit // 2] + ['... %d lines ...' % (len(out) - limit)] + out[-limit // 2:]
    return out or ['(no error-log line of level warn or worse in %s\'s window)' % test_file]
