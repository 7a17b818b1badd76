#!/usr/bin/python3
"""test_manpage.py: doc/mod_usdt.7 documents the whole httpd provider.

The man page is written by hand, but what it documents is written down
elsewhere, once: the probes and their arguments in dtrace/mod_usdt.d, the
records in src/dthttpd.h, the translated types in dtrace/httpd.d.in.  So
this reads those three files and checks, for each thing they define, that
the page has it where a reader looks for it:

  - each probe: a subsection under PROBES named as DTrace names it
    (request-start), holding the provider file's declaration word for word
    (request__start(uint64_t id, ...)) and, for a probe with translated
    arguments, each args[i] with its type;
  - each member of each record: under RECORDS, in the subsection named for
    the record's type (dthttpd_t), a tagged paragraph "type name" whose text
    gives its offset: "offset N" in the fixed area, "offset N (64-bit), M
    (32-bit)" in the pointer area, computed here from the header;
  - each member of each translated type (conninfo_t, httpd_rqinfo_t, ...):
    under TRANSLATORS, in the subsection named for the type, "type name";
  - and the page as lintian reads it: `man --warnings` prints nothing.

What the page has beyond those files (a probe documented before its branch
is merged) is reported as a diagnostic, not a failure.  When a header
changes, `tests/static/test_manpage.py --rows` prints the RECORDS
paragraphs for the current src/dthttpd.h, with each member's header comment
as a first draft of its meaning, to paste and edit.

Environment: srcdir (source top, default this script's ../..), MANPAGE (the
page, default $srcdir/doc/mod_usdt.7).  Needs python3; the warnings check
also needs man (man-db) and skips without it, except with CI=true.
Prints TAP.  Run: srcdir=. tests/static/test_manpage.py [--rows]
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
from harness import Failure, Skip, expect  # noqa: E402

SRCDIR = harness.SRCDIR
PROVIDER = os.path.join(SRCDIR, 'dtrace', 'mod_usdt.d')
HEADER = os.path.join(SRCDIR, 'src', 'dthttpd.h')
DLIB_IN = os.path.join(SRCDIR, 'dtrace', 'httpd.d.in')
MANPAGE = os.environ.get('MANPAGE') or os.path.join(SRCDIR, 'doc', 'mod_usdt.7')

# The byte size of each type src/dthttpd.h may use (gen-layout's list);
# None: a pointer, whose size is the data model's.
FIELD_SIZES = {'uint64_t': 8, 'int32_t': 4, 'uint32_t': 4, 'uint16_t': 2,
               'const char *': None}


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def strip_c_comments(text):
    return re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)


def squash(s):
    """One space between words, none inside "( ... )", before ',' or ')'."""
    s = re.sub(r'\s+', ' ', s).strip()
    s = re.sub(r'\s*([(),:])\s*', r'\1 ', s)
    s = re.sub(r'\( ', '(', s)
    s = re.sub(r' \)', ')', s)
    s = re.sub(r'\*\s+', '*', s)
    return s.strip()


# ---------------------------------------------------------------------------
# What the sources define

def provider_probes(text):
    """[(name, declaration, [(index, type)...])] of the provider file, in order.

    declaration is "name(type arg, ...)" as declared; the list holds the
    translated arguments after ':' (empty for a probe with native ones only).
    """
    probes = []
    body = strip_c_comments(text)
    for m in re.finditer(r'\bprobe\s+(\w+)\s*\(([^)]*)\)\s*(?::\s*\(([^)]*)\))?\s*;', body):
        name, args, xlated = m.group(1), m.group(2), m.group(3)
        decl = squash('%s(%s)' % (name, args))
        xl = []
        if xlated:
            for i, a in enumerate(xlated.split(',')):
                # "conninfo_t *dp": the type without the name
                t = re.sub(r'\s*\b\w+\s*$', '', a.strip())
                xl.append((i, squash(t)))
        probes.append((name, decl, xl))
    return probes


def header_records(text):
    """{type_t: [(type, name, count)...]} of the header's typedef'd structs."""
    records = {}
    for m in re.finditer(r'typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;', text, re.S):
        members = []
        for line in strip_c_comments(m.group(1)).splitlines():
            line = line.strip()
            if not line:
                continue
            f = re.match(r'^(.*?)\s*\b(\w+)\s*(?:\[(\d+)\])?\s*;$', line)
            if not f:
                raise Failure('%s: %s: cannot read member %r' % (HEADER, m.group(2), line))
            typ = re.sub(r'\s+', ' ', f.group(1)).strip()
            if typ not in FIELD_SIZES:
                raise Failure('%s: %s.%s: type %r is not one of %s'
                              % (HEADER, m.group(2), f.group(2), typ, sorted(FIELD_SIZES)))
            members.append((typ, f.group(2), int(f.group(3) or 1)))
        records[m.group(2)] = members
    return records


def header_comments(text):
    """{(record, member): its comment, joined} for --rows' first drafts."""
    out = {}
    for m in re.finditer(r'typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;', text, re.S):
        last = None
        for line in m.group(1).splitlines():
            f = re.match(r'^\s*[^/*][^;]*?\b(\w+)\s*(?:\[\d+\])?\s*;\s*(?:/\*(.*?)(\*/)?\s*)?$', line)
            if f:
                last = f.group(1)
                out[(m.group(2), last)] = (f.group(2) or '').strip()
                continue
            c = re.match(r'^\s*\*\s?(.*?)(\*/)?\s*$', line)
            if c and last:
                out[(m.group(2), last)] += ' ' + c.group(1).strip()
    return out


