#!/bin/sh
# test_dlib.sh: the D library dtrace/httpd.d, checked without DTrace.
#
# A library in /usr/lib/dtrace that does not compile breaks every dtrace
# invocation on the system, and this one cannot be compiled here (Linux has
# no D compiler).  So this reads it as text: the layout substituted and
# current, translators that use only members the record has (src/dthttpd.h)
# and assign every member of the types they fill, the fields DESIGN.md
# promises, balanced brackets.  It also checks that dtrace/gen-layout stops
# with a "gen-layout: FILE:LINE: ..." message on headers it cannot follow.
#
# Environment: srcdir (source top, default this script's ../..), builddir
# (build top, default srcdir), DLIB_VARIANT (the variant to check: net,
# nodep or own, see dtrace/httpd.d.in; default DTRACE_DLIB, the one the build
# made, else net).  The httpd.d checked is $builddir/dtrace/httpd.d if it
# has been built in that variant, else one generated here the way the build
# does it (dtrace/gen-dlib).
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-$srcdir}
header=$srcdir/src/dthttpd.h
dlib_in=$srcdir/dtrace/httpd.d.in
provider=$srcdir/dtrace/mod_usdt.d
gen_layout() { sh "$srcdir/dtrace/gen-layout" "$@"; }
variant=${DLIB_VARIANT:-${DTRACE_DLIB:-net}}
built_variant=${DTRACE_DLIB:-net}
case $variant in net | nodep | own) ;; *) echo "Bail out! DLIB_VARIANT=$variant: expected net, nodep or own"; exit 1 ;; esac

# What DESIGN.md promises in httpd_rqinfo_t (the original's names and the
# new ones) and in conninfo_t.
rq_required="rq_id rq_status rq_lport rq_rport rq_method rq_uri rq_agent
	rq_elapsed_us rq_bytes_received rq_bytes_sent rq_laddr rq_raddr
	rq_protocol rq_host rq_vhost rq_ipversion
	rq_conn_id rq_conn_request rq_flags rq_status_first rq_handler_us
	rq_first_byte_us rq_last_byte_us rq_handler rq_filename rq_user
	rq_content_type rq_tls_protocol"
cn_required="cn_id cn_elapsed_us cn_requests cn_lport cn_rport cn_ipversion
	cn_flags cn_laddr cn_raddr cn_tls_protocol cn_tls_cipher cn_sni"
px_required="px_id px_status px_backend_us px_ipversion px_flags px_backend px_balancer
	px_url px_laddr px_raddr"
ci_required="ci_local ci_remote ci_protocol"

# Headers that gen-layout must refuse: "label|line put after ipversion".
bad_cases='a char * member|	char *name;
two members on one line|	const char *a, *b;
a preprocessor line in the struct|#ifdef EXTRA
a member named after a D keyword|	uint64_t string;
a bit-field|	uint32_t flags : 3;'
nbad=$(printf '%s\n' "$bad_cases" | wc -l)
plan=$((28 + nbad))

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}
check() { desc=$1; shift; if "$@"; then ok "$desc"; else not_ok "$desc"; fi; }
# check_empty DESC TEXT: passes when TEXT is empty, else shows it.
check_empty() { if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "$2"; fi; }

echo "1..$plan"
for f in "$header" "$dlib_in" "$provider" "$srcdir/dtrace/gen-layout"; do
	if [ ! -f "$f" ]; then
		echo "Bail out! $f does not exist"
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# 1-3: generate httpd.d as the build does (the command httpd.d.in documents).
if gen_layout d "$header" > "$tmp/layout.d" 2> "$tmp/gen.err" &&
	gen_layout members "$header" > "$tmp/members.h" 2>> "$tmp/gen.err"; then
	ok "gen-layout reads src/dthttpd.h"
else
	not_ok "gen-layout reads src/dthttpd.h" "$(cat "$tmp/gen.err")"
