#!/bin/sh
# run.sh: the whole test suite, from a fresh Debian 12 machine.
#
# Installs the build and test dependencies (tests/deps.sh), builds out of
# tree in ./_build with warnings as errors, runs "make check" (unit, static
# and live tests; the live tests need root and bpftrace, and skip without
# them unless CI=true), then "make distcheck" (with the live tests off, as
# they already ran), and ends with one line "N passed, N failed".
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${USDT_BUILD_DIR:-$top/_build}
jobs=$(nproc 2>/dev/null || echo 2)

sh "$top/tests/deps.sh" test

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh > /dev/null
mkdir -p "$build"
cd "$build"
"$top/configure" --enable-werror
make -j"$jobs"

check_status=0
# CI runs the slow tests too (tests/reliability/test_i386.py: an i386 chroot).
if [ "${CI:-}" = true ]; then
	export USDT_SLOW_TESTS="${USDT_SLOW_TESTS:-1}"
fi
make -j1 check || check_status=$?
# Show each failing test's log, so CI output says why.
for log in $(find . -name '*.log' ! -name config.log ! -name test-suite.log); do
	trs=${log%.log}.trs
	if [ -f "$trs" ] && grep -Eq ':test-result: (FAIL|ERROR|XPASS)' "$trs"; then
		echo "==== $log"; cat "$log"
	fi
done

distcheck=pass
USDT_LIVE_TESTS=no make -j"$jobs" distcheck > distcheck.log 2>&1 || distcheck=fail
[ "$distcheck" = pass ] || tail -n 60 distcheck.log

# Count results from the test logs: each TAP line is one result.
count() { cat $(find . -path ./mod_usdt-\* -prune -o -name '*.trs' -print) 2>/dev/null |
	grep -c "^:test-result: $1" || true; }
passed=$(( $(count PASS) + $(count XFAIL) ))
failed=$(( $(count FAIL) + $(count XPASS) + $(count ERROR) ))
skipped=$(count SKIP)
if [ "$distcheck" = pass ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "make check: exit $check_status; make distcheck: $distcheck"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$check_status" -eq 0 ] && [ "$distcheck" = pass ] && [ "$failed" -eq 0 ]
