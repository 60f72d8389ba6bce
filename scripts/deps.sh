#!/bin/sh
# deps.sh — makes sure the Debian packages bnlab needs are installed.
# The Makefile runs it before every build; run it by hand to see what's missing.
#   scripts/deps.sh          install what is missing (as root), or print the command
#   scripts/deps.sh --list   print the package list and exit
# Set BNLAB_NO_DEPS=1 to skip it (packagers, non-Debian systems).
set -u

# Required: compiler tools, GSL (RNG, statistics oracle, CBLAS), Check (tests),
# gnuplot (figures), zlib and OpenBLAS (the chapters' data and GEMM), and the
# Fashion-MNIST data set the chapters train on.
PACKAGES="build-essential pkg-config libgsl-dev check libsubunit-dev gnuplot-nox
zlib1g-dev libopenblas-dev dataset-fashion-mnist"

if [ "${1:-}" = "--list" ]; then
    echo $PACKAGES
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps.sh: not a Debian system; install the equivalents of: $(echo $PACKAGES)" >&2
    echo "deps.sh: then run make with BNLAB_NO_DEPS=1" >&2
    exit 1
fi

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps.sh: missing Debian packages:$missing" >&2
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: run this, then make again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing them with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q $missing; } >&2; then
    echo "deps.sh: apt-get failed; see above" >&2
    exit 1
fi
exit 0
