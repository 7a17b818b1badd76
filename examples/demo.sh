#!/bin/sh
# demo.sh: the operator's path on this Debian machine: build the Debian
# package libapache2-mod-usdt, install it, enable the module in the system
# Apache, and show live requests traced by bpftrace.
#
# Run as root from the source tree: sh examples/demo.sh
# It installs apache2, bpftrace, curl and the package's build dependencies
# (apt-get build-dep, from debian/control); builds the package with
# "dpkg-buildpackage -us -uc -b" in a copy of the sources under /tmp (it
# builds in place, and the tree must stay clean for out-of-tree builds);
# installs it with "apt-get install ./libapache2-mod-usdt_*.deb"; enables
# the module with "a2enmod usdt"; restarts Apache with "apache2ctl restart";
# then traces a few requests to http://127.0.0.1/.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
module=/usr/lib/apache2/modules/mod_usdt.so

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: run as root: it installs packages, the module, and attaches a tracer" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
sh "$top/tests/deps.sh" package

# A private copy of the sources: what git tracks (and new files it does not
# ignore), or the whole unpacked tarball.
work=$(mktemp -d /tmp/mod_usdt-deb.XXXXXX)
mkdir "$work/src"
if [ -d "$top/.git" ] && command -v git > /dev/null; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -f "$f" ] && cp --parents -p "$f" "$0"; done' "$work/src")
else
	tar -C "$top" --exclude=./_build -cf - . | tar -C "$work/src" -xf -
fi
apt-get build-dep -y -q "$work/src" > "$work/build-dep.log" 2>&1 || { cat "$work/build-dep.log"; exit 1; }
echo "demo.sh: building the package in $work (dpkg-buildpackage -us -uc -b)"
(cd "$work/src" && dpkg-buildpackage -us -uc -b) > "$work/build.log" 2>&1 ||
	{ tail -n 60 "$work/build.log"; echo "demo.sh: the build failed: $work/build.log"; exit 1; }
rm -rf "$work/src"
ls "$work"/*.deb
apt-get install -y -q "$work"/libapache2-mod-usdt_*.deb > "$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; exit 1; }
echo "demo.sh: installed $(dpkg-query -W -f '${Package} ${Version}' libapache2-mod-usdt)"
a2enmod usdt
apache2ctl restart
i=0
until curl -s -o /dev/null http://127.0.0.1/ || [ $i -ge 20 ]; do sleep 0.5; i=$((i + 1)); done
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
