#!/usr/bin/python3
"""test_security.py: what the module can do inside the server, and how it is built.

From the built module alone (no root; also in make distcheck):
  - it imports no function that opens a socket, resolves a name, starts a
    process, opens a file, loads code or changes credentials, and no raw
    syscall();
  - the only Apache hooks it registers are pre_config, post_config,
    child_init, pre_connection, post_read_request, insert_filter and
    log_transaction: no handler, no input filter, no hook that could answer
    a request; its one output filter (the timeline of request-done,
    inserted only while that probe is traced) may not write a response
    (ap_rwrite and friends are forbidden imports) and passes every brigade
    on as it came (the live tests compare the bodies clients receive);
  - its module structure has no directive table and no configuration
    creators (the fields are 0 in the file and nothing relocates them);
  - it is hardened: full RELRO (GNU_RELRO and BIND_NOW), a stack that is
    not executable, no text relocations, the stack protector in use, and,
    where devscripts' hardening-check is installed, a clean report from it
    (control-flow protection aside: Apache is not built with it).
From a live server (root; skipped with USDT_LIVE_TESTS=no, and without root
outside CI):
  - mod_info, asked about mod_usdt.c, reports no content handler, no
    configuration phase, no directive, and only Pre-Connection, Post-Read
    Request, Insert Filters and Transaction Logging among the request
    phases.

Run: USDT_MODULE=src/.libs/mod_usdt.so srcdir=. tests/reliability/test_security.py
Prints TAP.
"""

import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rel  # noqa: E402
from rel import harness, expect, expect_eq, log  # noqa: E402

MODULE = harness.MODULE
READELF = os.environ.get('READELF') or 'readelf'

FORBIDDEN = re.compile(
    r'^(socket|socketpair|connect|bind|listen|accept4?|send|sendto|sendmsg|sendmmsg|recv|'
    r'recvfrom|recvmsg|recvmmsg|getaddrinfo|gethostbyname\w*|getnameinfo|'
    r'apr_socket_\w+|apr_sockaddr_info_get|apr_proc_\w+|apr_file_open\w*|apr_dso_\w+|'
    r'apr_thread_create|pthread_create|'
    r'open|open64|openat|openat64|creat|creat64|fopen|fopen64|freopen|'
    r'fork|vfork|clone|execl|execlp|execle|execv|execve|execvp|execvpe|fexecve|system|popen|'
    r'posix_spawnp?|dlopen|dlmopen|ptrace|syscall|'
    r'setuid|setgid|seteuid|setegid|setreuid|setregid|setresuid|setresgid|'
    r'mmap|mmap64|mprotect|'
    r'ap_hook_handler|ap_hook_quick_handler|ap_register_input_filter\w*|'
    r'ap_add_input_filter\w*|ap_rwrite|ap_rputs|ap_rprintf|ap_rvputs|'
    r'ap_set_content_type|ap_send_error_response)(@.*)?$')
ALLOWED_HOOKS = {'ap_hook_pre_config', 'ap_hook_post_config', 'ap_hook_child_init',
                 'ap_hook_pre_connection', 'ap_hook_post_read_request', 'ap_hook_insert_filter',
                 'ap_hook_log_transaction'}

t = harness.Tap()


