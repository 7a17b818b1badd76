#!/usr/bin/python3
"""dof_probes.py FILE: the USDT probes a real DTrace's -G put in FILE.

FILE is an ELF object or shared object with a .SUNW_dof section (the DOF
that `dtrace -G` writes and the process's DTrace runtime registers).  Prints
one line per probe, tab-separated:

    provider  probe  nargc  native-types  xargc  translated-types  sites  is-enabled-sites

with the types joined by ", ".  The layout is DOF's (sys/dtrace.h of
illumos, FreeBSD and dtrace-utils alike): dof_hdr_t, then dof_sec_t
entries; a provider section names its string table, probes and argument
sections; each dof_probe_t gives nargc/xargc and the offsets of its type
strings.  Exits 1 with a message if FILE has no DOF or it is malformed.

Licensed under the Apache License, Version 2.0.
"""

import struct
import subprocess
import sys
import tempfile

DOF_SECT_STRTAB = 8
DOF_SECT_PROVIDER = 15
DOF_SECT_PROBES = 16


def fail(msg):
    sys.stderr.write('dof_probes.py: %s\n' % msg)
    sys.exit(1)


def dof_of(path):
    """The bytes of FILE's .SUNW_dof section (objcopy reads any ELF)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = tmp + '/dof'
        r = subprocess.run(['objcopy', '-O', 'binary', '--only-section=.SUNW_dof', path, out],
                           stderr=subprocess.PIPE, universal_newlines=True)
        if r.returncode:
            fail('objcopy %s: %s' % (path, r.stderr.strip()))
        with open(out, 'rb') as f:
            data = f.read()
    if not data:
        fail('%s has no .SUNW_dof section (not built with a real dtrace -G?)' % path)
    return data


def probes(data):
    if data[:4] != b'\x7fDOF':
        fail('the .SUNW_dof section does not start with a DOF header')
    end = {1: '<', 2: '>'}.get(data[5])
    if end is None:
        fail('unknown DOF encoding %d' % data[5])
    _, hdrsize, secsize, secnum, secoff = struct.unpack_from(end + 'IIIIQ', data, 16)
    secs = [struct.unpack_from(end + 'IIIIQQ', data, secoff + i * secsize) for i in range(secnum)]

    def body(i):
        typ, _, _, entsize, off, size = secs[i]
        return typ, entsize, data[off:off + size]

    def string(tab, off):
        return tab[off:tab.index(b'\0', off)].decode()

    def strings(tab, off, n):
        out = []
        for _ in range(n):
            s = string(tab, off)
            out.append(s)
            off += len(s) + 1
        return out

    out = []
    for typ, _, _, _, off, size in secs:
        if typ != DOF_SECT_PROVIDER:
            continue
        strtab, probesec, _, _, name = struct.unpack_from(end + 'IIIII', data, off)
        ttyp, _, tab = body(strtab)
        ptyp, entsize, pbody = body(probesec)
        if ttyp != DOF_SECT_STRTAB or ptyp != DOF_SECT_PROBES or entsize < 48:
            fail('a provider section that does not point to a string table and probes')
        prov = string(tab, name)
        for k in range(len(pbody) // entsize):
            (_, _, pname, nargv, xargv, _, _, nargc, xargc, noffs, _, nenoffs) = \
                struct.unpack_from(end + 'QIIIIIIBBHIH', pbody, k * entsize)
            out.append((prov, string(tab, pname), nargc, ', '.join(strings(tab, nargv, nargc)),
                        xargc, ', '.join(strings(tab, xargv, xargc)), noffs, nenoffs))
    if not out:
        fail('the DOF has no provider with probes')
    return out


def main():
    if len(sys.argv) != 2:
        fail('usage: dof_probes.py FILE')
    for p in probes(dof_of(sys.argv[1])):
        print('\t'.join(str(x) for x in p))


if __name__ == '__main__':
    main()
