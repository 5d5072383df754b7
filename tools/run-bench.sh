#!/bin/sh
# tools/run-bench.sh BUILD BIN... - run each benchmark program in turn.
set -eu
build=$1; shift
mkdir -p "$build/bench"
for b in "$@"; do "$b"; done
[ $# -gt 0 ] || echo "bench: no benchmark programs yet"
