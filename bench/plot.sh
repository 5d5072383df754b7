#!/bin/sh
# bench/plot.sh CURVE.dat OUT.svg - draw one scaling curve with gnuplot.
# The .dat file (written by bench/harness.h) starts with "#title", "#xlabel",
# "#ylabel", "#logy" and "#impls" (names separated by '|') lines; each data
# line is an x label, then median, lower and upper quartile in ns for each
# implementation. Points are spaced evenly: the x values are labels (0, 64,
# 256, 1024 MiB). The bars span the middle half of the rounds.
set -eu
dat=$1 svg=$2
meta() { sed -n "s/^#$1 //p" "$dat" | head -n 1; }
# The unit follows the largest median.
top=$(awk '!/^#/ { for (i = 2; i <= NF; i += 3) if ($i != "NaN" && $i > m) m = $i } END { print m + 0 }' "$dat")
unit=$(awk -v m="$top" 'BEGIN { print (m >= 1e6 ? "ms 1e6" : (m >= 1e3 ? "us 1e3" : "ns 1")) }')
name=${unit% *} div=${unit#* }
logy="set yrange [0:*]"
[ "$(meta logy)" = 1 ] && logy="set logscale y"
# One plot clause per implementation: median with a quartile bar.
plot="" i=0
oldifs=$IFS
IFS='|'
for impl in $(meta impls); do
    plot="$plot${plot:+, }'$dat' using 0:(\$$((2 + 3 * i))/$div):(\$$((3 + 3 * i))/$div):(\$$((4 + 3 * i))/$div):xticlabels(1)"
    plot="$plot with yerrorlines linewidth 2 title '$impl'"
    i=$((i + 1))
done
IFS=$oldifs
gnuplot <<GP
set terminal svg size 720,440 dynamic font "sans,12"
set output "$svg"
set title "$(meta title)\nmedian of the rounds; bars: middle half of the rounds"
set xlabel "$(meta xlabel)"
set ylabel "$(meta ylabel) ($name)"
set termoption noenhanced
set key top left
set grid ytics
set offsets 0.3, 0.3, 0, 0
$logy
plot $plot
GP
