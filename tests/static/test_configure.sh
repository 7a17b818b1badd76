#!/bin/sh
# test_configure.sh: configure stops with a clear message, naming the option
# to use, on bad input: a wrong --with-apxs, an apxs that does not work, a
# wrong --with-dtrace, a dtrace of no known kind, and a 32/64-bit mismatch
# between the compiler and Apache.  And it succeeds on every dtrace route
# this machine has, printing its summary.
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
configure=$srcdir/configure
n=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# expect_error DESC PATTERN CONFIGURE-ARGS...: configure must fail and say PATTERN.
expect_error() {
	desc=$1 pattern=$2
	shift 2
	n=$((n + 1))
	rm -rf "$tmp/b" && mkdir "$tmp/b"
	if (cd "$tmp/b" && "$configure" "$@" > out 2>&1); then
		failed=$((failed + 1)); echo "not ok $n - $desc: configure succeeded"
	elif grep -q "$pattern" "$tmp/b/out"; then
		echo "ok $n - $desc"
		grep 'error:' "$tmp/b/out" | head -n 1 | sed 's/^/# /'
	else
		failed=$((failed + 1)); echo "not ok $n - $desc: no \"$pattern\" in:"
		tail -n 5 "$tmp/b/out" | sed 's/^/# /'
	fi
}

# expect_route DESC ROUTE CONFIGURE-ARGS...: configure must pick ROUTE.
expect_route() {
	desc=$1 route=$2
	shift 2
	n=$((n + 1))
	rm -rf "$tmp/b" && mkdir "$tmp/b"
	if (cd "$tmp/b" && "$configure" "$@" > out 2>&1) &&
		grep -q "dtrace route \.* $route " "$tmp/b/out"; then
		echo "ok $n - $desc"
		grep 'dtrace route' "$tmp/b/out" | sed 's/^/# /'
	else
		failed=$((failed + 1)); echo "not ok $n - $desc"
		tail -n 12 "$tmp/b/out" | sed 's/^/# /'
	fi
}

real_apxs=$(command -v apxs2 || command -v apxs || echo /usr/bin/apxs2)

# An apxs that answers like the real one, but for an Apache whose binary is
# 32-bit: SBINDIR points at a file with a 32-bit ELF header.
mkdir -p "$tmp/sbin"
printf '\177ELF\001\001\001' > "$tmp/sbin/apache2"
cat > "$tmp/apxs32" <<EOS
#!/bin/sh
case "\$2" in
SBINDIR) echo "$tmp/sbin" ;;
TARGET) echo apache2 ;;
*) exec "$real_apxs" "\$@" ;;
esac
EOS
chmod +x "$tmp/apxs32"
printf '#!/bin/sh\nexit 0\n' > "$tmp/not-a-dtrace"
chmod +x "$tmp/not-a-dtrace"

echo "1..7"
if [ -f "$srcdir/config.status" ]; then
	# configure refuses a VPATH build of a source tree configured in place.
	for i in 1 2 3 4 5 6 7; do
		echo "ok $i - configure on bad input # SKIP $srcdir is configured in place (make distclean there, or build out of tree)"
	done
	exit 0
fi
expect_error "--with-apxs naming a missing file" "with-apxs=/nonexistent/apxs: no such executable" \
	--with-apxs=/nonexistent/apxs
expect_error "--with-apxs naming a program that is not apxs" "is not a working apxs" \
	--with-apxs=/bin/true
expect_error "--with-dtrace naming a missing file" "with-dtrace=/nonexistent/dtrace: no such executable" \
	--with-dtrace=/nonexistent/dtrace
expect_error "--with-dtrace naming a program that is no dtrace" "neither a real DTrace" \
	--with-dtrace="$tmp/not-a-dtrace"
expect_error "a 64-bit compiler for a 32-bit Apache" "data model mismatch: Apache is ILP32" \
	--with-apxs="$tmp/apxs32"
expect_route "the in-tree shim, when asked for" shim \
	--with-dtrace="$srcdir/dtrace/dtrace-shim"
if [ -x /usr/bin/dtrace ] && grep -qi systemtap /usr/bin/dtrace; then
	expect_route "SystemTap's dtrace, found on PATH" systemtap
else
	n=$((n + 1)); echo "ok $n - SystemTap's dtrace, found on PATH # SKIP no SystemTap dtrace here"
fi
[ "$failed" -eq 0 ]
