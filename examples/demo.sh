#!/bin/sh
# demo.sh: build and install mod_usdt on this Debian machine, enable it in
# the system Apache, and show live requests traced by bpftrace.
#
# Run as root from the source tree: sh examples/demo.sh
# It installs the build dependencies, apache2, bpftrace and curl; builds in
# ./_build; runs "make install" (the module into Apache's module directory,
# httpd.d into /usr/lib/dtrace); enables the module with a2enmod; restarts
# Apache with apache2ctl; then traces a few requests to http://127.0.0.1/.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
module=/usr/lib/apache2/modules/mod_usdt.so

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root: it installs packages, the module, and attaches a tracer" >&2
	exit 1
fi
sh "$top/tests/deps.sh" test

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh > /dev/null
mkdir -p _build && cd _build
"$top/configure" > configure.out || { cat configure.out; exit 1; }
sed -n '/^mod_usdt .* configured:/,$p' configure.out
make -j"$(nproc)" > make.out 2>&1 || { cat make.out; exit 1; }
make install > install.out 2>&1 || { cat install.out; exit 1; }
install -m 644 "$top/conf/usdt.load" "$top/conf/usdt.conf" /etc/apache2/mods-available/
a2enmod usdt > /dev/null
apache2ctl restart
echo "demo.sh: Apache restarted with mod_usdt ($(apache2ctl -M 2>/dev/null | grep usdt))"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
BPFTRACE_STRLEN=120 bpftrace -e "
usdt:$module:httpd:request__done
{
	printf(\"%-6d %3d %8d us  %-6s %s\n\", arg0, arg1, arg4, str(arg2), str(arg3));
}" > "$out" 2>&1 &
tracer=$!
# Wait for the tracer to attach (bounded), then send a few requests.
i=0
until grep -q '^Attaching' "$out" || [ $i -ge 30 ]; do sleep 1; i=$((i + 1)); done
for path in / /index.html?demo=1 /no-such-page /server-status; do
	curl -s -o /dev/null -A "mod_usdt demo" "http://127.0.0.1$path" || true
done
sleep 1
kill -INT "$tracer"
wait "$tracer" || true
echo "demo.sh: requests traced by bpftrace (id, status, latency, method, URI):"
grep -v -e RLIMIT_MEMLOCK -e 'failed to detach' -e 'uprobe_events' "$out"