def readelf(*args):
    p = subprocess.run([READELF] + list(args) + [MODULE], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    if p.returncode != 0:
        raise harness.Failure('readelf %s: %s' % (' '.join(args), p.stdout))
    return p.stdout


def imports():
    names = set()
    for line in readelf('--dyn-syms', '-W').splitlines():
        f = line.split()
        if len(f) >= 8 and f[6] == 'UND' and f[7] != '':
            names.add(f[7].split('@')[0])
    return names


@t.check('the module imports nothing that opens a socket or file, starts a process, loads '
         'code, changes credentials or answers a request')
def _(d):
    names = imports()
    log('imports: ' + ' '.join(sorted(names)))
    bad = sorted(n for n in names if FORBIDDEN.match(n))
    expect(not bad, 'forbidden imports: %r' % bad)


@t.check('its only hooks are pre_config, post_config, child_init, pre_connection, '
         'post_read_request, insert_filter and log_transaction')
def _(d):
    hooks = {n for n in imports() if n.startswith('ap_hook_')}
    expect_eq(hooks, ALLOWED_HOOKS, 'ap_hook_* imports')


MODULE_FIELDS = ('version', 'minor_version', 'module_index', 'name', 'dynamic_load_handle',
                 'next', 'magic', 'rewrite_args', 'create_dir_config', 'merge_dir_config',
                 'create_server_config', 'merge_server_config', 'cmds', 'register_hooks',
                 'flags')


def field_offsets(ptr):
    """Offsets of Apache 2.4's module_struct fields (include/http_config.h)."""
    offs, off = {}, 0
    for name in MODULE_FIELDS:
        size = 4 if name in ('version', 'minor_version', 'module_index', 'flags') else ptr
        off = (off + size - 1) // size * size
        offs[name] = off
        off += size
    return offs


@t.check('its module structure has no directive table and no configuration creators')
def _(d):
    head = readelf('-hW')
    ptr = 8 if 'ELF64' in head else 4
    sym = None
    for line in readelf('-sW', '--dyn-syms').splitlines():
        f = line.split()
        if len(f) >= 8 and f[7] == 'usdt_module' and f[3] == 'OBJECT':
            sym = (int(f[1], 16), int(f[2], 0))
    expect(sym, 'no usdt_module symbol')
    base, size = sym
    relocs = {}
    for line in readelf('-rW').splitlines():
        f = line.split()
        if len(f) >= 3 and re.match(r'^[0-9a-f]{8,16}$', f[0]):
            relocs[int(f[0], 16)] = line.strip()
    # the bytes of the structure in the file, through its section
    data = None
    for line in readelf('-SW').splitlines():
        m = re.match(r'\s*\[\s*\d+\]\s+(\S+)\s+(PROGBITS)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)',
                     line)
        if m:
            addr, off, sz = (int(m.group(i), 16) for i in (3, 4, 5))
            if addr and addr <= base < addr + sz:      # (debug sections are at 0)
                with open(MODULE, 'rb') as f:
                    f.seek(off + base - addr)
                    data = f.read(size)
    expect(data is not None and len(data) == size, 'usdt_module not found in a PROGBITS section')
    offs = field_offsets(ptr)
    bad = []
    for name in ('cmds', 'create_dir_config', 'merge_dir_config', 'create_server_config',
                 'merge_server_config'):
        o = offs[name]
        if base + o in relocs or any(data[o:o + ptr]):
            bad.append('%s is set (%r)' % (name, relocs.get(base + o, data[o:o + ptr])))
    if base + offs['register_hooks'] not in relocs and not any(
            data[offs['register_hooks']:offs['register_hooks'] + ptr]):
        bad.append('register_hooks is not set: the structure was not read right')
    expect(not bad, '\n'.join(bad))


@t.check('it is hardened: full RELRO, non-executable stack, no text relocations, '
         'stack protector')
def _(d):
    dyn = readelf('-dW')
    prog = readelf('-lW')
    bad = []
    if 'GNU_RELRO' not in prog:
        bad.append('no GNU_RELRO segment')
    if not re.search(r'\(BIND_NOW\)|\(FLAGS\).*\bBIND_NOW\b|\(FLAGS_1\).*\bNOW\b', dyn):
        bad.append('no BIND_NOW (link with -z now)')
    m = re.search(r'GNU_STACK\s+(?:\S+\s+){5}(\S+)', prog)
    if not m or 'E' in m.group(1):
        bad.append('executable or unknown stack: %r' % (m and m.group(1)))
    if 'TEXTREL' in dyn:
        bad.append('text relocations')
    if '__stack_chk_fail' not in imports():
        bad.append('no __stack_chk_fail: built without the stack protector')
    expect(not bad, '\n'.join(bad))


@t.check('hardening-check (devscripts) finds nothing missing')
def _(d):
    if not shutil.which('hardening-check'):
        raise harness.Skip('no hardening-check (devscripts)')
    p = subprocess.run(['hardening-check', '--nocfprotection', MODULE], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    log(p.stdout)
    expect_eq(p.returncode, 0, 'hardening-check exit code')


INFO = ('LoadModule info_module /usr/lib/apache2/modules/mod_info.so\n'
        '<Location /server-info>\n    SetHandler server-info\n    Require all granted\n'
        '</Location>\n')


@t.check('mod_info on a live server: no handler, no configuration, no directive; '
         'request phases Pre-Connection, Post-Read Request, Insert Filters, Transaction Logging')
def _(d):
    if os.environ.get('USDT_LIVE_TESTS') == 'no':
        raise harness.Skip('live tests turned off (USDT_LIVE_TESTS=no)')
    harness.require('root', 'apache', 'module', 'curl')
    with harness.Apache(mpm='event', extra=INFO) as httpd:
        p = subprocess.run(['curl', '-sS', '--max-time', '10', '-w', '\n%{http_code}',
                            httpd.url('/server-info?mod_usdt.c')],
                           stdout=subprocess.PIPE, universal_newlines=True, timeout=20)
    body, _, status = p.stdout.rpartition('\n')
    text = re.sub(r'\s+', ' ', re.sub(r'<[^>]+>', ' ', body)).strip()
    log(text)
    expect_eq(status, '200', 'status of /server-info')

    labels = ('Module Name', 'Content handlers', 'Configuration Phase Participation',
              'Request Phase Participation', 'Module Directives', 'Current Configuration')

    def field(name):
        others = '|'.join(re.escape(l) for l in labels if l != name)
        m = re.search(re.escape(name) + r': (.*?)(?= (?:%s):|$)' % others, text)
        return m.group(1).strip() if m else None
    expect_eq(field('Module Name'), 'mod_usdt.c', 'Module Name')
    expect_eq(field('Content handlers'), 'none', 'Content handlers')
    expect_eq(field('Configuration Phase Participation'), 'none', 'Configuration Phase')
    expect_eq(field('Module Directives'), 'none', 'Module Directives')
    expect_eq(field('Request Phase Participation'),
              'Pre-Connection , Post-Read Request , Insert Filters , Transaction Logging',
              'Request Phase Participation')


def run():
    print('1..%d' % len(t.checks))
    sys.stdout.flush()
    if not os.path.isfile(MODULE):
        print('Bail out! %s does not exist: build the module first (make)' % MODULE)
        sys.exit(1)
    for name, fn in t.checks:
        try:
            fn({})
        except harness.Skip as e:
            t._line(True, name, 'SKIP %s' % e)
        except harness.Failure as e:
            t._line(False, name, diag=str(e))
        except Exception:
            import traceback
            t._line(False, name, diag=traceback.format_exc())
        else:
            t._line(True, name)
    sys.exit(1 if t.failed else 0)


if __name__ == '__main__':
    run()
