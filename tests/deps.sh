#!/bin/sh
# deps.sh: install what building mod_usdt and running its tests need, from
# Debian's archive.  Does nothing when everything is already installed;
# otherwise needs root (apt-get).
#
# Usage: tests/deps.sh [build|package|test]    (default: test, which includes
# the others).  package: what building the Debian package with
# dpkg-buildpackage needs (debian/control's Build-Depends), plus Apache,
# bpftrace and curl to use it (examples/demo.sh).
set -eu

cross_pkgs="gcc-aarch64-linux-gnu gcc-arm-linux-gnueabi gcc-arm-linux-gnueabihf
	gcc-i686-linux-gnu gcc-mips64el-linux-gnuabi64 gcc-powerpc64le-linux-gnu
	gcc-s390x-linux-gnu binutils-aarch64-linux-gnu"
build_pkgs="autoconf automake libtool libtool-bin pkg-config make gcc libc6-dev
	apache2-dev libapr1-dev systemtap-sdt-dev"
test_pkgs="apache2 libcmocka-dev bpftrace curl nghttp2-client python3 binutils openssl
	apache2-utils debootstrap wrk valgrind devscripts gdb linux-perf
	bpfcc-tools linux-headers-$(dpkg --print-architecture) tmux man-db $cross_pkgs"
# The cross compilers (with their binutils) of Debian's other release
# architectures: tests/static/test_sdt_notes.py reads the probe notes they
# write, and test_probes.sh disassembles the arm64 module of
# tests/reliability/test_arm64.py with aarch64-linux-gnu-objdump.  All seven
# install in 39 s here (246 MB of downloads; apt-get install
# --no-install-recommends, timed on the shared Debian 12 test machine).
# What ../shared/tools/dtrace-utils/build.sh builds Oracle's dtrace-utils
# with, for tests/static/test_dtrace_real.sh (it installs them itself too).
dtrace_pkgs="gcc-bpf binutils-bpf libbpf-dev binutils-dev libelf-dev zlib1g-dev
	bison flex libpcap-dev libfuse3-dev libsystemd-dev libpfm4-dev pkg-config gawk
	xz-utils libc6-dev-i386"
# what the httpd-tests suite's run.sh installs (tests/httpd-suite): Apache::Test
# from mod_perl, and the Perl clients its tests use (HTTP/1.1, DAV, HTTP/2,
# TLS, websockets); installed here so that CI has them before it runs
suite_pkgs="libapache2-mod-perl2 libwww-perl libhttp-dav-perl libprotocol-http2-perl
	libio-socket-ssl-perl libcrypt-ssleay-perl libhttp-daemon-perl liblwp-protocol-https-perl
	libanyevent-perl libanyevent-websocket-client-perl libdatetime-perl openssl xz-utils"
# wrk and valgrind: tests/bench; devscripts: hardening-check in
# tests/reliability/test_security.py; gdb: the backtraces of a crashed
# child's core, if a test ever finds one; openssl: the live tests' TLS
# certificates.  tests/tools: linux-perf
# (test_perf.py), bpfcc-tools and Debian's kernel headers, which BCC
# compiles against when the running kernel has none of its own
# (test_bcc.py), tmux (http-top's screen, test_http_top.py).  dh_apache2
# comes with apache2-dev; tests/package checks the package with lintian and
# runs its autopkgtests.  man-db: tests/static/test_manpage.py runs
# man --warnings on doc/mod_usdt.7, as lintian does.
deb_pkgs="dpkg-dev debhelper fakeroot libcmocka-dev python3"
deb_check_pkgs="lintian autopkgtest"

case "${1:-test}" in
build) pkgs=$build_pkgs ;;
package) pkgs="$build_pkgs $deb_pkgs apache2 bpftrace curl" ;;
test) pkgs="$build_pkgs $test_pkgs $suite_pkgs $deb_pkgs $deb_check_pkgs $dtrace_pkgs" ;;
*) echo "usage: $0 [build|package|test]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
	status=$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing Debian packages:$missing" >&2
	echo "deps.sh: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q || echo "deps.sh: apt-get update reported errors; trying the install with the lists it has"
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