def offsets(members, fixed_size):
    """[(type, name, count, off64, off32)]: off32 is None in the fixed area."""
    rows = []
    fixed = 0
    ptr_index = 0
    for typ, name, count in members:
        size = FIELD_SIZES[typ]
        if size is None:
            rows.append((typ, name, count, fixed_size + 8 * ptr_index,
                         fixed_size + 4 * ptr_index))
            ptr_index += count
        else:
            if fixed % size:
                raise Failure('%s: %s at %d is not aligned to %d' % (HEADER, name, fixed, size))
            rows.append((typ, name, count, fixed, None))
            fixed += size * count
    if fixed != fixed_size:
        raise Failure('%s: fixed area is %d bytes, want %d' % (HEADER, fixed, fixed_size))
    return rows


def fixed_sizes(text):
    """{record type: its fixed area's size} from the header's *_FIXED_SIZE macros."""
    sizes = {}
    for m in re.finditer(r'#define\s+DTHTTPD(_\w+)?_FIXED_SIZE\s+(\d+)', text):
        suffix = (m.group(1) or '').lower()
        sizes['dthttpd%s_t' % suffix] = int(m.group(2))
    return sizes


def dlib_types(text):
    """{translated type: [(type or None, member)]} of httpd.d.in.

    The members of each typedef'd struct it declares (httpd_rqinfo_t, and
    conninfo_t where a variant defines it), and what each translator
    assigns (so that conninfo_t's members count where net.d declares them).
    """
    types = {}
    body = strip_c_comments(text)
    for m in re.finditer(r'typedef\s+struct\s+\w+\s*\{(.*?)\}\s*(\w+)\s*;', body, re.S):
        members = []
        for line in m.group(1).splitlines():
            f = re.match(r'^\s*(.*?)\s*\b(\w+)\s*;\s*$', line)
            if f:
                members.append((re.sub(r'\s+', ' ', f.group(1)), f.group(2)))
        types[m.group(2)] = members
    for m in re.finditer(r'\btranslator\s+(\w+)\s*<[^>]*>\s*\{(.*?)\};', body, re.S):
        known = {n for _, n in types.setdefault(m.group(1), [])}
        for a in re.finditer(r'^\s*(\w+)\s*=', m.group(2), re.M):
            if a.group(1) not in known:
                types[m.group(1)].append((None, a.group(1)))
                known.add(a.group(1))
    return types


# ---------------------------------------------------------------------------
# The page, read as roff source

def plain(line):
    """A roff source line as the words it prints: escapes and macros dropped."""
    if line.startswith('.\\"') or line.startswith("'\\\""):
        return ''
    if line.startswith('.'):
        m = re.match(r'^\.(\w+)\s*(.*)$', line)
        if not m:
            return ''
        macro, rest = m.groups()
        if macro in ('B', 'I', 'SM', 'TP', 'IP', 'SS', 'SH', 'RS', 'RE', 'PP', 'P', 'LP',
                     'nf', 'fi', 'EX', 'EE', 'TH', 'ad', 'nh', 'br', 'sp', 'in', 'ft', 'UR',
                     'UE', 'MT', 'ME', 'TQ'):
            line = rest if macro in ('B', 'I', 'SM', 'SS', 'SH', 'IP', 'UR', 'MT') else ''
            line = re.sub(r'^"(.*)"(\s+\S+)?$', r'\1', line.strip()) if macro == 'IP' \
                else line.replace('"', '')
        elif macro in ('BR', 'RB', 'BI', 'IB', 'IR', 'RI'):
            words = re.findall(r'"[^"]*"|\S+', rest)
            line = ''.join(w.strip('"') for w in words)
        else:
            return ''
    line = re.sub(r'\\f(\(..|\[[^]]*\]|.)', '', line)
    for esc, ch in (('\\-', '-'), ('\\&', ''), ('\\e', '\\'), ('\\(aq', "'"),
                    ('\\(dq', '"'), ('\\(em', '--'), ('\\(en', '-'), ('\\(mu', 'x'),
                    ('\\(->', '->'), ('\\(bu', '*'), ('\\ ', ' '), ('\\~', ' '),
                    ('\\|', ''), ('\\^', ''), ('\\c', '')):
        line = line.replace(esc, ch)
    return line


