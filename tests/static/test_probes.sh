#!/bin/sh
# test_probes.sh: what the built module promises a tracer, read from the
# file alone (no root, no tracer): the httpd provider's probe notes, exactly
# the probes of dtrace/mod_usdt.d, each with the argument sizes and signs its
# declaration gives (for the module's data model), semaphores in the
# module's own .probes section, and hooks that do nothing but test them.
# The module may be of another architecture than this host (USDT_MODULE, as
# tests/reliability/test_arm64.py runs it): the notes are read the same way,
# and the hooks are disassembled with that architecture's objdump.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-$srcdir}
module=${USDT_MODULE:-$builddir/src/.libs/mod_usdt.so}
provider=$srcdir/dtrace/mod_usdt.d
READELF=${READELF:-readelf}

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { desc=$1; shift; if "$@"; then ok "$desc"; else not_ok "$desc"; fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# The plan comes last: the number of checks follows the number of probes.
finish() { echo "1..$n"; [ "$failed" -eq 0 ]; exit $?; }

# Untraced, each hook is its semaphores' test and a return.  Per hook: the
# number of probes whose semaphores it tests, and whether it returns a value
# (an int hook sets DECLINED or OK before it returns; insert_filter is void).
HOOKS='usdt_post_read_request 2 1
usdt_insert_filter 2 0
usdt_log_transaction 4 1
usdt_pre_connection 2 1'

if [ ! -f "$module" ]; then
	echo "Bail out! $module does not exist: build the module first (make)"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
"$READELF" -n "$module" > "$tmp/notes"
"$READELF" -S -W "$module" > "$tmp/sections"
"$READELF" --dyn-syms -W "$module" > "$tmp/dynsym"
"$READELF" -h "$module" > "$tmp/header"

# One line per note: provider, name, location, base, semaphore, nargs,
# arguments (tests/sdt_notes.awk, the parser every test shares).
awk -f "$srcdir/tests/sdt_notes.awk" "$tmp/notes" > "$tmp/probes"
sed 's/^/# /' "$tmp/probes"

check "the module is an ELF shared object" grep -q 'DYN' "$tmp/header"
check "it exports usdt_module" grep -q ' usdt_module$' "$tmp/dynsym"

# The data model is the file's: ELF32 has 4-byte pointers.
if grep -q 'Class:.*ELF32' "$tmp/header"; then ptr=4; else ptr=8; fi
awk -v ptr=$ptr -f "$srcdir/tests/provider_args.awk" "$provider" > "$tmp/declared"
awk -F '\t' '$1 == "httpd" { print $2 }' "$tmp/declared" | sort > "$tmp/want_names"
awk -F '\t' '$1 == "httpd" { print $2 }' "$tmp/probes" | sort > "$tmp/got_names"
check "the httpd probes in the notes are those of mod_usdt.d ($(wc -l < "$tmp/want_names")), once each" \
	cmp -s "$tmp/want_names" "$tmp/got_names"

# The .probes section's address range, for the semaphores.
probes_sec=$(awk '{ for (i = 1; i <= NF; i++) if ($i == ".probes") { print $(i + 2), $(i + 4); exit } }' "$tmp/sections")
# shellcheck disable=SC2086,SC2317
in_probes() { sem=$1; shift; [ $# -eq 2 ] && [ $((sem)) -ne 0 ] &&
	[ $((sem)) -ge $((0x$1)) ] && [ $((sem)) -lt $((0x$1 + 0x$2)) ]; }

while IFS='	' read -r prov probe nargs sizes _types; do
	[ "$prov" = httpd ] || continue
	# "sem nargs size size ...", the sizes as written before each "@"
	got=$(awk -F '\t' -v p="$probe" '$1 == "httpd" && $2 == p {
		s = $5 " " $6; for (i = 7; i <= NF; i++) { a = $i; sub(/@.*/, "", a); s = s " " a }
		print s; exit }' "$tmp/probes")
	check "httpd:$probe is in the notes" test -n "$got"
	# shellcheck disable=SC2086
	set -- $got
	[ $# -ge 2 ] || set -- 0 -1
	sem=$1 got_n=$2
	shift 2
	check "httpd:$probe has $nargs arguments (got $got_n)" test "$got_n" = "$nargs"
	check "httpd:$probe argument sizes are $sizes as declared, with $ptr-byte pointers (got $*)" \
		test "$*" = "$sizes"
	# The semaphore must be in this module's .probes section, so attaching
	# by the module's path enables it in every process that maps it.
	# shellcheck disable=SC2086
	check "httpd:$probe has a semaphore in .probes" in_probes "$sem" $probes_sec
done < "$tmp/declared"

check "the semaphores are not exported" sh -c "! grep -q '_semaphore' '$tmp/dynsym'"

# Untraced, each hook must be only the semaphore test and a return: the
# record is built in a separate cold function.  Count the instructions of
# each hook up to its first return, against what the module's architecture
# needs for that (measured on the Debian 12 builds, -O2, hardening flags):
#   x86-64  4: cmpw $0,sem(%rip); jne cold; mov $-1,%eax (DECLINED); ret
#   i386    6: PIC code first finds its GOT: call __x86.get_pc_thunk.REG
#              (2 more instructions in the thunk) and add; then the same 4
#   arm64   5: adrp and ldrh (a semaphore is loaded through a register, not
#              compared in memory); cbnz; mov w0,#-1; ret
# and one more where the function starts with a branch-target landing pad
# (arm64 "bti c" with -mbranch-protection, x86 "endbr64"/"endbr32" with
# -fcf-protection).  That is for a hook that tests one semaphore and returns
# a value.  Each further semaphore costs what it takes to fold it into the
# test: x86 one "or" of the word in memory (the first is then a movzwl, not a
# cmpw); arm64 its own adrp, an ldrh and an orr (gcc 12 repeats the adrp for
# each semaphore, though they share a page), and once a tst, as the branch
# on the or'd halfwords is tst and b.ne, not cbnz (arm64 module of
# tests/reliability/test_arm64.py: 9 instructions for 2 semaphores, 15 for
# 4).  A void hook has no return value to set: one fewer.
# Other architectures have no limit measured yet: skipped, with their name.
machine=$(sed -n 's/^ *Machine: *//p' "$tmp/header")
case $machine in
*X86-64*) limit=4 extra=1 combine=0 triplet=x86_64-linux-gnu ;;
*80386*) limit=6 extra=1 combine=0 triplet=i686-linux-gnu ;;
*AArch64*) limit=5 extra=3 combine=1 triplet=aarch64-linux-gnu ;;
*) limit='' extra=0 combine=0 triplet='' ;;
esac
objdump=
for o in objdump ${triplet:+$triplet-objdump}; do
	command -v "$o" >/dev/null 2>&1 || continue
	if "$o" -d --no-show-raw-insn "$module" > "$tmp/dis" 2>"$tmp/dis.err" &&
		grep -q '<usdt_post_read_request>:' "$tmp/dis"; then
		objdump=$o
		break
	fi
