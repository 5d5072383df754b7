#!/bin/sh
# Conformance suite: tests written from docs/API.md (the public contract)
# alone, compiled against the *installed* library only (its headers and
# pkg-config file), never against lib/ or the internal test helpers.
#
#   tools/conformance.sh [BUILD_DIR]     (default: build)
#
# Installs the library into a temporary prefix, builds every
# tests/conformance/*.c as C99 with -Werror, runs each, and ends with
# "N passed, N failed" (cmocka's PASSED/FAILED counts; a binary that crashes
# or exits non-zero without a FAILED line counts as one failure).
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tk-conformance.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM

make -s BUILD="$BUILD" PREFIX="$TMP/prefix" install >"$TMP/install.log" 2>&1 || {
    cat "$TMP/install.log"
    echo "conformance: make install failed" >&2
    exit 2
}

PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig"
export PKG_CONFIG_PATH
TK_FLAGS=$(pkg-config --cflags --libs taskkit)
CMOCKA_FLAGS=$(pkg-config --cflags --libs cmocka)
CC=${CC:-cc}
CFLAGS="-std=c99 -Wall -Wextra -Wpedantic -Werror -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -O1 -g"

passed=0
failed=0
mkdir -p "$TMP/bin"
for src in tests/conformance/*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    bin="$TMP/bin/$name"
    # shellcheck disable=SC2086 # word splitting of the flag lists is wanted
    if ! $CC $CFLAGS -o "$bin" "$src" $TK_FLAGS $CMOCKA_FLAGS -lm; then
        echo "conformance: $name does not compile" >&2
        failed=$((failed + 1))
        continue
    fi
    echo "=== $name"
    rc=0
    # stdout and stderr go to separate files: cmocka prints its summary on
    # both, and interleaving a buffered and an unbuffered stream can split
    # a summary line in two.
    LD_LIBRARY_PATH="$TMP/prefix/lib" "$bin" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null || rc=$?
    cat "$TMP/$name.out" "$TMP/$name.err"
    p=$(cat "$TMP/$name.out" "$TMP/$name.err" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' | tail -n 1)
    f=$(cat "$TMP/$name.out" "$TMP/$name.err" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0}))
    if [ -n "$f" ]; then
        failed=$((failed + f))
    elif [ "$rc" -ne 0 ]; then
        echo "conformance: $name exited with status $rc" >&2
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