fi
sh "$srcdir/dtrace/gen-dlib" "$variant" "$dlib_in" "$tmp/layout.d" > "$tmp/httpd.d"
dlib=$tmp/httpd.d
built=$builddir/dtrace/httpd.d
echo "# variant $variant"
if [ -f "$built" ] && [ "$variant" = "$built_variant" ]; then
	dlib=$built
	if cmp -s "$built" "$tmp/httpd.d"; then
		ok "dtrace/httpd.d is up to date with httpd.d.in and src/dthttpd.h"
	else
		not_ok "dtrace/httpd.d is up to date with httpd.d.in and src/dthttpd.h" \
			"$(diff "$tmp/httpd.d" "$built" | head -20)"
	fi
else
	ok "dtrace/httpd.d is up to date # SKIP not built in variant $variant; checking a fresh one"
fi
echo "# checking $dlib"

check "httpd.d.in has the layout token once, alone on its line" \
	test "$(grep -c '@DTHTTPD_LAYOUT@' "$dlib_in"),$(grep -c '^@DTHTTPD_LAYOUT@$' "$dlib_in")" = 1,1

# 4: nothing left to substitute.
check_empty "no @TOKEN@ is left in httpd.d" \
	"$(grep -n '@[A-Za-z_][A-Za-z0-9_]*@' "$dlib" || true)"

# 5: the layout is in, as gen-layout makes it: its lines, in order, inside.
# shellcheck disable=SC2016
check "httpd.d carries the gen-layout d output of src/dthttpd.h" \
	awk 'NR == FNR { want[++n] = $0; next }
	     i < n && $0 == want[i + 1] { i++; next }
	     i < n { i = 0; if ($0 == want[1]) i = 1 }
	     END { exit !(n > 0 && i == n) }' "$tmp/layout.d" "$dlib"

# The code alone: comments removed, string literals kept as quotes only.
awk '{
	out = ""; s = $0; i = 1; len = length(s)
	while (i <= len) {
		c = substr(s, i, 1); c2 = substr(s, i, 2)
		if (incomment) {
			if (c2 == "*/") { incomment = 0; out = out " "; i += 2 } else i++
			continue
		}
		if (instr) {
			if (c == "\\") { i += 2; continue }
			if (c == q) { instr = 0; out = out q }
			i++; continue
		}
		if (c2 == "/*") { incomment = 1; i += 2; continue }
		if (c2 == "//") break
		if (c == "\"" || c == "\047") { instr = 1; q = c; out = out c; i++; continue }
		out = out c; i++
	}
	print out
}' "$dlib" > "$tmp/code"

# block START_ERE: the code of the block that starts on the first line
# matching START_ERE, up to its closing brace, on one line.
block() {
	awk -v start="$1" '
		!on && $0 ~ start { on = 1 }
		on {
			print
			t = $0; o = gsub(/\{/, "", t); t = $0; c = gsub(/\}/, "", t)
			depth += o - c; if (o) seen = 1
			if (seen && depth <= 0) exit
		}' "$tmp/code" | tr '\n\t' '  '
}
# assigned TEXT: the member names assigned in a translator body.
assigned() {
	printf '%s\n' "$1" | sed 's/^[^{]*{//; s/}[^}]*$//' | tr ';' '\n' |
		sed -n 's/^ *\([A-Za-z_][A-Za-z0-9_]*\) *=[^=].*/\1/p' | sort
}
# declared TEXT: the member names a struct body declares.
declared() {
	printf '%s\n' "$1" | sed 's/^[^{]*{//; s/}[^}]*$//' | tr ';' '\n' |
		sed 's/\[[^]]*\]//g' |
		sed -n 's/.*[^A-Za-z0-9_]\([A-Za-z_][A-Za-z0-9_]*\) *$/\1/p' | sort
}
# missing WANTED HAVE: the words of WANTED that are not in HAVE.
missing() {
	for w in $1; do
		printf '%s\n' "$2" | grep -qx "$w" || printf '%s ' "$w"
	done
}

