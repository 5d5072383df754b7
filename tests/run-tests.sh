#!/bin/sh
# tests/run-tests.sh BIN... - run cmocka test binaries, print each one's
# output, and close with one summary line counting every test case.
#   TK_TEST_WRAPPER  command put in front of each binary (valgrind)
#   TK_TEST_TIMEOUT  seconds a binary may take (default 600)
set -u
passed=0 failed=0 skipped=0 bad_bins=""
timeout_s=${TK_TEST_TIMEOUT:-600}
for bin in "$@"; do
    name=${bin##*/}
    log=$(mktemp)
    # shellcheck disable=SC2086
    timeout -k 10 "$timeout_s" ${TK_TEST_WRAPPER:-} "$bin" >"$log" 2>&1
    rc=$?
    cat "$log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    k=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
    rm -f "$log"
    skipped=$((skipped + ${k:-0}))
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ]; then
        [ -z "$f" ] && failed=$((failed + 1))   # crashed, hung or leaked
        [ "$rc" -eq 124 ] && echo "$name: timed out after ${timeout_s}s"
        bad_bins="$bad_bins $name(exit $rc)"
    fi
done
[ -n "$bad_bins" ] && echo "failing test programs:$bad_bins"
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ -z "$bad_bins" ]
