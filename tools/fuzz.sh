#!/bin/sh
# tools/fuzz.sh - run libFuzzer targets (`make fuzz`).
#
#   tools/fuzz.sh --need          make sure clang and libFuzzer's runtime exist
#   tools/fuzz.sh SECONDS BIN...  run each target for SECONDS; fail on a finding
#
# Each target BIN (build/fuzz/bin/fuzz_NAME) starts from the committed seeds
# in tests/fuzz/corpus/NAME/ (which also hold every past crash, so each run
# replays them first) plus what earlier local runs found, kept in
# build/fuzz/work/NAME/. A crash, leak, sanitizer report, timeout (10 s for
# one input) or out-of-memory (2 GiB) stops the target; its input is saved
# as build/fuzz/artifacts/NAME-crash-* and the run fails. Figures (executions
# per target) go to build/fuzz/stats.txt.
set -eu
cd "$(dirname "$0")/.."

need() {
    tools/need cmd clang clang
    probe_dir=$(mktemp -d)
    trap 'rm -rf "$probe_dir"' EXIT
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' \
        >"$probe_dir/p.c"
    if clang -fsanitize=fuzzer,address "$probe_dir/p.c" -o "$probe_dir/p" 2>/dev/null; then
        return 0
    fi
    # Debian ships libFuzzer in the compiler-rt package of clang's version.
    v=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)
    echo "libtaskkit: libFuzzer runtime missing: installing libclang-rt-$v-dev" >&2
    if [ "$(id -u)" = 0 ]; then as_root=""; else as_root="sudo -n"; fi
    DEBIAN_FRONTEND=noninteractive $as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "libclang-rt-$v-dev" >/dev/null
    clang -fsanitize=fuzzer,address "$probe_dir/p.c" -o "$probe_dir/p"
}

if [ "${1:-}" = "--need" ]; then
    need
    exit 0
fi

seconds=${1:?usage: tools/fuzz.sh SECONDS BIN...}
shift
[ $# -gt 0 ] || { echo "fuzz: no targets (tests/fuzz/fuzz_*.c)"; exit 1; }
mkdir -p build/fuzz/work build/fuzz/artifacts build/fuzz/logs
stats=build/fuzz/stats.txt
: >"$stats"
failed=0 total=0
for bin in "$@"; do
    name=${bin##*/fuzz_}
    seeds=tests/fuzz/corpus/$name
    work=build/fuzz/work/$name
    log=build/fuzz/logs/$name.log
    mkdir -p "$work" "$seeds"
    echo "fuzz: $name for ${seconds}s (seeds: $(ls "$seeds" | wc -l))"
    # New inputs go to the first directory (work); the seeds are only read.
    # detect_leaks: a leak on any input is a finding too.
    rc=0
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$name-" \
        -dict="tests/fuzz/$name.dict" "$work" "$seeds" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    total=$((total + ${execs:-0}))
    echo "$name executions=${execs:-0} ${cov:-} corpus=$(ls "$work" | wc -l)" >>"$stats"
    if [ "$rc" -ne 0 ]; then
        failed=1
        tail -n 60 "$log"
        echo "fuzz: $name FAILED (exit $rc); reproduce with: $bin build/fuzz/artifacts/$name-*"
    else
        echo "fuzz: $name ok: ${execs:-0} executions, ${cov:-cov: ?}"
    fi
done
echo "total executions=$total" >>"$stats"
cat "$stats"
[ "$failed" -eq 0 ]