ci_xl=$(block '^translator[ ]+conninfo_t[ ]*<[ ]*dthttpd_t[ ]*[*]')
rq_xl=$(block '^translator[ ]+httpd_rqinfo_t[ ]*<[ ]*dthttpd_t[ ]*[*]')
rq_type=$(block '^typedef[ ]+struct[ ]+httpd_rqinfo[ ]*[{]')
ci_conn_xl=$(block '^translator[ ]+conninfo_t[ ]*<[ ]*dthttpd_conn_t[ ]*[*]')
cn_xl=$(block '^translator[ ]+httpd_conninfo_t[ ]*<[ ]*dthttpd_conn_t[ ]*[*]')
cn_type=$(block '^typedef[ ]+struct[ ]+httpd_conninfo[ ]*[{]')
ci_proxy_xl=$(block '^translator[ ]+conninfo_t[ ]*<[ ]*dthttpd_proxy_t[ ]*[*]')
px_xl=$(block '^translator[ ]+httpd_proxyinfo_t[ ]*<[ ]*dthttpd_proxy_t[ ]*[*]')
px_type=$(block '^typedef[ ]+struct[ ]+httpd_proxyinfo[ ]*[{]')
code=$(tr '\n\t' '  ' < "$tmp/code")

# 6-8: the record members the translators use exist, and only the record
# views (and curpsinfo) are dereferenced.  Members are "RECORD.member",
# RECORD dthttpd, dthttpd_conn or dthttpd_proxy.
header_members=$(sed -n 's/^MEMBER(\(.*\))$/dthttpd.\1/p; s/^MEMBER_CONN(\(.*\))$/dthttpd_conn.\1/p;
	s/^MEMBER_PROXY(\(.*\))$/dthttpd_proxy.\1/p' "$tmp/members.h")
used=$(printf '%s\n' "$code" | awk '{
	s = $0
	re = "dthttpd(_conn|_proxy)?(32|64)_t *\\* *\\) *[A-Za-z_][A-Za-z0-9_]* *\\) *(->|\\.) *[A-Za-z_][A-Za-z0-9_]*"
	while (match(s, re)) {
		m = substr(s, RSTART, RLENGTH); r = m
		sub(/(32|64)_t.*/, "", r); sub(/.*(->|\.) */, "", m); print r "." m
		s = substr(s, RSTART + RLENGTH)
	}
	s = $0
	re = "offsetof *\\( *dthttpd(_conn|_proxy)?(32|64)_t *, *[A-Za-z_][A-Za-z0-9_]* *\\)"
	while (match(s, re)) {
		m = substr(s, RSTART, RLENGTH); r = m
		sub(/^offsetof *\( */, "", r); sub(/(32|64)_t.*/, "", r)
		sub(/.*, */, "", m); sub(/ *\)$/, "", m)
		print r "." m; s = substr(s, RSTART + RLENGTH)
	}
}' | sort -u)
if [ -z "$used" ]; then
	not_ok "translators read record members that src/dthttpd.h has" \
		"no member of a record view is read at all"
else
	check_empty "translators read record members that src/dthttpd.h has" \
		"$(missing "$used" "$header_members")"
fi
other_derefs=$(printf '%s\n' "$code" | awk '{
	s = $0
	gsub(/dthttpd(_conn|_proxy)?(32|64)_t *\* *\) *[A-Za-z_][A-Za-z0-9_]* *\) *(->|\.)/, "", s)
	gsub(/curpsinfo *-> *pr_dmodel/, "", s)
	while (match(s, /[A-Za-z0-9_)]* *-> *[A-Za-z_][A-Za-z0-9_]*/)) {
		print substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
	}
}')
check_empty "nothing but the record views and curpsinfo is dereferenced" \
	"$other_derefs"
unused=$(for m in $header_members; do
	case "$m" in *reserved*) continue ;; esac
	printf '%s\n' "$used" | grep -qx "$m" || printf '%s ' "$m"
done)
check_empty "every record member but the reserve reaches a translated argument" \
	"$unused"

# 9-10: the types the translators fill.
rq_fields=$(declared "$rq_type")
check_empty "httpd_rqinfo_t declares the fields DESIGN.md promises" \
	"$(missing "$rq_required" "$rq_fields")"
