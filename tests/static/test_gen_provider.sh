#!/bin/sh
# test_gen_provider.sh: dtrace/gen-provider, which derives from the one
# provider file (dtrace/mod_usdt.d, Linux form) the provider a real DTrace
# builds from (one native argument, the record, for each probe that has
# one) and the USDT_<PROBE>() wrapper macros the module fires through.
# Checks the real file and a provider with every kind of probe DESIGN.md
# lists (records of all three kinds, header and child probes, declarations
# over several lines), compiles and runs the macros of both routes against
# stand-in probe macros that report what they were given, checks that the
# module's sources fire only through the wrappers, and that bad input
# fails with "gen-provider: FILE:LINE: ...".  No root needed.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
gp() { sh "$srcdir/dtrace/gen-provider" "$@"; }
cc=${CC:-cc}
set -f

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}
check_empty() { if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "$2"; fi; }

bad_cases='a mapping naming an argument DTrace drops|probe a__b(int x, dthttpd_t *dp) : (conninfo_t *x);|its mapping uses "x"
a probe without ")"|probe a__b(int x;|no ")" after its arguments
a probe declared twice|probe a(int x);\n\tprobe a(int y);|declared twice (first on line 2)
parentheses in an argument|probe a(int (*f)(void));|parentheses inside the arguments
text after the mapping|probe a(dthttpd_t *dp) : (conninfo_t *dp) x;|expected ": (TYPES...);"'
nbad=$(printf '%s\n' "$bad_cases" | wc -l)
plan=$((9 + nbad))
echo "1..$plan"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# 1-2: the real provider file.
if gp dtrace "$srcdir/dtrace/mod_usdt.d" > "$tmp/real.d" 2> "$tmp/err"; then
	# Only probe lines differ, and each record probe keeps (TYPE *dp) only.
	changed=$(diff "$srcdir/dtrace/mod_usdt.d" "$tmp/real.d" | sed -n 's/^> //p' |
		grep -v -e '^/\*$' -e '^ \* ' -e '^ \*/$' | grep -v '^[ 	]*probe [a-z_]*(dthttpd[a-z_]*_t \*dp) : (.*);$' || true)
	records=$(grep -c '^[ 	]*probe .*dthttpd[a-z_]*_t \*dp) : ' "$srcdir/dtrace/mod_usdt.d" || true)
	ones=$(grep -c '^[ 	]*probe [a-z_]*(dthttpd[a-z_]*_t \*dp) : ' "$tmp/real.d" || true)
	if [ -z "$changed" ] && [ "$records" -ge 2 ] && [ "$records" = "$ones" ]; then
		ok "mod_usdt.d: each of its $records probes with a record keeps the record alone; nothing else changes"
	else
		not_ok "mod_usdt.d: each probe with a record keeps the record alone; nothing else changes" \
			"records $records, one-argument probes $ones" "$changed"
	fi
else
	not_ok "mod_usdt.d: each probe with a record keeps the record alone" "$(cat "$tmp/err")"
fi
probes_src=$(sed -n 's/^[ 	]*probe \([a-z_]*\)(.*/\1/p' "$srcdir/dtrace/mod_usdt.d" | sort)
macros=$(gp macros all "$srcdir/dtrace/mod_usdt.d" | sed -n 's/^#define USDT_\([A-Z_]*\)_ENABLED().*/\1/p' |
	tr '[:upper:]' '[:lower:]' | sort)
check_empty "a USDT_<PROBE>() and USDT_<PROBE>_ENABLED() for every probe of mod_usdt.d" \
	"$(printf '%s\n' "$probes_src" | sed 's/__/_/g' | sort | diff - "$(printf '%s\n' "$macros" > "$tmp/m"; echo "$tmp/m")" || true)"

# 3: every kind of probe, as issue 13 adds them.
cat > "$tmp/all.d" <<'EOF'
typedef struct dthttpd { int dummy; } dthttpd_t;
provider httpd {
	/* a request record */
	probe request__done(uint64_t id, int status, char *method, char *uri, uint64_t elapsed_us, dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
	probe request__header(uint64_t id, char *name, char *value);
	probe conn__start(uint64_t conn_id, int zero, char *raddr,
	    char *laddr, uint64_t zero2,
	    dthttpd_conn_t *dp) : (conninfo_t *dp, httpd_conninfo_t *dp);
	probe proxy__done(uint64_t id, int status, char *backend, char *balancer, uint64_t backend_us, dthttpd_proxy_t *dp) : (conninfo_t *dp, httpd_proxyinfo_t *dp);
	probe child__start(int pid, int generation);
	probe child__done(int, int, uint64_t);
};
#pragma D attributes Evolving/Evolving/ISA provider httpd args
EOF
cat > "$tmp/all.want" <<'EOF'
typedef struct dthttpd { int dummy; } dthttpd_t;
provider httpd {
	/* a request record */
	probe request__done(dthttpd_t *dp) : (conninfo_t *dp, httpd_rqinfo_t *dp);
	probe request__header(uint64_t id, char *name, char *value);
	probe conn__start(dthttpd_conn_t *dp) : (conninfo_t *dp, httpd_conninfo_t *dp);
	probe proxy__done(dthttpd_proxy_t *dp) : (conninfo_t *dp, httpd_proxyinfo_t *dp);
	probe child__start(int pid, int generation);
	probe child__done(int, int, uint64_t);
};
#pragma D attributes Evolving/Evolving/ISA provider httpd args
EOF
if gp dtrace "$tmp/all.d" 2> "$tmp/err" | grep -v -e '^/\*$' -e '^ \*' > "$tmp/all.got" &&
	diff "$tmp/all.want" "$tmp/all.got" > "$tmp/diff"; then
	ok "records of all three kinds (also over several lines) keep the record; header and child probes are unchanged"
else
	not_ok "records of all three kinds keep the record; header and child probes are unchanged" \
		"$(cat "$tmp/err" "$tmp/diff")"
fi

# 4-7: the macros of both routes, compiled and run against stand-ins that
# print what each probe got.
cat > "$tmp/provider.h" <<'EOF'
#include <stdio.h>
#define COUNT(...) (sizeof((long[]){ __VA_ARGS__ }) / sizeof(long))
#define SHOW(p, ...) printf("%s %zu %ld\n", p, COUNT(__VA_ARGS__), (long[]){ __VA_ARGS__ }[COUNT(__VA_ARGS__) - 1])
#define HTTPD_REQUEST_DONE(...) SHOW("request__done", __VA_ARGS__)
#define HTTPD_REQUEST_HEADER(...) SHOW("request__header", __VA_ARGS__)
#define HTTPD_CONN_START(...) SHOW("conn__start", __VA_ARGS__)
#define HTTPD_PROXY_DONE(...) SHOW("proxy__done", __VA_ARGS__)
#define HTTPD_CHILD_START(...) SHOW("child__start", __VA_ARGS__)
#define HTTPD_CHILD_DONE(...) SHOW("child__done", __VA_ARGS__)
#define HTTPD_REQUEST_DONE_ENABLED() 1
#define HTTPD_REQUEST_HEADER_ENABLED() 1
#define HTTPD_CONN_START_ENABLED() 1
#define HTTPD_PROXY_DONE_ENABLED() 1
#define HTTPD_CHILD_START_ENABLED() 1
#define HTTPD_CHILD_DONE_ENABLED() 1
EOF
cat > "$tmp/main.c" <<'EOF'
#include "provider.h"
#include "macros.h"
int main(void)
{
	/* The record is the last argument: 99. */
	if (USDT_REQUEST_DONE_ENABLED()) USDT_REQUEST_DONE(1, 2, 3, 4, 5, 99);
	if (USDT_REQUEST_HEADER_ENABLED()) USDT_REQUEST_HEADER(1, 2, 3);
	if (USDT_CONN_START_ENABLED()) USDT_CONN_START(1, 2, 3, 4, 5, 99);
	if (USDT_PROXY_DONE_ENABLED()) USDT_PROXY_DONE(1, 2, 3, 4, 5, 99);
	if (USDT_CHILD_START_ENABLED()) USDT_CHILD_START(1, 2);
	if (USDT_CHILD_DONE_ENABLED()) USDT_CHILD_DONE(1, 2, 3);
	return 0;
}
EOF
for route in all record; do
	case $route in
	all) want='request__done 6 99
request__header 3 3
conn__start 6 99
proxy__done 6 99
child__start 2 2
child__done 3 3' ;;
	record) want='request__done 1 99