done
printf '%s\n' "$HOOKS" > "$tmp/hooks"
while read -r hook sems returns; do
	most=${limit:+$((limit + (sems - 1) * extra + (sems > 1 ? combine : 0) - (1 - returns)))}
	desc="untraced, $hook (tests $sems semaphores) runs at most ${most:-N} instructions ($machine)"
	if [ -z "$limit" ]; then
		skip "$desc" "no hook-size limit measured for $machine: count its instructions and add it here"
	elif [ -z "$objdump" ]; then
		if [ "${CI:-}" = true ]; then
			not_ok "$desc" "no objdump disassembles this $machine module: install binutils-$triplet"
		else
			skip "$desc" "no objdump disassembles this $machine module (Debian: binutils-$triplet)"
		fi
	else
		len=$(awk -v f="<$hook>:" '$0 ~ f { on = 1; next }
			on && /^$/ { exit }
			on && NF > 1 { n++; if (n == 1 && $2 ~ /^(bti|endbr64|endbr32)$/) pad = 1 }
			on && /\tret/ { print n, pad + 0; exit }' "$tmp/dis")
		# shellcheck disable=SC2086
		set -- ${len:-99 0}
		echo "# $hook: $1 instructions to its first return (landing pad: $2), with $objdump"
		[ "$2" -eq 0 ] || desc="untraced, $hook (tests $sems semaphores) runs at most $((most + $2)) instructions ($machine, with a landing pad)"
		check "$desc" test "$1" -le $((most + $2))
	fi
done < "$tmp/hooks"

finish
