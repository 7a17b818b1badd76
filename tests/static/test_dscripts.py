#!/usr/bin/python3
"""test_dscripts.py: the D scripts in examples/, checked without DTrace.

Linux has no D compiler, so this reads examples/*.d as text and checks
what a D compiler would reject or a reader would get wrong: each clause's
probes are the httpd provider's (dtrace/mod_usdt.d), the record is read
only as xlate <conninfo_t *> or xlate <httpd_rqinfo_t *> of
(dthttpd_t *)arg0, the one native argument on every DTrace, for members
those types have in the D library (dtrace/httpd.d.in), with at most two
translated strings per clause (dtrace-utils aborts on more), never args[]
(it needs a probe at compile time, and Oracle Linux and macOS have no
translated USDT arguments) nor arg1..argN; zdefs is on, so a script starts
before Apache does; nothing is kept in self-> variables (wrong
under the event MPM), every printf() has as many arguments as conversions,
options and aggregating functions exist, macro arguments come with
defaultargs.  http-requests.d must print the original mod_usdt's columns:
its format reproduces the original README's sample line, and
examples/http-requests.bt.in uses the same formats.

Run: srcdir=. tests/static/test_dscripts.py       (no root needed; TAP)

Licensed under the Apache License, Version 2.0.
"""

import ast
import glob
import os
import re
import sys
import traceback

