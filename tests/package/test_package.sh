#!/bin/sh
# test_package.sh: the Debian package libapache2-mod-usdt, the way an operator
# gets it: dpkg-buildpackage -us -uc -b, lintian --pedantic, then on this
# machine apt-get install ./libapache2-mod-usdt_*.deb, a2enmod usdt,
# apache2ctl restart, a request traced with bpftrace through the installed
# module, the autopkgtests (autopkgtest --- null), an upgrade that keeps an
# admin's a2dismod, remove, and purge with nothing left behind.
#
# The package is built from "make distdir" of the build tree (so debian/ must
# be in EXTRA_DIST), or from the files git tracks when there is no build
# tree, in a private temp dir: never in $srcdir, which must stay clean for
# VPATH builds.  It installs and purges the package on this machine and
# restarts the system Apache (http://127.0.0.1/ only); at the end Apache runs
# or is stopped as it was found, and a libapache2-mod-usdt that was installed
# before is installed again (this build).
#
# Needs root, dpkg-buildpackage, lintian, autopkgtest, apt-get, apache2,
# bpftrace and curl: skips without them, except with CI=true, where that is a
# failure.  USDT_LIVE_TESTS=no skips it (tests/run.sh's distcheck).  Prints
# TAP; KEEP_TMP=1 keeps the temp dir (build logs, packages).
set -eu

srcdir=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${builddir:-}
pkg=libapache2-mod-usdt
module=/usr/lib/apache2/modules/mod_usdt.so
url=http://127.0.0.1
apt_opts="-y -q -o DPkg::Lock::Timeout=300"
plan=19

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift
	for f in "$@"; do
		if [ -f "$f" ]; then tail -n 40 "$f" | sed 's/^/# /'; else echo "# $f"; fi
	done
}
diag() { echo "# $*"; }
# check DESC COMMAND...: ok if COMMAND succeeds; its output goes to $tmp/out,
# shown when it fails.
check() {
	desc=$1; shift
	if "$@" > "$tmp/out" 2>&1; then ok "$desc"; else not_ok "$desc" "$tmp/out"; fi
}
# fail_rest REASON: every check not yet run fails (we cannot go on).
fail_rest() { while [ "$n" -lt "$plan" ]; do not_ok "$1"; done; }
skip_all() {
	echo "1..$plan"
	i=1
	while [ $i -le $plan ]; do echo "ok $i - Debian package # SKIP $1"; i=$((i + 1)); done
	exit 0
}

# ---------------------------------------------------------------------------
# Can this machine run it?

if [ "${USDT_LIVE_TESTS:-}" = no ]; then
	skip_all "live tests turned off (USDT_LIVE_TESTS=no)"
fi
why=
if [ "$(id -u)" -ne 0 ]; then
	why="not root (the package test installs and purges a package)"
else
	for tool in dpkg-buildpackage dpkg-checkbuilddeps lintian autopkgtest apt-get \
		apache2ctl a2enmod bpftrace curl readelf; do
		command -v "$tool" > /dev/null 2>&1 ||
			{ why="no $tool (sh tests/deps.sh installs it)"; break; }
	done
fi
if [ -n "$why" ]; then
	if [ "${CI:-}" = true ]; then
		echo "1..$plan"
		fail_rest "Debian package: $why (CI=true: the package test must not skip)"
		exit 1
	fi
	skip_all "$why"
fi

echo "1..$plan"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/usdt-package.XXXXXX")
chmod 755 "$tmp"
version=$(sed -n 's/^AC_INIT(\[mod_usdt\], *\[\([^]]*\)\].*/\1/p' "$srcdir/configure.ac")
arch=$(dpkg --print-architecture)
deb=$tmp/${pkg}_${version}_$arch.deb
dbgsym=$tmp/${pkg}-dbgsym_${version}_$arch.deb
src=$tmp/$pkg-$version

apache_pid() {
	pidfile=$(set +u; . /etc/apache2/envvars && echo "${APACHE_PID_FILE:-/var/run/apache2/apache2.pid}")
	[ -s "$pidfile" ] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null && echo "$pid"
}
pkg_status() { dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null || echo not-installed; }
wait_for() {
	tries=$(($1 * 2)); shift
	while ! "$@" > /dev/null 2>&1; do
		tries=$((tries - 1)); [ "$tries" -gt 0 ] || return 1; sleep 0.5
	done
}

