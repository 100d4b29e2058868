#!/usr/bin/env bash
# run.sh: runs every benchmark (build/bench/bench_* binaries and tests/bench/*.sh scripts) and
# prints their figures. Figures go into BENCHMARKS.md by hand, with the date and this command.
set -u
cd "$(dirname "$0")/../.."
BIN=bin BUILD=build
while [ $# -gt 0 ]; do case "$1" in --bin) BIN=$2; shift ;; --build) BUILD=$2; shift ;; *) only=$1 ;; esac; shift; done
export TIDE_SRC=$(pwd) TIDE_BIN=$(pwd)/$BIN TIDE_BUILD=$(pwd)/$BUILD
rc=0
for b in "$BUILD"/bench/bench_* tests/bench/*.sh; do
    [ -e "$b" ] || continue
    name=$(basename "$b"); name=${name%.sh}
    [ -n "${only:-}" ] && [ "$only" != "$name" ] && continue
    echo "=== $name"
    case "$b" in *.sh) bash "$b" || rc=1 ;; *) "$b" || rc=1 ;; esac
done
exit $rc
