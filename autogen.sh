#!/bin/sh
# Regenerate the build system from configure.ac, Makefile.am and m4/.
set -eu
cd "$(dirname "$0")"
exec autoreconf --force --install --verbose