def page_sections(src):
    """{SH title: {SS title or '': [source lines]}}."""
    sections = {}
    sh = ss = None
    for line in src.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            sh, ss = m.group(1).strip(), ''
            sections.setdefault(sh, {}).setdefault(ss, [])
            continue
        m = re.match(r'^\.SS\s+"?([^"]*)"?\s*$', line)
        if m and sh is not None:
            ss = plain(m.group(1)).strip()
            sections[sh].setdefault(ss, [])
            continue
        if sh is not None:
            sections[sh][ss].append(line)
    return sections


def tagged(lines):
    """[(tag, text)] of the .TP paragraphs of a subsection, in plain words."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith('.TP'):
            tag = plain(lines[i + 1]) if i + 1 < len(lines) else ''
            j = i + 2
            body = []
            while j < len(lines) and not re.match(r'^\.(TP|SS|SH|PP|P|LP)\b', lines[j]):
                body.append(plain(lines[j]))
                j += 1
            out.append((re.sub(r'\s+', ' ', tag).strip(), re.sub(r'\s+', ' ', ' '.join(body))))
            i = j
        else:
            i += 1
    return out


def block_text(lines):
    return squash(' '.join(plain(l) for l in lines))


# ---------------------------------------------------------------------------
# --rows: the RECORDS paragraphs for the current header

def roff(s):
    return s.replace('\\', '\\e').replace('-', '\\-')


def print_rows():
    text = read(HEADER)
    sizes = fixed_sizes(text)
    comments = header_comments(text)
    for rec, members in header_records(text).items():
        print('.SS %s' % rec)
        for typ, name, count, off64, off32 in offsets(members, sizes[rec]):
            decl = '%s %s%s' % (typ, name, '[%d]' % count if count > 1 else '')
            if typ == 'const char *':
                decl = 'const char *%s%s' % (name, '[%d]' % count if count > 1 else '')
            print('.TP\n.B "%s"' % roff(decl))
            where = ('offset %d (64-bit), %d (32-bit)' % (off64, off32) if off32 is not None
                     else 'offset %d' % off64)
            print('%s.\n%s' % (where, roff(comments.get((rec, name), ''))))


# ---------------------------------------------------------------------------
# The checks

t = harness.Tap()


def setup():
    src = read(MANPAGE)
    return {'src': src, 'sections': page_sections(src), 'provider': read(PROVIDER),
            'header': read(HEADER), 'dlib': read(DLIB_IN)}


def section(d, name):
    s = d['sections'].get(name)
    expect(s is not None, '%s: no ".SH %s"' % (MANPAGE, name))
    return s


@t.check('the page is a section-7 page named for its file, of this version, with the sections it promises')
def _(d):
    base = os.path.basename(MANPAGE)
    name, _, sect = base.rpartition('.')
    m = re.search(r'^\.TH\s+"?([^"\s]+)"?\s+"?(\w+)"?', d['src'], re.M)
    expect(m, 'no .TH line')
    expect(m.group(1).lower() == name.lower() and m.group(2) == sect,
           '.TH %s %s, want %s %s' % (m.group(1), m.group(2), name.upper(), sect))
    ac = os.path.join(SRCDIR, 'configure.ac')
    if os.path.isfile(ac):
        v = re.search(r'AC_INIT\(\[[^]]*\],\s*\[([^]]+)\]', read(ac))
        th = re.search(r'^\.TH\s.*"mod_usdt ([^"]+)"', d['src'], re.M)
        expect(v and th and th.group(1) == v.group(1),
               '.TH says version %s, configure.ac %s'
               % (th and th.group(1), v and v.group(1)))
    want = ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'PROBES', 'SEMANTICS', 'RECORDS',
            'TRANSLATORS', 'STABILITY', 'PLATFORMS', 'FILES', 'EXAMPLES', 'SEE ALSO')
    missing_sh = [w for w in want if w not in d['sections']]
    expect(not missing_sh, 'missing sections: %s' % ', '.join(missing_sh))


@t.check('every probe of dtrace/mod_usdt.d: its DTrace name, declaration and translated arguments')
def _(d):
    probes = provider_probes(d['provider'])
    expect(probes, '%s: no probe found' % PROVIDER)
    sec = section(d, 'PROBES')
    bad = []
    for name, decl, xl in probes:
        dashed = name.replace('__', '-')
        lines = sec.get(dashed)
        if lines is None:
            bad.append('%s: no ".SS %s" under PROBES' % (name, dashed))
            continue
        text = block_text(lines)
        if decl not in text:
            bad.append('%s: the declaration %r is not in its subsection' % (name, decl))
        for i, typ in xl:
            if not re.search(r'args\[%d\] (is )?(an? )?%s' % (i, re.escape(typ)), text):
                bad.append('%s: no "args[%d] %s" in its subsection' % (name, i, typ))
    declared = {n.replace('__', '-') for n, _, _ in probes}
    extra = sorted(set(k for k in sec if k) - declared)
    if extra:
        harness.log('documented, not in %s (from another branch?): %s' % (PROVIDER, ' '.join(extra)))
    expect(not bad, '\n'.join(bad))


@t.check('every member of every record of src/dthttpd.h, with its type and offset')
def _(d):
    text = d['header']
    records = header_records(text)
    sizes = fixed_sizes(text)
    expect(records, '%s: no record found' % HEADER)
    sec = section(d, 'RECORDS')
    bad = []
    for rec, members in records.items():
        expect(rec in sizes, '%s: no fixed-size macro for %s' % (HEADER, rec))
        lines = sec.get(rec)
        if lines is None:
            bad.append('no ".SS %s" under RECORDS' % rec)
            continue
        paras = dict(tagged(lines))
        for typ, name, count, off64, off32 in offsets(members, sizes[rec]):
            arr = '[%d]' % count if count > 1 else ''
            tag = ('const char *%s%s' % (name, arr) if typ == 'const char *'
                   else '%s %s%s' % (typ, name, arr))
            if tag not in paras:
                bad.append('%s: no paragraph tagged "%s"' % (rec, tag))
                continue
            where = ('offset %d (64-bit), %d (32-bit)' % (off64, off32) if off32 is not None
                     else 'offset %d' % off64)
            # "offset 8" must not match "offset 80" nor a pointer's
            # "offset 8 (64-bit), ..."
            if not re.search(r'(?<!\w)%s(?!\d| \()' % re.escape(where), paras[tag]):
                bad.append('%s.%s: want "%s" in %r' % (rec, name, where, paras[tag][:120]))
    extra = sorted(set(k for k in sec if k) - set(records))
    if extra:
        harness.log('records documented, not in %s: %s' % (HEADER, ' '.join(extra)))
    expect(not bad, '\n'.join(bad))


@t.check('every member of every translated type of dtrace/httpd.d.in, with its type')
def _(d):
    types = dlib_types(d['dlib'])
    types = {k: v for k, v in types.items() if not k.startswith('dthttpd')}
    expect(types, '%s: no translated type found' % DLIB_IN)
    sec = section(d, 'TRANSLATORS')
    bad = []
    for typ, members in types.items():
        lines = sec.get(typ)
        if lines is None:
            bad.append('no ".SS %s" under TRANSLATORS' % typ)
            continue
        tags = [tag for tag, _ in tagged(lines)]
        for mtype, name in members:
            ok = any(tag == '%s %s' % (mtype, name) if mtype else tag.endswith(' ' + name)
                     for tag in tags)
            if not ok:
                bad.append('%s: no paragraph tagged "%s %s"' % (typ, mtype or 'TYPE', name))
    expect(not bad, '\n'.join(bad))


@t.check('man --warnings: no warning, as lintian runs it')
def _(d):
    if not shutil.which('man'):
        if harness.IN_CI:
            raise Failure('no man (man-db; tests/deps.sh installs it)')
        raise Skip('no man (man-db)')
    env = dict(os.environ, LC_ALL='C.UTF-8', MANROFFSEQ='', MANWIDTH='80')
    p = subprocess.run(['man', '--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', MANPAGE],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                       universal_newlines=True, timeout=60)
    expect(p.returncode == 0 and not p.stderr.strip(),
           'man exited %d:\n%s' % (p.returncode, p.stderr))


if __name__ == '__main__':
    if sys.argv[1:] == ['--rows']:
        print_rows()
        sys.exit(0)
    if sys.argv[1:]:
        sys.exit('usage: %s [--rows]' % sys.argv[0])
    t.run(setup, needs=(), live=False)
