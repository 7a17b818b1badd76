#!/bin/sh
# test_probes.sh: what the built module promises a tracer, read from the
# file alone (no root, no tracer): the httpd provider's probe notes, six
# arguments each with the types of DESIGN.md, semaphores in the module's own
# .probes section, and hooks that do nothing but test them.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-$srcdir}
module=${USDT_MODULE:-$builddir/src/.libs/mod_usdt.so}
READELF=${READELF:-readelf}

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { desc=$1; shift; if "$@"; then ok "$desc"; else not_ok "$desc"; fi; }

echo "1..14"
if [ ! -f "$module" ]; then
	echo "Bail out! $module does not exist: build the module first (make)"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
"$READELF" -n "$module" > "$tmp/notes"
"$READELF" -S -W "$module" > "$tmp/sections"
"$READELF" --dyn-syms -W "$module" > "$tmp/dynsym"

# One line per probe: "provider name semaphore args...", from the notes.
awk '/Provider:/ { p = $2 } /Name:/ { n = $2 }
     /Semaphore:/ { s = $NF }
     /Arguments:/ { $1 = ""; print p, n, s, $0 }' "$tmp/notes" > "$tmp/probes"
sed 's/^/# /' "$tmp/probes"

check "the module is an ELF shared object" \
	sh -c "\"$READELF\" -h \"$module\" | grep -q 'DYN'"
check "it exports usdt_module" grep -q ' usdt_module$' "$tmp/dynsym"
check "provider httpd has exactly two probes" \
	test "$(awk '$1 == "httpd"' "$tmp/probes" | wc -l)" -eq 2

for probe in request__start request__done; do
	line=$(awk -v p="$probe" '$1 == "httpd" && $2 == p' "$tmp/probes")
	check "httpd:$probe is in the notes" test -n "$line"
	# shellcheck disable=SC2086
	set -- $line
	[ $# -ge 3 ] || set -- x x x
	sem=$3
	shift 3
	check "httpd:$probe has six arguments" test $# -eq 6
	# arg0 id and arg4 elapsed are unsigned 64-bit; arg1 status is a signed
	# int; arg2, arg3 and arg5 are pointers (the size of one here).
	types=""
	for a in "$@"; do types="$types ${a%%@*}"; done
	check "httpd:$probe arguments are u64, int, ptr, ptr, u64, ptr (got$types)" \
		sh -c "echo '$types' | grep -Eq '^ 8 -4 (8|4) (8|4) 8 (8|4)$'"
	# The semaphore must be in this module's .probes section, so attaching
	# by the module's path enables it in every process that maps it.
	probes_sec=$(awk '{ for (i = 1; i <= NF; i++) if ($i == ".probes") { print $(i + 2), $(i + 4); exit } }' "$tmp/sections")
	# shellcheck disable=SC2086
	in_probes() { [ $# -eq 2 ] && [ $((sem)) -ne 0 ] &&
		[ $((sem)) -ge $((0x$1)) ] && [ $((sem)) -lt $((0x$1 + 0x$2)) ]; }
	# shellcheck disable=SC2086
	check "httpd:$probe has a semaphore in .probes" in_probes $probes_sec
done

check "the semaphores are not exported" \
	sh -c "! grep -q '_semaphore' '$tmp/dynsym'"

# Untraced, each hook must be only the semaphore test and a return: the
# record is built in a separate cold function.  Count the instructions of
# each hook up to its first return.
if command -v objdump >/dev/null 2>&1 && objdump -d --no-show-raw-insn "$module" > "$tmp/dis" 2>/dev/null &&
	grep -q '<usdt_post_read_request>:' "$tmp/dis"; then
	hook_len() {
		awk -v f="<$1>:" '$0 ~ f { on = 1; next }
			on && /^$/ { exit } on && NF > 1 { n++ } on && /\tret/ { print n; exit }' "$tmp/dis"
	}
	pr=$(hook_len usdt_post_read_request)
	lt=$(hook_len usdt_log_transaction)
	echo "# untraced instructions: post_read_request $pr, log_transaction $lt"
	check "untraced, post_read_request runs at most 5 instructions" test "${pr:-99}" -le 5
	check "untraced, log_transaction runs at most 5 instructions" test "${lt:-99}" -le 5
else
	ok "untraced post_read_request size # SKIP objdump or symbols not available"
	ok "untraced log_transaction size # SKIP objdump or symbols not available"
fi

[ "$n" -eq 14 ] || echo "# planned 14 tests, ran $n"
[ "$failed" -eq 0 ]
