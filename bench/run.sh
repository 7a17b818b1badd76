#!/bin/sh
# run.sh: the overhead benchmark, from a clean checkout, in one command.
#
# Installs what it needs (tests/deps.sh, wrk, valgrind), builds in ./_build,
# then runs bench/instructions.py (exact instruction counts under callgrind)
# and bench/overhead.py (interleaved throughput and CPU per request of five
# variants of one Apache).  Run as root: sh bench/run.sh [overhead.py options]
# Takes about 6 minutes on a 2-core machine; loopback traffic only.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/run.sh: run as root (bpftrace, and writing semaphores for callgrind)" >&2
	exit 1
fi
sh "$top/tests/deps.sh" test
for p in wrk valgrind; do
	command -v "$p" > /dev/null || {
		apt-get update -q || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk valgrind
		break
	}
done

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh > /dev/null
mkdir -p _build
cd _build
[ -f Makefile ] || "$top/configure" > configure.out
make -j"$(nproc)" > make.out 2>&1 || { cat make.out; exit 1; }

export srcdir="$top" builddir="$top/_build" USDT_MODULE="$top/_build/src/.libs/mod_usdt.so"
echo "== instructions per request (callgrind)"
python3 "$top/bench/instructions.py"
echo
echo "== throughput and CPU per request (interleaved)"
python3 "$top/bench/overhead.py" "$@"
