#!/bin/sh
# tools/run-bench.sh BUILD BIN... - run the benchmark programs and plot them.
#
# Builds the GLib peer (installing libglib2.0-dev when possible), points the
# programs at the peers (BENCH_GLIB, BENCH_PY), runs each program (they print
# their table and append to BUILD/bench/results.{csv,md}), then renders every
# BUILD/bench/*.dat curve to BUILD/bench/*.svg with gnuplot.
#   BENCH_QUICK=1   short rounds: the whole run stays under a minute
#   BENCH_ONLY=a,b  run only these programs (by name)
set -eu
build=$1; shift
out=$build/bench
mkdir -p "$out"
rm -f "$out"/results.csv "$out"/results.md "$out"/peak_rss.txt "$out"/targets.tsv "$out"/*.dat "$out"/*.svg
BENCH_OUT=$out
export BENCH_OUT

# ---------------------------------------------------------------- peers
BENCH_GLIB=""
if tools/need pc glib-2.0 libglib2.0-dev; then
    # shellcheck disable=SC2046
    ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror bench/glib/peer.c \
        $(pkg-config --cflags --libs glib-2.0) -o "$out/glib_peer" &&
        BENCH_GLIB=$out/glib_peer
fi
[ -n "$BENCH_GLIB" ] || echo "bench: GLib baselines skipped (no GLib)"
# The system python3 (a pyenv or venv shim on PATH would add its own start-up
# time to every round), unless BENCH_PYTHON names another.
if [ -z "${BENCH_PYTHON:-}" ]; then
    BENCH_PYTHON=/usr/bin/python3
    [ -x "$BENCH_PYTHON" ] || BENCH_PYTHON=$(command -v python3 || true)
fi
BENCH_PY=""
if [ -n "$BENCH_PYTHON" ] && "$BENCH_PYTHON" -c 'import multiprocessing' 2>/dev/null; then
    BENCH_PY=$(pwd)/bench/peers.py
else
    echo "bench: Python baselines skipped (no python3)"
fi
export BENCH_GLIB BENCH_PY BENCH_PYTHON

# ---------------------------------------------------------------- header
machine() {
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    echo "- CPU: ${cpu:-unknown}, $(nproc) cores available (nproc)"
    echo "- kernel: $(uname -sr)"
    echo "- compiler: $(${CC:-cc} --version | head -n 1)"
    echo "- GLib: $(pkg-config --modversion glib-2.0 2>/dev/null || echo none)," \
         "Python: $($BENCH_PYTHON --version 2>&1 || echo none)"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- mode: $([ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && echo quick || echo full)," \
         "rounds per figure: ${BENCH_ROUNDS:-$([ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK}" != 0 ] && echo 7 || echo 15)}"
}
{
    echo "## libtaskkit benchmark run, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    machine
    echo
    echo "Each figure is the median (min, max) of interleaved rounds; times are per operation."
    echo "The ratio is libtaskkit's median / that implementation's median: below 1 is faster."
} > "$out/results.md"
machine

# ---------------------------------------------------------------- run
start=$(date +%s)
for b in "$@"; do
    name=${b##*/}
    if [ -n "${BENCH_ONLY:-}" ]; then
        case ",$BENCH_ONLY," in *",$name,"*) ;; *) continue ;; esac
    fi
    t0=$(date +%s)
    "$b"
    echo "($name: $(($(date +%s) - t0)) s)"
done
[ $# -gt 0 ] || echo "bench: no benchmark programs yet"

if [ -s "$out/peak_rss.txt" ]; then
    echo
    echo "== Peak RSS of each bench program"
    printf '\n### Peak RSS of each bench program\n\n| program | peak RSS |\n|---|---:|\n' >> "$out/results.md"
    while read -r prog kib; do
        printf '%-40s %8.1f MiB\n' "$prog" "$(echo "$kib" | awk '{print $1 / 1024}')"
        printf '| %s | %.1f MiB |\n' "$prog" "$(echo "$kib" | awk '{print $1 / 1024}')" >> "$out/results.md"
    done < "$out/peak_rss.txt"
fi

if [ -s "$out/targets.tsv" ]; then
    echo
    echo "== Targets (libtaskkit median / baseline median)"
    printf '\n### Targets\n\n| row | against | ratio | target | |\n|---|---|---:|---|---|\n' >> "$out/results.md"
    while IFS="$(printf '\t')" read -r section row impl ratio target met; do
        printf '%-44s %-26s %8s  %-9s %s\n' "$row" "$impl" "$ratio" "$target" "$met"
        printf '| %s | %s | %s | %s | %s |\n' "$row" "$impl" "$ratio" "$target" "$met" >> "$out/results.md"
    done < "$out/targets.tsv"
fi

# ---------------------------------------------------------------- plots
plots=0
if ls "$out"/*.dat >/dev/null 2>&1; then
    if tools/need cmd gnuplot gnuplot-nox; then
        for dat in "$out"/*.dat; do
            bench/plot.sh "$dat" "${dat%.dat}.svg" && plots=$((plots + 1))
        done
    else
        echo "bench: plots skipped (no gnuplot)"
    fi
fi
echo
echo "bench: done in $(($(date +%s) - start)) s; $plots plots; tables in $out/results.md and $out/results.csv"
