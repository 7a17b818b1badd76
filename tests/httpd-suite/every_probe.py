#!/usr/bin/python3
"""every_probe.py: a bpftrace program on every httpd probe a module has.

The probe list comes from the module's own notes (readelf -n), not from a
list written here, so that the program traces every probe the module has
today and every probe added later.  Everything is counted in maps, printed
by bpftrace at exit, so no event is lost however long the run:

  @n[probe]                 firings of each probe
  @s[id], @d[id]            request__start / request__done per request id
  @ns, @nd                  all request starts / dones (more than the ids
                            in @s / @d would mean the map ran out of room)
  @dst[id]                  the status request__done reported for the id
  @ps[pair, key], @pd[pair, key]
                            every other NAME__start / NAME__done pair (conn,
                            proxy, child, ...) per its first argument (the
                            connection id, request id, pid)

The program names the module @MODULE@ (rel.MapTracer puts in the path) and
prints READY in BEGIN.

Licensed under the Apache License, Version 2.0.
"""

import re
import subprocess


def probes(module, readelf='readelf'):
    """{name: number of arguments} of the httpd probes in module's notes."""
    out = subprocess.run([readelf, '-n', module], stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=30, check=True).stdout
    found, prov, name = {}, None, None
    for line in out.splitlines():
        m = re.match(r'\s*Provider:\s*(\S+)', line)
        if m:
            prov, name = m.group(1), None
            continue
        m = re.match(r'\s*Name:\s*(\S+)', line)
        if m:
            name = m.group(1)
            if prov == 'httpd':
                found.setdefault(name, 0)
            continue
        m = re.match(r'\s*Arguments:\s*(.*)$', line)
        if m and prov == 'httpd' and name:
            found[name] = max(found[name], len(m.group(1).split()))
    return found


def pair_of(name, names):
    """'conn' for conn__start when conn__done exists too (and the other way
    round); None for a probe that is not one half of a pair."""
    m = re.match(r'^(\w+)__(start|done)$', name)
    if not m:
        return None
    other = m.group(1) + ('__done' if m.group(2) == 'start' else '__start')
    return m.group(1) if other in names else None


def program(found):
    """The bpftrace program for {name: nargs} (from probes())."""
    out = ['/* every httpd probe of the module, counted in maps: '
           'tests/httpd-suite/every_probe.py */',
           'BEGIN', '{', '\tprintf("READY\\n");', '}', '']
    for name in sorted(found):
        body = ['@n["%s"] = count();' % name]
        if name == 'request__start':
            body += ['@s[arg0] = count();', '@ns = count();']
        elif name == 'request__done':
            body += ['@d[arg0] = count();', '@dst[arg0] = arg1;', '@nd = count();']
        else:
            pair = pair_of(name, found)
            if pair and found[name] >= 1:
                body.append('@p%s["%s", arg0] = count();'
                            % ('s' if name.endswith('__start') else 'd', pair))
        out += ['usdt:@MODULE@:httpd:%s' % name, '{'] + ['\t' + b for b in body] + ['}', '']
    out += ['END', '{', '\tprintf("END\\n");', '}']
    return '\n'.join(out) + '\n'
