#!/bin/sh
# test_dtrace_shim.sh: dtrace/dtrace-shim stands in for SystemTap's dtrace.
# Its header must define what SystemTap's does, its -G object must carry the
# same semaphores, a program built from them must carry working stapsdt
# notes, libtool must be able to drive it, and bad input must fail clearly.
# Speaks TAP; exits 1 if any check failed.
set -eu

srcdir=${srcdir:-$(dirname "$0")/../..}
srcdir=$(cd "$srcdir" && pwd)
shim=$srcdir/dtrace/dtrace-shim
provider=$srcdir/dtrace/mod_usdt.d
stap=/usr/bin/dtrace
# CC and READELF are command lines (the Makefile may pass "gcc -std=gnu99"):
# split them on purpose, and never glob.
set -f
cc=${CC:-cc}
readelf=${READELF:-readelf}

work=$(mktemp -d "${TMPDIR:-/tmp}/test_dtrace_shim.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

n=0 failed=0
# check DESCRIPTION FUNCTION: run FUNCTION, report it, and on failure show
# what it printed as TAP comments.
check() {
	n=$((n + 1))
	if "$2" >"$work/log" 2>&1; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		failed=$((failed + 1))
		sed 's/^/# /' "$work/log"
	fi
}
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
# Macro names a header defines, one a line, sorted.
defines() { sed -n 's/^[ 	]*#[ 	]*define[ 	][ 	]*\([A-Za-z0-9_]*\).*/\1/p' "$1" | sort -u; }
# "name size type bind visibility" of each semaphore an object defines.
semaphores() { $readelf -sW "$1" | awk '$NF ~ /_semaphore$/ { print $NF, $3, $4, $5, $6 }' | sort; }

is_stap() { [ -x "$stap" ] && grep -qi systemtap "$stap"; }

# Functions run inside "if", where set -e does not apply: chain with &&.
t_same_macros() {
	"$shim" -h -s "$provider" -o "$work/shim.h" &&
	"$stap" -h -s "$provider" -o "$work/stap.h" &&
	defines "$work/stap.h" >"$work/stap.defs" &&
	# The shim adds an include guard, SystemTap's header has none.
	defines "$work/shim.h" | grep -v '^DTRACE_SHIM_MOD_USDT_H$' >"$work/shim.defs" &&
	grep -q '^HTTPD_REQUEST_START_ENABLED$' "$work/shim.defs" &&
	diff "$work/stap.defs" "$work/shim.defs"
}
t_same_semaphores() {
	"$shim" -G -s "$provider" -o "$work/shim.o" &&
	(cd "$work" && "$stap" -G -s "$provider" -o stap.o) &&
	semaphores "$work/stap.o" >"$work/stap.sems" &&
	semaphores "$work/shim.o" >"$work/shim.sems" &&
	[ -s "$work/shim.sems" ] &&
	diff "$work/stap.sems" "$work/shim.sems"
}
t_build() {
	cat >"$work/prog.c" <<'EOF'
#include <stdint.h>
#include "mod_usdt.h"

struct dthttpd { int dummy; };

int main(void)
{
	static char method[] = "GET", uri[] = "/index.html?q=1";
	static struct dthttpd record;
	uint64_t id = 42, elapsed_us = 1234;

	if (HTTPD_REQUEST_START_ENABLED())
		HTTPD_REQUEST_START(id, 0, method, uri, elapsed_us, &record);
	if (HTTPD_REQUEST_DONE_ENABLED())
		HTTPD_REQUEST_DONE(id, 200, method, uri, elapsed_us, &record);
	return 0;
}
EOF
	(cd "$work" &&
	 "$shim" -h -s "$provider" && "$shim" -G -s "$provider" &&
	 [ -f mod_usdt.h ] && [ -f mod_usdt.o ] &&
	 $cc -O2 -Wall -Wextra -Werror -c prog.c -o prog.o &&
	 $cc -o prog prog.o mod_usdt.o && ./prog)
}
# Each probe's note must name its provider, six arguments and, as semaphore,
# the very variable that PROBE_ENABLED() reads.
t_notes() {
	[ -x "$work/prog" ] || { echo "no program from the previous check"; return 1; }
	# tests/sdt_notes.awk: the parser every test shares (an operand may
	# contain blanks: arm64 writes -4@[sp, 32])
	$readelf -n "$work/prog" | awk -f "$srcdir/tests/sdt_notes.awk" |
		awk -F '\t' '{ sem = $5; sub(/^0x0*/, "", sem); print $1, $2, $6, sem }' |
		sort -u >"$work/notes" &&
	cat "$work/notes" &&
	for probe in request__start request__done; do
		addr=$(nm "$work/prog" | awk -v s="httpd_${probe}_semaphore" \
			'$3 == s { sub(/^0*/, "", $1); print $1 }')
		if [ -z "$addr" ] || ! grep -qx "httpd $probe 6 $addr" "$work/notes"; then
			echo "want: httpd $probe 6 ${addr:-?} (semaphore at nonzero address)"
			return 1
		fi
	done
}
# Exactly what the Makefile's libtool rule does, minus its paths.
t_libtool() {
	mkdir "$work/lt" && ln -s "$srcdir/dtrace" "$work/lt/dtrace" &&
	(cd "$work/lt" &&
	 libtool --mode=compile --tag=CC dtrace/dtrace-shim -G -s dtrace/mod_usdt.d -o mod_usdt_probes.lo &&
	 [ -f .libs/mod_usdt_probes.o ] &&
	 grep -q "^pic_object='.libs/mod_usdt_probes.o'" mod_usdt_probes.lo &&
	 nm .libs/mod_usdt_probes.o | grep -q ' httpd_request__start_semaphore$')
}

# expect_error PATTERN CMD...: CMD fails, says "dtrace-shim:" and PATTERN on
# stderr, and leaves no output file behind.
expect_error() {
	pat=$1; shift
	rm -f "$work/err.h"
	if "$@" >"$work/stdout" 2>"$work/stderr"; then
		echo "exit status 0 from: $*"; return 1
	fi
	cat "$work/stderr"
	if ! grep -q '^dtrace-shim: ' "$work/stderr" || ! grep -qF -- "$pat" "$work/stderr" ||
	    [ -e "$work/err.h" ]; then
		echo "want \"dtrace-shim: ...$pat...\" on stderr and no $work/err.h"
		return 1
	fi
}
t_err_missing() { expect_error 'nope.d: no such file' "$shim" -h -s "$work/nope.d" -o "$work/err.h"; }
t_err_option() { expect_error "unknown option '-Z'" "$shim" -Z -h -s "$provider" -o "$work/err.h"; }
t_err_mode() { expect_error 'one of -h (header) or -G (object) is required' "$shim" -s "$provider"; }
t_err_noprov() {
	printf '/* only types */\ntypedef int x_t;\n#pragma D attributes Evolving/Evolving/ISA provider p provider\n' >"$work/noprov.d" &&
	expect_error "noprov.d:3: no provider block" "$shim" -h -s "$work/noprov.d" -o "$work/err.h"
}
t_err_args() {
	printf 'provider p {\n\tprobe many(int a, int b, int c, int d, int e, int f,\n\t    int g, int h, int i, int j, int k, int l, int m);\n};\n' >"$work/many.d" &&
	expect_error "many.d:2: probe many has 13 arguments" "$shim" -h -s "$work/many.d" -o "$work/err.h"
}
t_err_parens() {
	printf 'provider p {\n\tprobe a(int a, int b;\n\tprobe b(int a);\n};\n' >"$work/paren.d" &&
	expect_error "paren.d:2: unbalanced parentheses" "$shim" -h -s "$work/paren.d" -o "$work/err.h"
}
t_err_cpp() {
	printf '#define T int\n\nprovider p {\n\tprobe a(T a) (;\n};\n' >"$work/cpp.d" &&
	expect_error "cpp.d:4: unbalanced parentheses" "$shim" -C -h -s "$work/cpp.d" -o "$work/err.h"
}
t_help() { "$shim" --help | grep -q '^SYNOPSIS'; }

echo 1..13
if is_stap; then
	check "shim -h defines the same macros as SystemTap's dtrace -h" t_same_macros
	check "shim -G defines the same semaphores as SystemTap's dtrace -G" t_same_semaphores
else
	skip "no SystemTap dtrace"
	skip "no SystemTap dtrace"
fi
check "a program firing HTTPD_REQUEST_START builds with -Wall -Wextra -Werror and runs" t_build
check "its stapsdt notes: httpd request__start/done, 6 arguments, their semaphores" t_notes
if command -v libtool >/dev/null 2>&1; then
	check "libtool --mode=compile drives shim -G into .libs/mod_usdt_probes.o" t_libtool
else
	skip "no libtool (Debian: libtool-bin)"
fi
check "error: missing provider file" t_err_missing
check "error: unknown option" t_err_option
check "error: neither -h nor -G" t_err_mode
check "error: no provider block (FILE:LINE)" t_err_noprov
check "error: more than 12 arguments (FILE:LINE)" t_err_args
check "error: unbalanced parentheses (FILE:LINE)" t_err_parens
check "error: -C reports lines of the provider file, not of cpp's output" t_err_cpp
check "--help prints the manual" t_help

[ "$failed" -eq 0 ]