if [ "$variant" = own ]; then
	ci_type=$(block '^typedef[ ]+struct[ ]+conninfo[ ]*[{]')
	check_empty "the library defines conninfo_t (ci_local, ci_remote, ci_protocol), once" \
		"$(missing "$ci_required" "$(declared "$ci_type")")$(test "$(grep -Ec '(^|[^A-Za-z0-9_])conninfo_t *;' "$tmp/code")" -eq 1 || echo "conninfo_t defined $(grep -Ec '(^|[^A-Za-z0-9_])conninfo_t *;' "$tmp/code") times")"
else
	check "the library does not define conninfo_t (net.d does)" \
		sh -c "! grep -Eq '(^|[^A-Za-z0-9_])conninfo_t *;' '$tmp/code'"
fi

# 11-13: the translators fill every member.
if [ -n "$ci_xl" ]; then
	check_empty "the conninfo_t translator sets ci_local, ci_remote, ci_protocol" \
		"$(missing "$ci_required" "$(assigned "$ci_xl")")"
else
	not_ok "the conninfo_t translator sets ci_local, ci_remote, ci_protocol" \
		"no translator conninfo_t <dthttpd_t *dp>"
fi
rq_assigned=$(assigned "$rq_xl")
if [ -n "$rq_xl" ] && [ -n "$rq_fields" ]; then
	check_empty "the httpd_rqinfo_t translator assigns every field of httpd_rqinfo_t" \
		"$(missing "$rq_fields" "$rq_assigned")"
	check_empty "the httpd_rqinfo_t translator assigns nothing else" \
		"$(missing "$rq_assigned" "$rq_fields")"
else
	not_ok "the httpd_rqinfo_t translator assigns every field of httpd_rqinfo_t" \
		"no httpd_rqinfo_t type or translator found"
	not_ok "the httpd_rqinfo_t translator assigns nothing else"
fi

# The connection and proxy records: their types declare what DESIGN.md
# promises, their translators fill every member and nothing else, and each
# record also translates to conninfo_t.
# check_xl TYPE TYPE_BLOCK XL_BLOCK REQUIRED
check_xl() {
	fields=$(declared "$2")
	check_empty "$1 declares the fields DESIGN.md promises" \
		"$(missing "$4" "$fields")"
	if [ -n "$3" ] && [ -n "$fields" ]; then
		xl_assigned=$(assigned "$3")
		check_empty "the $1 translator assigns every field of $1" \
			"$(missing "$fields" "$xl_assigned")"
		check_empty "the $1 translator assigns nothing else" \
			"$(missing "$xl_assigned" "$fields")"
	else
		not_ok "the $1 translator assigns every field of $1" "no $1 type or translator found"
		not_ok "the $1 translator assigns nothing else"
	fi
}
check_xl httpd_conninfo_t "$cn_type" "$cn_xl" "$cn_required"
check_xl httpd_proxyinfo_t "$px_type" "$px_xl" "$px_required"
for rec in conn proxy; do
	eval "xl=\$ci_${rec}_xl"
	if [ -n "$xl" ]; then
		check_empty "the conninfo_t translator of dthttpd_${rec}_t sets ci_local, ci_remote, ci_protocol" \
			"$(missing "$ci_required" "$(assigned "$xl")")"
	else
		not_ok "the conninfo_t translator of dthttpd_${rec}_t sets ci_local, ci_remote, ci_protocol" \
			"no translator conninfo_t <dthttpd_${rec}_t *dp>"
	fi
done

# 14: brackets of every kind balance, and never close before they open.
balance=$(awk '{
	for (i = 1; i <= length($0); i++) {
		c = substr($0, i, 1)
		if (c == "(") p++; else if (c == ")") p--
		else if (c == "{") b++; else if (c == "}") b--
		else if (c == "[") k++; else if (c == "]") k--
		if ((p < 0 || b < 0 || k < 0) && !bad) bad = "line " NR ": closed before opened"
	}
} END {
	if (!bad && (p || b || k)) bad = "unbalanced at the end: () " p ", {} " b ", [] " k
	print bad
}' "$tmp/code")
check_empty "braces, parentheses and brackets balance" "$balance"