apache_ran=no
pid=$(apache_pid) && apache_ran=yes
was_installed=no
[ "$(pkg_status)" = installed ] && was_installed=yes
tracer=
restore() {
	set +e
	[ -z "$tracer" ] || { kill -INT "$tracer"; wait "$tracer"; } 2>/dev/null
	if [ "$(pkg_status)" != not-installed ] && [ "$was_installed" = no ]; then
		diag "restore: purging $pkg"
		apt-get purge $apt_opts "$pkg" > /dev/null 2>&1
	fi
	if [ "$was_installed" = yes ] && [ "$(pkg_status)" != installed ] && [ -f "$deb" ]; then
		diag "restore: $pkg was installed before the test: installing this build again"
		apt-get install $apt_opts "$deb" > /dev/null 2>&1
	fi
	if pid=$(apache_pid); then
		if [ "$apache_ran" = no ]; then
			diag "restore: stopping the Apache the test started ($pid)"
			apache2ctl stop > /dev/null 2>&1
			wait_for 20 sh -c "! kill -0 $pid"
		else
			apache2ctl restart > /dev/null 2>&1
		fi
	fi
	if [ -n "${KEEP_TMP:-}" ]; then diag "kept $tmp"; else rm -rf "$tmp"; fi
}
trap restore EXIT
trap 'exit 143' TERM INT

# ---------------------------------------------------------------------------
# 1. The sources, in a private copy

# The copy runs with none of "make check"'s variables: they would reach the
# package's own build and its tests.
clean_env="env -u srcdir -u builddir -u USDT_MODULE -u READELF -u BPFTRACE -u CC
	-u CMOCKA_MESSAGE_OUTPUT -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES
	-u GNUMAKEFLAGS"
if [ -n "$builddir" ] && [ -f "$builddir/Makefile" ]; then
	# What "make dist" ships: debian/ must be in EXTRA_DIST.
	$clean_env make -s -C "$builddir" distdir distdir="$src" top_distdir="$src" \
		> "$tmp/distdir.log" 2>&1 || { not_ok "make distdir" "$tmp/distdir.log"; fail_rest "no sources"; exit 1; }
	missing=""
	for f in $(cd "$srcdir" && find debian -type f | sort); do
		[ -f "$src/$f" ] || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		ok "make dist ships every file of debian/ (EXTRA_DIST)"
	else
		not_ok "make dist ships every file of debian/ (EXTRA_DIST)" "missing:$missing"
	fi
else
	mkdir "$src"
	(cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -f "$f" ] && cp --parents -p "$f" "$0"; done' "$src") \
		> "$tmp/copy.log" 2>&1 || { not_ok "copy the sources" "$tmp/copy.log"; fail_rest "no sources"; exit 1; }
	ok "sources copied from git (no build tree: EXTRA_DIST not checked)"
fi

# ---------------------------------------------------------------------------
# 2-8. Build, lint, inspect

if (cd "$src" && $clean_env timeout 600 dpkg-buildpackage -us -uc -b) > "$tmp/build.log" 2>&1 &&
	[ -f "$deb" ] && [ -f "$dbgsym" ]; then
	ok "dpkg-buildpackage -us -uc -b builds $pkg and its -dbgsym"
else
	not_ok "dpkg-buildpackage -us -uc -b builds $pkg and its -dbgsym" "$tmp/build.log"
	ls "$tmp" | sed 's/^/# built: /'
	fail_rest "the package did not build"
	exit 1
fi

# The .changes: the package, its -dbgsym and the .buildinfo.  lintian exits
# non-zero on an error or warning tag, and on its own failures.
lintian_clean() {
	rc=0
	timeout 300 lintian --pedantic --display-info --display-experimental --show-overrides \
		--fail-on error,warning "$tmp/${pkg}_${version}_$arch.changes" > "$tmp/lintian" 2>&1 || rc=$?
	grep -v 'running with root privileges' "$tmp/lintian" | sed 's/^/lintian: /'
	[ "$rc" -eq 0 ] && ! grep -q '^[EW]: ' "$tmp/lintian"
}
if lintian_clean > "$tmp/out" 2>&1; then
	ok "lintian --pedantic: no error, no warning"
	sed 's/^/# /' "$tmp/out"