request__header 3 3
conn__start 1 99
proxy__done 1 99
child__start 2 2
child__done 3 3' ;;
	esac
	if gp macros "$route" "$tmp/all.d" > "$tmp/macros.h" 2> "$tmp/err" &&
		$cc -std=gnu99 -Wall -Wextra -Werror -I"$tmp" -o "$tmp/main" "$tmp/main.c" 2>> "$tmp/err" &&
		got=$("$tmp/main") && [ "$got" = "$want" ]; then
		ok "macros $route: each probe gets $( [ $route = all ] && echo 'every argument' || echo 'the record alone where it has one')"
	else
		not_ok "macros $route: each probe gets the arguments of its route" "$(cat "$tmp/err")" "want:" "$want" "got:" "${got:-}"
	fi
	check_empty "macros $route: USDT_PROBES_RECORD_ONLY is $( [ $route = all ] && echo 0 || echo 1)" \
		"$(grep -x "#define USDT_PROBES_RECORD_ONLY $( [ $route = all ] && echo 0 || echo 1)" "$tmp/macros.h" >/dev/null || echo "not in $(grep RECORD_ONLY "$tmp/macros.h")")"
done

# 8: the module fires every probe through the wrappers: no HTTPD_ macro and
# no #if on the route in its sources.
direct=$(grep -n -E '\bHTTPD_[A-Z_]+\(' "$srcdir"/src/*.c 2>/dev/null || true)
ifs=$(grep -n -E '^#if.*(_DTRACE_VERSION|USDT_PROBES_RECORD_ONLY|DTRACE)' "$srcdir"/src/*.c 2>/dev/null || true)
check_empty "src/*.c fire probes only through USDT_<PROBE>(), with no #if on the route" "$direct$ifs"

# 9: a usage error.
if gp macros sdt "$srcdir/dtrace/mod_usdt.d" > /dev/null 2> "$tmp/err"; then
	not_ok "an unknown route is refused" "gen-provider succeeded"
else
	check_empty "an unknown route is refused" "$(grep -v "route 'sdt': expected all or record" "$tmp/err")"
fi

# 10 and on: bad provider files, each refused with its line.
printf '%s\n' "$bad_cases" | {
	while IFS='|' read -r label body want; do
		printf 'provider httpd {\n\t%b\n};\n' "$body" > "$tmp/bad.d"
		if gp dtrace "$tmp/bad.d" > /dev/null 2> "$tmp/err"; then
			not_ok "refuses $label" "gen-provider succeeded"
		elif grep -F "$want" "$tmp/err" | grep -q "^gen-provider: $tmp/bad.d:[23]: "; then
			ok "refuses $label"
			sed "s|$tmp/||; s/^/# /" "$tmp/err"
		else
			not_ok "refuses $label" "$(cat "$tmp/err")"
		fi
	done
	echo "$n $failed" > "$tmp/counts"
}
read -r n failed < "$tmp/counts"

[ "$n" -eq "$plan" ] || echo "# planned $plan tests, ran $n"
[ "$failed" -eq 0 ] && [ "$n" -eq "$plan" ]
