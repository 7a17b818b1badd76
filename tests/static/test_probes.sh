#!/bin/sh
# test_probes.sh: what the built module promises a tracer, read from the
# file alone (no root, no tracer): the httpd provider's probe notes, each
# probe's arguments with the types of DESIGN.md, semaphores in the module's
# own .probes section, and hooks that do nothing but test them.
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

# Each probe of DESIGN.md and its argument sizes (P: a pointer, 4 or 8;
# negative: signed): ids and times are u64, statuses and pids ints.
PROBES='request__start 8 -4 P P 8 P
request__header 8 P P
request__handler 8 -4 P P 8 P
proxy__start 8 -4 P P 8 P
proxy__done 8 -4 P P 8 P
response__header 8 P P
request__done 8 -4 P P 8 P
conn__start 8 8 P P 8 P
conn__done 8 8 P P 8 P
child__start -4 -4
child__done -4 -4 8'
nprobes=$(printf '%s\n' "$PROBES" | wc -l)
# Untraced, each hook is its semaphores' test and a return: the most
# instructions each may run (one load, one "or" per further probe, a jump,
# the return value, the return).
HOOKS='usdt_post_read_request 5
usdt_insert_filter 4
usdt_log_transaction 7
usdt_pre_connection 5'
nhooks=$(printf '%s\n' "$HOOKS" | wc -l)
plan=$((3 + 4 * nprobes + 1 + nhooks))
echo "1..$plan"
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
check "provider httpd has exactly the $nprobes probes of DESIGN.md" \
	test "$(awk '$1 == "httpd"' "$tmp/probes" | wc -l)" -eq "$nprobes"

probes_sec=$(awk '{ for (i = 1; i <= NF; i++) if ($i == ".probes") { print $(i + 2), $(i + 4); exit } }' "$tmp/sections")
printf '%s\n' "$PROBES" > "$tmp/want"
while read -r probe want; do
	line=$(awk -v p="$probe" '$1 == "httpd" && $2 == p' "$tmp/probes")
	check "httpd:$probe is in the notes" test -n "$line"
	# shellcheck disable=SC2086
	set -- $line
	[ $# -ge 3 ] || set -- x x x
	sem=$3
	shift 3
	# shellcheck disable=SC2086
	nwant=$(set -- $want; echo $#)
	check "httpd:$probe has $nwant arguments" test $# -eq "$nwant"
	types=""
	for a in "$@"; do types="$types ${a%%@*}"; done
	pattern=$(printf ' %s' $want | sed 's/P/(8|4)/g')
	check "httpd:$probe arguments are $want (got$types)" \
		sh -c "echo '$types' | grep -Eq '^$pattern\$'"
	# The semaphore must be in this module's .probes section, so attaching
	# by the module's path enables it in every process that maps it.
	# shellcheck disable=SC2086
	in_probes() { [ $# -eq 2 ] && [ $((sem)) -ne 0 ] &&
		[ $((sem)) -ge $((0x$1)) ] && [ $((sem)) -lt $((0x$1 + 0x$2)) ]; }
	# shellcheck disable=SC2086
	check "httpd:$probe has a semaphore in .probes" in_probes $probes_sec
done < "$tmp/want"

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
	printf '%s\n' "$HOOKS" > "$tmp/hooks"
	while read -r hook most; do
		len=$(hook_len "$hook")
		echo "# untraced instructions: $hook ${len:-?}"
		check "untraced, $hook runs at most $most instructions" test "${len:-99}" -le "$most"
	done < "$tmp/hooks"
else
	i=0
	while [ "$i" -lt "$nhooks" ]; do
		ok "untraced hook size # SKIP objdump or symbols not available"
		i=$((i + 1))
	done
fi

[ "$n" -eq "$plan" ] || echo "# planned $plan tests, ran $n"
[ "$failed" -eq 0 ] && [ "$n" -eq "$plan" ]