else
	not_ok "lintian --pedantic: no error, no warning" "$tmp/out"
fi

overrides_commented() {
	for f in $(find "$src/debian" -name '*lintian-overrides' -type f); do
		awk -v f="${f#"$src"/}" '
			/^#/ { c = 1; next }
			/^[ \t]*$/ { c = 0; next }
			!c { print f ": override without a comment: " $0; bad = 1 }
			END { exit bad }' "$f" || return 1
	done
}
check "every lintian override has a comment that justifies it" overrides_commented

dpkg-deb -f "$deb" > "$tmp/control"
dpkg-deb -e "$deb" "$tmp/DEBIAN"
field() { dpkg-deb -f "$deb" "$1"; }
control_fields() {
	cat "$tmp/control"
	[ "$(field Package)" = "$pkg" ] || { echo "Package: $(field Package)"; return 1; }
	[ "$(field Version)" = "$version" ] ||
		{ echo "Version $(field Version), configure.ac says $version: update debian/changelog (dch)"; return 1; }
	[ "$(field Architecture)" = "$arch" ] || { echo "Architecture: $(field Architecture)"; return 1; }
	[ "$(field Section)" = httpd ] || { echo "Section: $(field Section), want httpd"; return 1; }
	[ "$(field Priority)" = optional ] || { echo "Priority: $(field Priority)"; return 1; }
	field Maintainer | grep -q '<.*@.*>' || { echo "no Maintainer address"; return 1; }
	field Depends | grep -q 'apache2-api-[0-9]' || { echo "no apache2-api-* dependency from dh_apache2"; return 1; }
	# dh_apache2 adds apache2-api-*; a hand-written "apache2" would pull the
	# whole server in where apache2-bin is enough.
	field Depends | tr ',|' '\n\n' | sed 's/^ *//; s/ *(.*//' | grep -qx apache2 &&
		{ echo "Depends names apache2 itself"; return 1; }
	printf '/etc/apache2/mods-available/usdt.conf\n/etc/apache2/mods-available/usdt.load\n' > "$tmp/want-conffiles"
	sort "$tmp/DEBIAN/conffiles" | diff -u "$tmp/want-conffiles" - || return 1
}
check "control fields: $pkg $version $arch, Section httpd, apache2-api-* from dh_apache2, usdt.load and usdt.conf are conffiles" control_fields

maintscripts_from_dh_apache2() {
	[ ! -e "$tmp/DEBIAN/preinst" ] || { echo "a preinst"; return 1; }
	[ ! -e "$tmp/DEBIAN/config" ] || { echo "a debconf config script"; return 1; }
	for s in postinst prerm postrm; do
		[ -f "$tmp/DEBIAN/$s" ] || { echo "no $s"; return 1; }
		# Outside the debhelper sections, only "#!/bin/sh" and "set -e".
		awk -v s="$s" '
			/^# Automatically added by / { inside = 1
				if ($0 !~ /by dh_apache2/) { print s ": " $0; bad = 1 } next }
			/^# End automatically added section/ { inside = 0; next }
			!inside && $0 !~ /^(#!\/bin\/sh|set -e|)$/ { print s ": " $0; bad = 1 }
			END { exit bad }' "$tmp/DEBIAN/$s" || return 1
	done
	grep -q 'apache2_invoke enmod' "$tmp/DEBIAN/postinst" &&
		grep -q 'apache2_invoke dismod' "$tmp/DEBIAN/prerm" &&
		grep -q 'apache2_invoke dismod' "$tmp/DEBIAN/postrm"
}
check "maintainer scripts: postinst, prerm, postrm, only from dh_apache2" maintscripts_from_dh_apache2

