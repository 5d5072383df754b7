#!/bin/sh
# tools/lint.sh - `make lint`: static checks that must stay clean.
#
#   1. the library builds with gcc AND clang under
#      -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror
#      (and so do the fuzz targets and the stress program);
#   2. cppcheck (warning, style, performance, portability) finds nothing;
#   3. clang-tidy with the check set in .clang-tidy finds nothing.
#
# LINT_EXCLUDE="lib/foo.c lib/bar.c" leaves files out (say why where you set
# it). Installs cppcheck, clang and clang-tidy through tools/need if missing.
set -eu
cd "$(dirname "$0")/.."

tools/need cmd cppcheck cppcheck
tools/need cmd clang clang
tools/need cmd clang-tidy clang-tidy
tools/need cmd gcc gcc
tools/need pc cmocka libcmocka-dev

excluded() {
    for x in ${LINT_EXCLUDE:-}; do [ "$x" = "$1" ] && return 0; done
    return 1
}

lib_srcs=""
for f in lib/*.c; do excluded "$f" || lib_srcs="$lib_srcs $f"; done
own_srcs=""
for f in tests/fuzz/fuzz_*.c tests/stress/*.c; do
    [ -f "$f" ] && ! excluded "$f" && own_srcs="$own_srcs $f"
done
[ -n "${LINT_EXCLUDE:-}" ] && echo "lint: excluded: $LINT_EXCLUDE"

STRICT="-std=c11 -D_GNU_SOURCE -pthread -Iinclude -Ilib -O2 -Wall -Wextra \
-Wpedantic -Wshadow -Wconversion -Werror"
fail=0

# -------------------------------------------------------------- compilers
for cc in gcc clang; do
    echo "lint: $cc $STRICT (library)"
    for f in $lib_srcs; do
        # shellcheck disable=SC2086
        $cc $STRICT -fPIC -fvisibility=hidden -c "$f" -o /dev/null || fail=1
    done
    for f in $own_srcs; do
        # The fuzz targets only define LLVMFuzzerTestOneInput: compile only.
        # shellcheck disable=SC2086
        $cc $STRICT -Itests $(pkg-config --cflags cmocka) -c "$f" -o /dev/null || fail=1
    done
done

# --------------------------------------------------------------- cppcheck
# variableScope is left out: where a variable is declared is a readability
# choice (it is often hoisted on purpose, e.g. before a `goto fail` label),
# and the check finds no bugs. missingIncludeSystem: cppcheck need not read
# the system headers.
# False positives, by file (inline suppressions belong to the files' owners;
# these move there once they add them):
#   unusedStructMember:lib/shm.c   the `align` union member only aligns the
#       header (its purpose is never to be read);
#   knownConditionTrueFalse:lib/conn.c   recv_frame's `total == first` is
#       true for every message that fits one record (cppcheck 2.10 loses
#       track of `first = min(total, ...)`).
CPPCHECK_FP="--suppress=unusedStructMember:lib/shm.c \
--suppress=knownConditionTrueFalse:lib/conn.c"
echo "lint: cppcheck"
# shellcheck disable=SC2086
cppcheck -q --std=c11 --enable=warning,style,performance,portability \
    --inline-suppr --error-exitcode=1 --suppress=missingIncludeSystem \
    --suppress=variableScope $CPPCHECK_FP \
    -D_GNU_SOURCE -D__linux__ -Iinclude -Ilib $lib_srcs $own_srcs || fail=1

# ------------------------------------------------------------- clang-tidy
echo "lint: clang-tidy (.clang-tidy)"
# The test drivers (fuzz targets, stress program) skip three checks meant
# for library code: concurrency-mt-unsafe (the stress watchdog and signal
# threads use readdir/sleep on their own streams), cert-env33-c (the
# deadlock dump runs a shell line) and cert-err34-c (fscanf of /proc files).
for f in $lib_srcs $own_srcs; do
    case $f in
    lib/*) extra="" ;;
    *) extra="--checks=-concurrency-mt-unsafe,-cert-env33-c,-cert-err34-c" ;;
    esac
    # clang-tidy prints a "N warnings generated" line per file on stderr even
    # when every warning is outside the filter: keep only real findings.
    # shellcheck disable=SC2086
    out=$(clang-tidy --quiet $extra "$f" -- -std=c11 -D_GNU_SOURCE -pthread \
        -Iinclude -Ilib -Itests 2>&1) || { echo "$out"; fail=1; continue; }
    if printf '%s\n' "$out" | grep -q ': \(warning\|error\):'; then
        printf '%s\n' "$out"
        fail=1
    fi
done

if [ "$fail" -ne 0 ]; then
    echo "lint: FAILED"
    exit 1
fi
echo "lint: clean ($(echo $lib_srcs $own_srcs | wc -w) files)"
