#!/bin/sh
# tools/stress.sh SECONDS BIN - run the stress program (`make stress`).
#   STRESS_SEED=N  replay a run (the seed is printed on the first line).
# The program has its own watchdog (no progress for 60 s = deadlock, with a
# dump of every thread's wait channel); `timeout` is the last resort should
# the watchdog itself be stuck.
set -u
seconds=${1:?usage: tools/stress.sh SECONDS BIN}
bin=${2:?usage: tools/stress.sh SECONDS BIN}
seed=${STRESS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
timeout -k 10 $((seconds + 180)) "$bin" "$seconds" "$seed"
rc=$?
[ "$rc" -eq 124 ] && echo "stress: killed after $((seconds + 180)) s: deadlock"
[ "$rc" -ne 0 ] && echo "stress: FAILED (exit $rc); replay: make stress STRESS_SECONDS=$seconds STRESS_SEED=$seed"
exit "$rc"