doc=/usr/share/doc/$pkg
file_list() {
	dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|; s|/$||' | grep . | sort > "$tmp/files"
	cat "$tmp/files"
	bad=0
	for f in "$module" /etc/apache2/mods-available/usdt.load /etc/apache2/mods-available/usdt.conf \
		/usr/lib/dtrace/httpd.d "$doc/copyright" "$doc/changelog.gz" "$doc/README.md.gz" \
		/usr/share/man/man7/mod_usdt.7.gz; do
		grep -qx "$f" "$tmp/files" || { echo "missing: $f"; bad=1; }
	done
	# The README's long figures, where its links find them (dh_compress
	# leaves a file under 4 KiB as it is).
	for f in reliability.md performance.md dtrace.md tracers.md tools.md; do
		grep -qx -e "$doc/docs/$f" -e "$doc/docs/$f.gz" "$tmp/files" ||
			{ echo "missing: $doc/docs/$f(.gz)"; bad=1; }
	done
	# The examples, once and uncompressed (bpftrace and dtrace read them as
	# they are): the D scripts and the tools generated from NAME.bt.in, and
	# whatever else make install put in $(docdir)/examples (debian/tmp).
	examples=$(cd "$srcdir/examples" 2>/dev/null && ls *.d *.bt.in 2>/dev/null | sed 's/\.in$//') || true
	installed=$(cd "$src/debian/tmp$doc/examples" 2>/dev/null && find . -type f | sed 's|^\./||') || true
	for f in $examples $installed; do
		grep -qx "$doc/examples/$f" "$tmp/files" || { echo "missing example: $doc/examples/$f"; bad=1; }
	done
	if grep -e '\.la$' -e '^/usr/lib64' -e '^/usr/local' -e '/examples/.*/examples' \
		-e '/examples/.*\.gz$' "$tmp/files"; then
		echo "^ not in a Debian package"; bad=1
	fi
	if grep -v -e '^/etc/apache2/mods-available' -e '^/usr/lib/apache2/modules' \
		-e '^/usr/lib/dtrace' -e "^$doc" -e '^/etc$' -e '^/etc/apache2$' -e '^/usr$' \
		-e '^/usr/lib$' -e '^/usr/lib/apache2$' -e '^/usr/share$' -e '^/usr/share/doc$' \
		-e '^/usr/share/man$' -e '^/usr/share/man/man7$' -e '^/usr/share/man/man7/mod_usdt\.7\.gz$' \
		-e "^/usr/share/lintian\(/overrides\(/$pkg\)\{0,1\}\)\{0,1\}$" "$tmp/files"; then
		echo "^ unexpected in the package"; bad=1
	fi
	return $bad
}
check "file list: the module, usdt.load, usdt.conf, httpd.d, README and docs/, mod_usdt.7, changelog, copyright, examples; no .la, no /usr/lib64" file_list

stripped_with_probes() {
	rm -rf "$tmp/x" "$tmp/dbg" && dpkg-deb -x "$deb" "$tmp/x" && dpkg-deb -x "$dbgsym" "$tmp/dbg"
	so=$tmp/x$module
	readelf -S -W "$so" > "$tmp/sections"
	if grep -e ' \.symtab ' -e ' \.debug_' "$tmp/sections"; then echo "^ not stripped"; return 1; fi
	readelf -n "$so" | tee "$tmp/notes"
	for p in request__start request__done; do
		awk -v p="$p" '/Provider: httpd/ { h = 1; next } /Provider:/ { h = 0 }
			h && $1 == "Name:" && $2 == p { found = 1 }
			found && /Semaphore:/ { exit !($NF ~ /^0x0*[1-9a-f]/) }
			END { if (!found) exit 1 }' "$tmp/notes" || { echo "no httpd:$p with a semaphore"; return 1; }
	done
	grep -q ' \.probes ' "$tmp/sections" || { echo "no .probes section"; return 1; }
	id=$(readelf -n "$so" | awk '/Build ID:/ { print $3 }')
	debug=$tmp/dbg/usr/lib/debug/.build-id/$(echo "$id" | cut -c1-2)/$(echo "$id" | cut -c3-).debug
	[ -f "$debug" ] || { echo "no $debug in the -dbgsym package"; return 1; }
	readelf -S -W "$debug" | grep -q ' \.debug_info ' || { echo "$debug has no .debug_info"; return 1; }
}
check "the module is stripped, keeps its httpd probes, semaphores and .probes, and -dbgsym has its debug info" stripped_with_probes

# ---------------------------------------------------------------------------
# 9-12. Install, enable, restart, trace: the operator's path