SRCDIR = os.path.abspath(os.environ.get('srcdir')
                         or os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
# Each script, and the probes without a record whose native arguments a
# clause may read (how many).  Every script reads a record, the one native
# argument of a probe with a record on DTrace, only as
# xlate <T *>((dthttpd*_t *)arg0), at most two translated strings a clause,
# with zdefs (check_xlate, check_zdefs).
HEADERS = {'request-header': 3, 'response-header': 3}
SCRIPTS = {
    'http-requests.d': {},
    'http-requests-bylatency.d': {},
    'http-log.d': {'natives': HEADERS},
    'http-backends.d': {},
    'http-conns.d': {},
}
OPTIONS = {'quiet', 'defaultargs', 'strsize', 'bufsize', 'aggsize', 'switchrate', 'aggrate',
           'dynvarsize', 'cleanrate', 'flowindent', 'bufpolicy', 'specsize', 'nspec',
           'stackframes', 'ustackframes', 'zdefs', 'rawbytes', 'aggsortkey', 'aggsortrev',
           'aggsortpos', 'aggsortkeypos', 'statusrate', 'temporal'}
AGGS = {'count', 'sum', 'avg', 'min', 'max', 'stddev', 'quantize', 'lquantize', 'llquantize'}
# printf conversions D accepts; '*' widths and precisions take an argument each
CONV = re.compile(r'%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?(?:hh|h|ll|l|L|j|z|t)?'
                  r'([diouxXcsfeEgGpaA@kSY%])')
# the original mod_usdt README's sample of http-requests.d (less the
# README's indent of its code block)
ORIGINAL = [
    '  time    latency  sta            local                 remote        method uri',
    ' 1.216   309850us  404      10.99.99.20:80        10.99.99.254:51067  GET    /hello',
]


class Failure(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Failure(msg)


def read(*rel):
    with open(os.path.join(SRCDIR, *rel)) as f:
        return f.read()


def strip_comments(text):
    """D source without comments, strings kept (a /* inside a string stays)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith('/*', i):
            j = text.find('*/', i + 2)
            expect(j >= 0, 'unterminated comment')
            out.append('\n' * text.count('\n', i, j))     # keep line numbers
            i = j + 2
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = len(text) if j < 0 else j
        elif text[i] == '"':
            j = string_end(text, i)
            out.append(text[i:j])
            i = j
        else:
            out.append(text[i])
            i += 1
    return ''.join(out)


def string_end(text, i):
    """Index after the string literal that starts at text[i] == '"'."""
    j = i + 1
    while j < len(text) and text[j] != '"':
        j += 2 if text[j] == '\\' else 1
    expect(j < len(text), 'unterminated string at %r' % text[i:i + 30])
    return j + 1


def split_args(s):
    """Top-level comma-separated arguments of a call's argument text."""
    args, depth, cur, i = [], 0, [], 0
    while i < len(s):
        c = s[i]
        if c == '"':
            j = string_end(s, i)
            cur.append(s[i:j])
            i = j
            continue
        if c in '([':
            depth += 1
        elif c in ')]':
            depth -= 1
        if c == ',' and depth == 0:
            args.append(''.join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    args.append(''.join(cur).strip())
    return args


def calls(code, name):
    """The argument texts of every call name(...) in code."""
    out = []
    for m in re.finditer(r'\b%s\s*\(' % name, code):
        i, depth = m.end(), 1
        while depth:
            expect(i < len(code), 'unbalanced parentheses after %s(' % name)
            if code[i] == '"':
                i = string_end(code, i)
                continue
            depth += {'(': 1, ')': -1}.get(code[i], 0)
            i += 1
        out.append(code[m.end():i - 1])
    return out


def clauses(code):
    """[(probe descriptions, predicate or None, body)] of a program without
    comments and pragmas."""
    out, i = [], 0
    while True:
        while i < len(code) and code[i].isspace():
            i += 1
        if i >= len(code):
            return out
        j = i
        while j < len(code) and code[j] not in '/{':
            j += 1
        expect(j < len(code), 'a probe description without a body: %r' % code[i:i + 40])
        probes = [p.strip() for p in code[i:j].split(',')]
        pred = None
        if code[j] == '/':
            k, depth = j + 1, 0
            while k < len(code) and not (code[k] == '/' and depth == 0):
                depth += {'(': 1, ')': -1}.get(code[k], 0)
                k += 1
            pred = code[j + 1:k]
            j = code.index('{', k)
        k, depth = j, 0
        while True:
            expect(k < len(code), 'unbalanced braces in the clause of %s' % probes)
            if code[k] == '"':
                k = string_end(code, k)
                continue
            depth += {'{': 1, '}': -1}.get(code[k], 0)
            k += 1
            if depth == 0:
                break
        out.append((probes, pred, code[j + 1:k - 1]))
        i = k


def provider_probes():
    """Probe names of the httpd provider, as D spells them (request-done)."""
    return {n.replace('__', '-') for n in re.findall(r'\bprobe\s+(\w+)\s*\(', read('dtrace', 'mod_usdt.d'))}


def library_members():
    """Members of conninfo_t (what httpd.d's translator fills) and of httpd_rqinfo_t."""
    lib = strip_comments(read('dtrace', 'httpd.d.in'))
    m = re.search(r'translator\s+conninfo_t\s*<[^>]*>\s*\{(.*?)\};', lib, re.S)
    expect(m, 'no conninfo_t translator in dtrace/httpd.d.in')
    ci = set(re.findall(r'^\s*(\w+)\s*=', m.group(1), re.M))
    m = re.search(r'typedef\s+struct\s+httpd_rqinfo\s*\{(.*?)\}\s*httpd_rqinfo_t\s*;', lib, re.S)
    expect(m, 'no httpd_rqinfo_t in dtrace/httpd.d.in')
    rq = set(re.findall(r'(\w+)\s*;', m.group(1)))
    return ci, rq


def program(name):
    text = read('examples', name)
    code = strip_comments(text)
    pragmas = re.findall(r'^#pragma\s+D\s+option\s+(\w+)', code, re.M)
    code = re.sub(r'^#.*$', '', code, flags=re.M)
    return text, code, pragmas


def check_header(name):
    text, _, pragmas = program(name)
    lines = text.splitlines()
    expect(lines[0] == '#!/usr/sbin/dtrace -s', 'first line %r' % lines[0])
    expect(re.match(r'^ \* %s  \S' % re.escape(name), lines[2]), 'name and purpose: %r' % lines[2])
    for what in ('USAGE: dtrace -s %s' % name, 'Example of usage', 'Licensed under',
                 'Created this'):
        expect(what in text, 'the header has no %r' % what)
    expect('quiet' in pragmas, 'no #pragma D option quiet')


def check_options(name):
    _, _, pragmas = program(name)
    unknown = [p for p in pragmas if p not in OPTIONS]
    expect(not unknown, 'unknown D options: %r' % unknown)


def check_probes(name):
    _, code, _ = program(name)
    known = provider_probes()
    expect({'request-start', 'request-done'} <= known, 'provider probes: %r' % known)
    httpd = 0
    for probes, _, _ in clauses(code):
        for p in probes:
            if p in ('BEGIN', 'END', 'ERROR'):
                continue
            parts = p.split(':')
            expect(len(parts) == 4, '%r: not provider:module:function:name' % p)
            expect(re.match(r'^httpd(\*|\$target|\$\d+)?$', parts[0]), '%r: not the httpd provider' % p)
            expect(parts[3] in known, '%r: the provider has no probe %r' % (p, parts[3]))
            httpd += 1
    expect(httpd, 'no httpd probe at all')


# the record types and what the D library translates each to
XLATES = {'dthttpd_t': ('conninfo_t', 'httpd_rqinfo_t'),
          'dthttpd_conn_t': ('conninfo_t', 'httpd_conninfo_t'),
          'dthttpd_proxy_t': ('conninfo_t', 'httpd_proxyinfo_t')}
XLATE = re.compile(r'\bxlate\s*<\s*(\w+)\s*\*\s*>\s*\(\s*\(\s*(\w+)\s*\*\s*\)\s*arg0\s*\)'
                   r'\s*->\s*(\w+)')


def probe_records():
    """{probe name as D spells it: its record type, or None}, from mod_usdt.d."""
    out = {}
    for name, params in re.findall(r'\bprobe\s+(\w+)\s*\(([^)]*)\)', read('dtrace', 'mod_usdt.d')):
        last = params.split(',')[-1]
        m = re.match(r'^\s*(dthttpd\w*_t)\s*\*', last)
        out[name.replace('__', '-')] = m.group(1) if m else None
    return out


def typed_members():
    """{D type: (members, string members)} of the D library's translated types."""
    lib = strip_comments(read('dtrace', 'httpd.d.in'))
    ci, _ = library_members()
    out = {'conninfo_t': (ci, {'ci_local', 'ci_remote', 'ci_protocol'})}
    for t in ('httpd_rqinfo', 'httpd_conninfo', 'httpd_proxyinfo'):
        m = re.search(r'typedef\s+struct\s+%s\s*\{(.*?)\}\s*%s_t\s*;' % (t, t), lib, re.S)
        expect(m, 'no %s_t in dtrace/httpd.d.in' % t)
        out[t + '_t'] = (set(re.findall(r'(\w+)\s*;', m.group(1))),
                         set(re.findall(r'\bstring\s+(\w+)\s*;', m.group(1))))
    return out


def check_xlate(name):
    _, code, _ = program(name)
    records, types = probe_records(), typed_members()
    natives = SCRIPTS[name].get('natives', {})
    expect(XLATE.search(code), 'no xlate <T *>((dthttpd*_t *)arg0)->member at all')
    expect(not re.search(r'\bargs\s*\[', code), 'args[]: needs a matching probe when the script is '
           'compiled, and Oracle Linux and macOS have none for USDT: use xlate of arg0')
    for probes, pred, body in clauses(code):
        text = (pred or '') + body
        names = [p.split(':')[3] for p in probes if p not in ('BEGIN', 'END', 'ERROR')]
        strings = 0
        for typ, rec, member in XLATE.findall(text):
            expect(rec in XLATES and typ in XLATES[rec], 'xlate <%s *>((%s *)arg0): the library '
                   'translates %s to %s' % (typ, rec, rec, XLATES.get(rec)))
            for p in names:
                expect(records.get(p) == rec, '%s: (%s *)arg0, but its record is %s'
                       % (p, rec, records.get(p)))
            have, strs = types[typ]
            expect(member in have, 'xlate <%s *>(...)->%s: %s has %s' % (typ, member, typ, sorted(have)))
            strings += member in strs
        expect(strings <= 2, '%s: %d translated strings in one clause; dtrace-utils aborts on more '
               'than two (dt_cg_tstring_xalloc)' % (probes, strings))
        for n in re.findall(r'\barg(\d+)\b', XLATE.sub('', text)):
            expect(names and all(int(n) < natives.get(p, 0) for p in names),
                   '%s: native arg%s: on DTrace a probe with a record has one native argument, '
                   'arg0, the record, read through xlate' % (probes, n))


def check_zdefs(name):
    _, _, pragmas = program(name)
    expect('zdefs' in pragmas, 'no #pragma D option zdefs: the script fails when no Apache runs')


def check_no_self(name):
    _, code, _ = program(name)
    expect('self->' not in code, 'self-> variables: under the event MPM request-done can run '
           'on another thread than request-start')


def check_printf(name):
    _, code, _ = program(name)
    for args in calls(code, 'printf'):
        a = split_args(args)
        expect(a[0].startswith('"') and a[0].endswith('"'), 'printf format not a string: %r' % a[0])
        need = 0
        for m in CONV.finditer(a[0]):
            if m.group(4) == '%':
                continue
            need += 1 + (m.group(2) == '*') + (m.group(3) == '*')
        expect(need == len(a) - 1, 'printf(%s): %d conversions, %d arguments' % (args.strip(), need,
                                                                                 len(a) - 1))


def check_aggregations(name):
    _, code, _ = program(name)
    for fn in re.findall(r'@\w*(?:\[[^\]]*\])?\s*=\s*(\w+)\s*\(', code):
        expect(fn in AGGS, 'aggregating function %s()' % fn)


def check_macro_args(name):
    _, code, pragmas = program(name)
    if re.search(r'\$\d', code):
        expect('defaultargs' in pragmas, '$N used without #pragma D option defaultargs')


def formats(code):
    return [split_args(a)[0] for a in calls(code, 'printf')]


def check_original_columns():
    _, code, _ = program('http-requests.d')
    fmts = formats(code)
    expect(len(fmts) == 2, 'printf formats: %r' % fmts)
    # D's and Python's escapes and conversions agree on these formats
    head, line = (ast.literal_eval(f) for f in fmts)
    got_head = head % ('time', 'latency', 'sta', 'local', '', 'remote', '', 'method', 'uri')
    got_line = line % (1, 216, 309850, 404, '10.99.99.20', 80, '10.99.99.254', 51067, 'GET',
                       '/hello')
    expect([got_head.rstrip('\n'), got_line.rstrip('\n')] == ORIGINAL,
           'the formats print\n%s%sthe original printed\n%s' % (got_head, got_line,
                                                               '\n'.join(ORIGINAL)))
    bt = strip_comments(read('examples', 'http-requests.bt.in'))
    bt_fmts = formats(bt)
    for f in fmts:
        expect(f in bt_fmts, 'http-requests.bt.in does not print %s' % f)


def check_bylatency():
    _, code, _ = program('http-requests-bylatency.d')
    expect(re.search(r'=\s*quantize\s*\(\s*xlate\s*<\s*httpd_rqinfo_t\s*\*\s*>\s*\(\s*\(\s*dthttpd_t\s*\*\s*\)'
                     r'\s*arg0\s*\)\s*->\s*rq_elapsed_us\s*\)', code),
           'no quantize(xlate <httpd_rqinfo_t *>((dthttpd_t *)arg0)->rq_elapsed_us)')


def main():
    checks = []
    present = sorted(os.path.basename(p) for p in glob.glob(os.path.join(SRCDIR, 'examples', '*.d')))
    checks.append(('examples/ has the D scripts %s' % ', '.join(SCRIPTS),
                   lambda: expect(present == sorted(SCRIPTS), 'examples/*.d: %r' % present)))
    for name in SCRIPTS:
        record = (('xlate <T *>((dthttpd*_t *)arg0) only, of each probe\'s record type, for '
                   'members T has, two strings a clause at most; natives only of the header '
                   'probes', check_xlate),
                  ('zdefs: starts before Apache', check_zdefs))
        for what, fn in (('header: #!/usr/sbin/dtrace -s, name, USAGE, example, quiet', check_header),
                         ('probes: only the httpd provider\'s (dtrace/mod_usdt.d)', check_probes)) + \
                record + (
                         ('no self-> variables (event MPM)', check_no_self),
                         ('printf: as many arguments as conversions', check_printf),
                         ('known D options', check_options),
                         ('known aggregating functions', check_aggregations),
                         ('$N with defaultargs', check_macro_args)):
            checks.append(('%s: %s' % (name, what), lambda fn=fn, name=name: fn(name)))
    checks.append(('http-requests.d prints the original\'s columns, as http-requests.bt does',
                   check_original_columns))
    checks.append(('http-requests-bylatency.d: a quantize() of rq_elapsed_us', check_bylatency))

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


if __name__ == '__main__':
    sys.exit(main())
