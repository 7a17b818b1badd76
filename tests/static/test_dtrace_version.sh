#!/bin/sh
# test_dtrace_version.sh: on DTrace platforms the header that "dtrace -h"
# generates defines real probe macros only "#if _DTRACE_VERSION", and
# Apache's ap_config.h does "#undef _DTRACE_VERSION".  src/usdt_probes.h
# must win: compile against a stand-in for such a generated header, after
# Apache's headers, the way src/mod_usdt.c includes them.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
CC=${CC:-cc}
APXS=${APXS:-$(command -v apxs2 || command -v apxs || echo apxs)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "1..2"
incs="-I$("$APXS" -q INCLUDEDIR) -I$("$APXS" -q APR_INCLUDEDIR)"

# What illumos' dtrace -h writes, reduced to the part that matters.
cat > "$tmp/httpd_provider.h" <<'EOS'
#if _DTRACE_VERSION
#define HTTPD_REQUEST_START_ENABLED() 1
#else
#define HTTPD_REQUEST_START_ENABLED() 0
#endif
EOS

# Control: included straight after Apache's headers, the probes vanish.
cat > "$tmp/plain.c" <<'EOS'
#include "httpd.h"
#include "httpd_provider.h"
int main(void) { return HTTPD_REQUEST_START_ENABLED() ? 0 : 1; }
EOS
# Through the module's wrapper, they stay.  (Copied beside the stand-in:
# a quoted include looks in the including file's directory first.)
cp "$srcdir/src/usdt_probes.h" "$srcdir/src/dthttpd.h" "$tmp/"
sh "$srcdir/dtrace/gen-provider" macros record "$srcdir/dtrace/mod_usdt.d" \
	> "$tmp/usdt_probe_macros.h"
cat > "$tmp/wrapped.c" <<'EOS'
#include "httpd.h"
#include "usdt_probes.h"
int main(void) { return USDT_REQUEST_START_ENABLED() ? 0 : 1; }
EOS

# shellcheck disable=SC2086
if $CC -I"$tmp" $incs -o "$tmp/plain" "$tmp/plain.c" 2> "$tmp/err" && ! "$tmp/plain"; then
	echo "ok 1 - control: ap_config.h turns a DTrace header's probes off"
else
	echo "not ok 1 - control: ap_config.h turns a DTrace header's probes off"
	sed 's/^/# /' "$tmp/err"
fi
# shellcheck disable=SC2086
if $CC -I"$tmp" $incs -o "$tmp/wrapped" "$tmp/wrapped.c" 2> "$tmp/err" &&
	"$tmp/wrapped"; then
	echo "ok 2 - usdt_probes.h keeps them on, after Apache's headers"
else
	echo "not ok 2 - usdt_probes.h keeps them on, after Apache's headers"
	sed 's/^/# /' "$tmp/err"
	exit 1
fi