# Leftovers of a "make install" (an earlier demo.sh) at the package's paths
# are not a fresh machine: remove them, and a previous install of the package.
if [ "$(pkg_status)" != not-installed ]; then
	diag "$pkg is installed already ($(pkg_status)): purging it first"
	apt-get purge $apt_opts "$pkg" > "$tmp/prepurge.log" 2>&1 || cat "$tmp/prepurge.log" | sed 's/^/# /'
fi
for f in "$module" /usr/lib/dtrace/httpd.d /etc/apache2/mods-available/usdt.load \
	/etc/apache2/mods-available/usdt.conf; do
	if [ -e "$f" ] && ! dpkg -S "$f" > /dev/null 2>&1; then
		diag "removing $f, left by a make install"
		rm -f "$f"
	fi
done
for f in /etc/apache2/mods-enabled/usdt.load /etc/apache2/mods-enabled/usdt.conf \
	/var/lib/apache2/module/*/usdt; do
	[ ! -e "$f" ] && [ ! -L "$f" ] || { diag "removing $f, left by a make install"; rm -f "$f"; }
done

installed_files() {
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install $apt_opts "$deb" || return 1
	[ "$(pkg_status)" = installed ] || { echo "status $(pkg_status)"; return 1; }
	dpkg -L "$pkg" > "$tmp/dpkg-L"
	while read -r f; do [ -e "$f" ] || { echo "missing after install: $f"; return 1; }; done < "$tmp/dpkg-L"
}
check "apt-get install ./$(basename "$deb") installs it" installed_files

enabled_by_install() {
	ls -l /etc/apache2/mods-enabled/usdt.load /etc/apache2/mods-enabled/usdt.conf &&
		a2query -m usdt
}
check "installing enabled the module (mods-enabled/usdt.load and usdt.conf)" enabled_by_install

serves_with_module() {
	a2enmod usdt && apache2ctl configtest && apache2ctl restart || return 1
	wait_for 20 apache_pid || { echo "Apache did not start"; return 1; }
	wait_for 20 curl -sf -o /dev/null "$url/" || { echo "Apache does not serve $url/"; return 1; }
	apache2ctl -M 2>/dev/null | grep -x ' usdt_module (shared)' || { echo "usdt_module not listed"; return 1; }
	wait_for 10 grep -q "$module" "/proc/$(apache_pid)/maps" || { echo "Apache does not map $module"; return 1; }
}
check "a2enmod usdt, apache2ctl restart: Apache serves $url/ and lists usdt_module" serves_with_module

traced() {
	uri="/usdt-package-test-$$?traced=1"
	BPFTRACE_STRLEN=64 bpftrace -e "usdt:$module:httpd:request__done
		{ printf(\"%d %d %s %s\\n\", arg0, arg1, str(arg2), str(arg3)); }" > "$tmp/trace" 2>&1 &
	tracer=$!
	wait_for 60 grep -q '^Attaching 1 probe' "$tmp/trace" && curl -s -o /dev/null "$url$uri" &&
		wait_for 10 grep -q " 404 GET $uri\$" "$tmp/trace" || true
	kill -INT "$tracer"; wait "$tracer" || true
	tracer=
	grep -v -e RLIMIT_MEMLOCK -e uprobe_events -e 'failed to detach' "$tmp/trace"
	grep -q "^[0-9][0-9]* 404 GET $uri\$" "$tmp/trace"
}
check "bpftrace attached to $module traces a request (404 GET with its URI)" traced

# ---------------------------------------------------------------------------
# 13-15. The autopkgtests, on this machine

# autopkgtest installs the .deb again (the same version) and runs each test
# of debian/tests/control from the built tree.
(cd "$tmp" && $clean_env timeout 600 autopkgtest "$deb" "$src/" --- null) > "$tmp/autopkgtest.log" 2>&1 || true
for t in module-loads probe-notes trace-request; do
	result=$(sed -n '/@@@@ summary/,$p' "$tmp/autopkgtest.log" | awk -v t="$t" '$1 == t { print $2 }')
	if [ "$result" = PASS ]; then
		ok "autopkgtest --- null: $t"
	else
		not_ok "autopkgtest --- null: $t (${result:-no result})"
		sed -n "/test $t: \[---/,/test $t:  - - -/p" "$tmp/autopkgtest.log" | tail -n 40 | sed 's/^/# /'
		[ -n "$result" ] || tail -n 20 "$tmp/autopkgtest.log" | sed 's/^/# /'
	fi
done

# ---------------------------------------------------------------------------
# 16-19. Upgrade, remove, purge

# The same package with a higher version: a real upgrade (prerm upgrade,
# postinst configure OLD-VERSION) with no second build.
admin_disable_survives() {
	[ "$(pkg_status)" = installed ] || apt-get install $apt_opts "$deb" || return 1
	a2dismod usdt || return 1
	rm -rf "$tmp/up" && dpkg-deb -R "$deb" "$tmp/up" &&
		sed -i "s/^Version: .*/Version: $version+upgrade1/" "$tmp/up/DEBIAN/control" &&
		dpkg-deb -b "$tmp/up" "$tmp/upgrade.deb" || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install $apt_opts "$tmp/upgrade.deb" || return 1
	[ "$(dpkg-query -W -f '${Version}' "$pkg")" = "$version+upgrade1" ] || { echo "not upgraded"; return 1; }
	if [ -e /etc/apache2/mods-enabled/usdt.load ]; then echo "the upgrade enabled usdt again"; return 1; fi
	a2query -m usdt; [ $? -eq 32 ] || { echo "a2query does not say disabled by admin"; return 1; }
}
check "an admin's a2dismod usdt survives an upgrade" admin_disable_survives

