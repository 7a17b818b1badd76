#!/usr/bin/python3
"""test_bttools.py: the bpftrace tools in examples/, checked without tracing.

Each tool is built from examples/NAME.bt.in: the line @DTHTTPD_STRUCT@
becomes the record struct that dtrace/gen-layout prints from src/dthttpd.h
(the one place the layout is written down), @MODULE_PATH@ the installed
module.  This checks the built tools against that (no hand-copied struct,
nothing else changed), their attach points against the provider, their
headers and BEGIN/END, and their /bin/sh preamble with a stand-in bpftrace:
-h prints the header, USDT_MODULE swaps the module path in the attach points
only, a missing module stops before bpftrace runs.  The tools' output is
checked live in tests/tools/.

Run: srcdir=.. builddir=. tests/static/test_bttools.py    (no root needed; TAP)

Licensed under the Apache License, Version 2.0.
"""

import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

SRCDIR = os.path.abspath(os.environ.get('srcdir')
                         or os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
BUILDDIR = os.path.abspath(os.environ.get('builddir') or SRCDIR)
TOOLS = ['http-requests.bt', 'http-latency.bt', 'http-top.bt', 'http-slow.bt', 'http-log.bt',
         'http-phases.bt', 'http-backends.bt', 'http-conns.bt']
ATTACH = re.compile(r'^usdt:([^:]+):httpd:(\w+)$', re.M)

# Lines a tool adds to the shared preamble, right after the -h line.
# http-top.bt: bpftrace cannot tell whether stdout is a terminal, so the
# shell picks SCREEN (its third parameter) unless the user gave it.
OWN_PREAMBLE = {
    'http-top.bt': ['//bin/true; [ $# -ge 3 ] || ! [ -t 1 ] || set -- "${1:-5}" "${2:-0}" 1'],
}

# A stand-in for bpftrace: records its environment and arguments (NUL-separated).
FAKE_BPFTRACE = '''#!/bin/sh
{ printf 'BPFTRACE_STRLEN=%s\\0' "${BPFTRACE_STRLEN-}"; printf '%s\\0' "$@"; } > "$FAKE_OUT"
'''


class Failure(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def read(path):
    with open(path) as f:
        return f.read()


def gen_layout(mode):
    return subprocess.run(['sh', os.path.join(SRCDIR, 'dtrace', 'gen-layout'), mode,
                           os.path.join(SRCDIR, 'src', 'dthttpd.h')], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout


def source(name):
    return read(os.path.join(SRCDIR, 'examples', name + '.in'))


def built(name):
    path = os.path.join(BUILDDIR, 'examples', name)
    expect(os.path.isfile(path), '%s is not built (make)' % path)
    return path


def module_path(name):
    paths = {p for p, _ in ATTACH.findall(read(built(name)))}
    expect(len(paths) == 1, '%s attaches to %r, want one module path' % (name, paths))
    return paths.pop()


def code_of(text):
    """The program without comments and string literals."""
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    text = re.sub(r'//[^\n]*', '', text)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)


def check_layout():
    members = gen_layout('members')
    struct = gen_layout('bpftrace')
    for rec, macro in (('dthttpd', 'MEMBER'), ('dthttpd_conn', 'MEMBER_CONN'),
                       ('dthttpd_proxy', 'MEMBER_PROXY')):
        want = re.findall(r'^%s\((\w+)\)$' % macro, members, re.M)
        body = re.findall(r'^struct %s \{\n(.*?)^\};$' % rec, struct, re.M | re.S)
        expect(len(body) == 1, 'gen-layout bpftrace: %d "struct %s {"' % (len(body), rec))
        got = re.findall(r'^\t[\w ]+?\*?(\w+)(?:\[\d+\])?;$', body[0], re.M)
        expect(got == want, 'gen-layout bpftrace: struct %s members %r, the header has %r'
               % (rec, got, want))


def check_generated(name):
    src, text = source(name), read(built(name))
    expect('struct dthttpd {' not in src, 'the .in defines struct dthttpd itself: a hand copy')
    uses = bool(re.search(r'\(struct dthttpd(_conn|_proxy)? \*\)', src))
    expect(uses == ('\n@DTHTTPD_STRUCT@\n' in src),
           'uses a record struct %s, has the @DTHTTPD_STRUCT@ line %s'
           % (uses, '\n@DTHTTPD_STRUCT@\n' in src))
    path = module_path(name)
    want = src.replace('\n@DTHTTPD_STRUCT@\n', '\n' + gen_layout('bpftrace')).replace(
        '@MODULE_PATH@', path)
    expect(text == want, 'not the .in with the generated struct and the module path:\n%s' % '\n'.join(
        '%d: %r != %r' % (i + 1, a, b) for i, (a, b) in
        enumerate(zip(text.splitlines(), want.splitlines())) if a != b)[:2000])
    expect(os.path.isabs(path) and path.endswith('/mod_usdt.so'), 'module path %r' % path)
    expect(os.access(built(name), os.X_OK), 'not executable')


def check_attach(name):
    provider = read(os.path.join(SRCDIR, 'dtrace', 'mod_usdt.d'))
    probes = set(re.findall(r'\bprobe\s+(\w+)\s*\(', provider))
    points = ATTACH.findall(source(name))
    expect(points, 'no usdt attach point')
    for path, probe in points:
        expect(path == '@MODULE_PATH@', 'attach point on %r, not @MODULE_PATH@' % path)
        expect(probe in probes, 'httpd:%s: the provider has %r' % (probe, sorted(probes)))
    others = [l for l in code_of(source(name)).splitlines()
              if re.match(r'^\w+:', l) and not l.startswith(('usdt:', 'interval:s:'))]
    expect(not others, 'other probes: %r' % others)


def preamble(text):
    return [l for l in text.splitlines() if l.startswith('//bin/true;')]


def check_header(name):
    text = source(name)
    lines = text.splitlines()
    expect(lines[0] == '#!/bin/sh', 'first line %r: the /bin/sh preamble starts the tool' % lines[0])
    pre = preamble(text)
    own = OWN_PREAMBLE.get(name, [])
    n = 4 + len(own)
    expect(lines[1:1 + len(pre)] == pre and len(pre) == n, 'the preamble: lines 2-%d' % (n + 1))
    expect(pre[1:1 + len(own)] == own, 'the tool\'s own preamble lines, after -h\'s: %r' % own)
    ref = [re.sub(r'BPFTRACE_STRLEN:-\d+', 'N', l) for l in preamble(source(TOOLS[0]))]
    expect([re.sub(r'BPFTRACE_STRLEN:-\d+', 'N', l) for l in pre[:1] + pre[1 + len(own):]] == ref,
           'the preamble differs from %s\'s (but for the string length)' % TOOLS[0])
    expect(lines[n + 1] == '/*' and re.match(r'^ \* %s  \S' % re.escape(name), lines[n + 2]),
           'after the preamble, "/*" and " * %s  purpose": %r' % (name, lines[n + 1:n + 3]))
    for what in ('USAGE: %s' % name, 'Example of usage:', 'Hit Ctrl-C to end.',
                 'USDT_MODULE=', '@MODULE_PATH@', 'Licensed under', 'Created this.'):
        expect(what in text, 'the header has no %r' % what)
    # the sample's command line, as it was run: "bpftrace NAME ..." or the
    # tool run directly ("USDT_MODULE=... .../NAME ...")
    expect(re.search(r'^ \* # (bpftrace |\S*=\S* )?\S*\b%s\b' % re.escape(name), text, re.M),
           'the header has no sample command line "# ... %s"' % name)


def usage_params(name):
    m = re.search(r'^ \* USAGE: %s(.*)$' % re.escape(name), source(name), re.M)
    return re.findall(r'[A-Z]+', m.group(1))


def check_params(name):
    code = code_of(source(name).split('*/', 1)[1])
    used = {int(n) for n in re.findall(r'\$(\d+)', code)}
    params = usage_params(name)
    expect(used <= set(range(1, len(params) + 1)),
           'uses $%s, USAGE names %r' % (sorted(used), params))
    if 'PID' in params:
        n = params.index('PID') + 1
        expect('curtask->real_parent->tgid == $%d' % n in code and 'pid == $%d' % n in code,
               'PID ($%d): no filter on the parent\'s and the own pid' % n)


def check_begin_end(name):
    body = read(built(name)).split('\n */\n', 1)[1]
    m = re.search(r'^BEGIN\n\{\n(.*?)\n\}$', body, re.M | re.S)
    expect(m and 'Hit Ctrl-C to end.' in m.group(1) and 'Tracing Apache' in m.group(1),
           'BEGIN does not say what it traces and how to stop')
    code = code_of(body)
    maps = set(re.findall(r'@\w+', code))
    if not maps:
        return
    m = re.search(r'^END\n\{\n(.*?)\n\}$', code, re.M | re.S)
    expect(m, 'maps %r and no END' % sorted(maps))
    cleared = set(re.findall(r'\b(?:clear|delete)\((@\w+)', m.group(1)))
    expect(maps <= cleared, 'END leaves %r to print at exit' % sorted(maps - cleared))


def run_tool(name, args, env_extra, tmp, tty=False):
    """Run the built tool through /bin/sh with the stand-in bpftrace first in
    PATH; with tty, its stdout is a terminal (a pty)."""
    out = os.path.join(tmp, 'out')
    if os.path.exists(out):
        os.unlink(out)
    env = dict(os.environ, PATH=tmp + os.pathsep + os.environ.get('PATH', '/usr/bin:/bin'),
               FAKE_OUT=out)
    env.pop('BPFTRACE_STRLEN', None)
    env.pop('USDT_MODULE', None)
    env.update(env_extra)
    if tty:
        master, slave = pty.openpty()
        try:
            p = subprocess.run(['sh', built(name)] + args, stdout=slave, stderr=subprocess.PIPE,
                               universal_newlines=True, env=env, timeout=30)
        finally:
            os.close(slave)
            os.close(master)
    else:
        p = subprocess.run(['sh', built(name)] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=30)
    called = None
    if os.path.exists(out):
        with open(out) as f:
            called = f.read().split('\0')[:-1]
    return p, called


def check_help(name, tmp):
    p, called = run_tool(name, ['-h'], {}, tmp)
    expect(p.returncode == 0 and called is None, '-h: exit %d, bpftrace %s' % (
        p.returncode, 'run' if called else 'not run'))
    expect(p.stdout.startswith('\n%s  ' % name) and 'USAGE: %s' % name in p.stdout,
           '-h printed:\n' + p.stdout[:500])
    expect(' * ' not in p.stdout and '*/' not in p.stdout, '-h leaves comment marks:\n' + p.stdout)


def check_default_run(name, tmp):
    p, called = run_tool(name, ['7'], {}, tmp)
    expect(called is not None, 'bpftrace not run: %s' % p.stderr)
    expect(called[1:] == [built(name), '7'], 'bpftrace %r, want the tool and its arguments'
           % called[1:])
    expect(re.match(r'^BPFTRACE_STRLEN=\d+$', called[0]), 'no default string length: %r' % called[0])


def check_module_override(name, tmp):
    mod = os.path.join(tmp, 'build dir', 'mod_usdt.so')
    os.makedirs(os.path.dirname(mod), exist_ok=True)
    open(mod, 'w').close()
    rel = os.path.relpath(mod)
    p, called = run_tool(name, ['7', '8'], {'USDT_MODULE': rel, 'BPFTRACE_STRLEN': '64'}, tmp)
    expect(called is not None, 'bpftrace not run: %s' % p.stderr)
    expect(called[0] == 'BPFTRACE_STRLEN=64', 'the user\'s string length lost: %r' % called[0])
    expect(called[1] == '-e' and called[3:] == ['7', '8'], 'bpftrace %r' % (called[1:2] + called[3:]))
    prog = called[2]
    text = read(built(name))
    want = ATTACH.sub(lambda m: 'usdt:"%s":httpd:%s' % (os.path.realpath(mod), m.group(2)), text)
    # (the shell's $(...) drops the final newline)
    expect(prog == want.rstrip('\n'), 'the program given to bpftrace is not the tool with the module swapped:\n'
           + '\n'.join(l for l in prog.splitlines() if l.startswith('usdt')))

    p, called = run_tool(name, [], {'USDT_MODULE': os.path.join(tmp, 'nothing', 'mod_usdt.so')},
                         tmp)
    expect(p.returncode != 0 and called is None and 'nothing/mod_usdt.so' in p.stderr,
           'a missing module: exit %d, bpftrace %s, stderr %r'
           % (p.returncode, 'run' if called else 'not run', p.stderr))


def check_screen(name, tmp):
    """http-top.bt run directly: SCREEN 1 when stdout is a terminal, unless given."""
    cases = [([], True, ['5', '0', '1']), (['2', '123'], True, ['2', '123', '1']),
             (['2', '0', '0'], True, ['2', '0', '0']), ([], False, []),
             (['2', '123'], False, ['2', '123'])]
    for args, tty, want in cases:
        p, called = run_tool(name, args, {}, tmp, tty=tty)
        expect(called is not None, 'bpftrace not run: %s' % p.stderr)
        expect(called[1:] == [built(name)] + want, '%s, stdout %s: bpftrace %r, want %r' % (
            args, 'a terminal' if tty else 'a pipe', called[1:], [built(name)] + want))


def main():
    tmp = tempfile.mkdtemp(prefix='usdt-bttools-')
    try:
        with open(os.path.join(tmp, 'bpftrace'), 'w') as f:
            f.write(FAKE_BPFTRACE)
        os.chmod(os.path.join(tmp, 'bpftrace'), 0o755)
        checks = [('gen-layout bpftrace prints the three record structs with src/dthttpd.h\'s members',
                   check_layout)]
        for name in TOOLS:
            for what, fn in (
                    ('built from the .in: gen-layout\'s struct (no hand copy), the module path',
                     check_generated),
                    ('attach points: the provider\'s probes, on @MODULE_PATH@', check_attach),
                    ('header: /bin/sh preamble, name, USAGE, example, override, license',
                     check_header),
                    ('positional parameters: those USAGE names; PID filters', check_params),
                    ('BEGIN says what and how to stop; END clears every map', check_begin_end)):
                checks.append(('%s: %s' % (name, what), lambda fn=fn, name=name: fn(name)))
            for what, fn in (
                    ('-h prints the header, not bpftrace', check_help),
                    ('run directly: bpftrace TOOL ARGS, with a string length', check_default_run),
                    ('USDT_MODULE: the attach points on that file, nothing else changed; a '
                     'missing file stops it', check_module_override)):
                checks.append(('%s: %s' % (name, what),
                               lambda fn=fn, name=name: fn(name, tmp)))
        checks.append(('http-top.bt: run directly, SCREEN 1 on a terminal, 0 on a pipe, '
                       'as given if given', lambda: check_screen('http-top.bt', tmp)))
        print('1..%d' % len(checks))
        failed = 0
        for i, (name, fn) in enumerate(checks, 1):
            try:
                fn()
                print('ok %d - %s' % (i, name))
            except Exception as e:
                failed += 1
                print('not ok %d - %s' % (i, name))
                msg = str(e) if isinstance(e, Failure) else traceback.format_exc()
                for l in msg.splitlines():
                    print('# ' + l)
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
