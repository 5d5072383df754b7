#!/bin/sh
# tools/run-demo.sh DIR - run every example in DIR in the notes' label order
# (1, 2.1 ... 2.6, 3.1, 3.2, 3.2b, 3.3 ... 3.5, 4), stopping at the first failure.
set -eu
dir=$1
n=0
# Sort on the label alone (the part before the first '_'), so 3.2 < 3.2b < 3.3.
for ex in $(ls "$dir" | sed 's/^\([^_]*\)_.*/\1 &/' | sort -V -k1,1 | cut -d' ' -f2); do
    [ -x "$dir/$ex" ] || continue
    echo
    "$dir/$ex"
    n=$((n + 1))
done
echo
echo "demo: $n examples ran successfully"