removed() {
	a2enmod usdt && [ -L /etc/apache2/mods-enabled/usdt.load ] || return 1
	DEBIAN_FRONTEND=noninteractive apt-get remove $apt_opts "$pkg" || return 1
	[ "$(pkg_status)" = config-files ] || { echo "status $(pkg_status), want config-files"; return 1; }
	for f in /etc/apache2/mods-enabled/usdt.load /etc/apache2/mods-enabled/usdt.conf "$module" \
		/usr/lib/dtrace/httpd.d "$doc"; do
		if [ -e "$f" ] || [ -L "$f" ]; then echo "still there after remove: $f"; return 1; fi
	done
	[ -f /etc/apache2/mods-available/usdt.load ] || { echo "remove took the conffiles"; return 1; }
	apache2ctl configtest
}
check "apt-get remove disables the module, keeps only its conffiles, and Apache's config stays valid" removed

purged() {
	DEBIAN_FRONTEND=noninteractive apt-get purge $apt_opts "$pkg" || return 1
	[ "$(pkg_status)" = not-installed ] || { echo "status $(pkg_status)"; return 1; }
	dpkg -L "$pkg" 2>/dev/null && { echo "dpkg -L still lists files"; return 1; }
	left=""
	while read -r f; do
		[ "$f" != /. ] || continue
		[ -e "$f" ] || [ -L "$f" ] || continue
		if [ -d "$f" ] && [ ! -L "$f" ] && dpkg -S "$f" > /dev/null 2>&1; then continue; fi
		left="$left $f"
	done < "$tmp/dpkg-L"
	for f in /etc/apache2/mods-available/usdt.* /etc/apache2/mods-enabled/usdt.* \
		/var/lib/apache2/module/*/usdt /var/lib/dpkg/info/$pkg.*; do
		[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
	done
	[ -z "$left" ] || { echo "left behind:$left"; return 1; }
	apache2ctl configtest
}
check "apt-get purge leaves nothing behind (files, conffiles, mods-enabled, a2enmod state)" purged

apache_back() {
	if [ "$apache_ran" = yes ]; then
		apache2ctl restart && wait_for 20 curl -sf -o /dev/null "$url/" || return 1
		echo "Apache was running: restarted, without mod_usdt"
		! grep -q "$module" "/proc/$(apache_pid)/maps"
	else
		pid=$(apache_pid) || { echo "Apache was stopped and is"; return 0; }
		apache2ctl stop && wait_for 20 sh -c "! kill -0 $pid"
	fi
}
check "the system Apache is back as it was ($( [ "$apache_ran" = yes ] && echo running || echo stopped))" apache_back

[ "$n" -eq "$plan" ] || { echo "# ran $n checks, planned $plan"; failed=$((failed + 1)); }
[ "$failed" -eq 0 ]