# 15-17: consistent with the provider, and what every translator needs.
check "the provider maps each record, last, to conninfo_t and its info type (3 request, 2 conn, 2 proxy probes)" \
	test "$(grep -c '(.*dthttpd_t \*dp) : (conninfo_t \*dp, httpd_rqinfo_t \*dp);' "$provider"),$(grep -c '(.*dthttpd_conn_t \*dp) : (conninfo_t \*dp, httpd_conninfo_t \*dp);' "$provider"),$(grep -c '(.*dthttpd_proxy_t \*dp) : (conninfo_t \*dp, httpd_proxyinfo_t \*dp);' "$provider")" = 3,2,2
check "dthttpd_t is declared, before the translators use it" \
	awk '/^typedef[ ]+struct[ ]+dthttpd[ ]+dthttpd_t[ ]*;/ { d = NR }
	     /^translator/ && !t { t = NR }
	     END { exit !(d && t && d < t) }' "$tmp/code"
check "each translator is bound to D 1.6.1" \
	awk '/^#pragma D binding "1\.6\.1" translator/ { p = NR }
	     /^translator/ { n++; if (p == NR - 1) b++ }
	     END { exit !(n == 6 && b == n) }' "$dlib"
if [ "$variant" = net ]; then
	check "the library depends on net.d (conninfo_t) and on no procfs.d" \
		sh -c "grep -q '^#pragma D depends_on library net.d' '$tmp/code' &&
			! grep -q 'procfs.d' '$tmp/code'"
else
	check "the library depends on no other library (no net.d beside it, no procfs.d)" \
		sh -c "! grep -q 'depends_on' '$tmp/code' && ! grep -q 'procfs.d' '$tmp/code'"
fi

# 18: the layout block is C too (tests/unit/test_layout.c compiles it).
cc=${CC:-cc}
if command -v "$cc" >/dev/null 2>&1; then
	{ echo '#include <stdint.h>'; cat "$tmp/layout.d"; } > "$tmp/layout.c"
	if "$cc" -fsyntax-only -Wall -Wextra -Werror -x c "$tmp/layout.c" 2> "$tmp/cc.err"; then
		ok "the gen-layout d declarations are valid C"
	else
		not_ok "the gen-layout d declarations are valid C" "$(cat "$tmp/cc.err")"
	fi
else
	ok "the gen-layout d declarations are valid C # SKIP no C compiler ($cc)"
fi

# 19 and on: gen-layout refuses what it cannot follow, saying where.
at=$(grep -n 'uint32_t ipversion;' "$header" | head -1 | cut -d: -f1)
check "gen-layout refuses an unknown mode" \
	sh -c "! sh '$srcdir/dtrace/gen-layout' c '$header' >/dev/null 2>&1"
printf '%s\n' "$bad_cases" | {
	while IFS='|' read -r label line; do
		awk -v at="$at" -v l="$line" '{ print } NR == at { print l }' "$header" > "$tmp/bad.h"
		if gen_layout d "$tmp/bad.h" > "$tmp/bad.out" 2> "$tmp/bad.err"; then
			rc=0
		else
			rc=$?
		fi
		msg=$(cat "$tmp/bad.err")
		case "$msg" in
		"gen-layout: $tmp/bad.h:$((at + 1)): "*)
			if [ "$rc" -ne 0 ] && [ ! -s "$tmp/bad.out" ]; then
				ok "gen-layout refuses $label"
				echo "# ${msg#"gen-layout: $tmp/"}"
			else
				not_ok "gen-layout refuses $label" "exit $rc, $(wc -c < "$tmp/bad.out") bytes of output"
			fi ;;
		*) not_ok "gen-layout refuses $label" "exit $rc, message: $msg" ;;
		esac
	done
	echo "$n $failed" > "$tmp/counts"
}
read -r n failed < "$tmp/counts"

[ "$n" -eq "$plan" ] || echo "# planned $plan tests, ran $n"
[ "$failed" -eq 0 ] && [ "$n" -eq "$plan" ]
