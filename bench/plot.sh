#!/bin/sh
# bench/plot.sh CURVE.dat OUT.svg - draw one scaling curve with gnuplot.
# The .dat file (written by bench/harness.h) starts with "#title", "#xlabel",
# "#ylabel", "#logy" and "#impls" (names separated by '|') lines; each data
# line is an x label, then median, min and max for each implementation.
# Points are spaced evenly: the x values are labels (0, 64, 256, 1024 MiB).
set -eu
dat=$1 svg=$2
meta() { sed -n "s/^#$1 //p" "$dat" | head -n 1; }
logy="set yrange [0:*]"
[ "$(meta logy)" = 1 ] && logy="set logscale y"
# One plot clause per implementation: median with a min..max error bar.
plot="" i=0
oldifs=$IFS
IFS='|'
for name in $(meta impls); do
    plot="$plot${plot:+, }'$dat' using 0:$((2 + 3 * i)):$((3 + 3 * i)):$((4 + 3 * i)):xticlabels(1)"
    plot="$plot with yerrorlines linewidth 2 title '$name'"
    i=$((i + 1))
done
IFS=$oldifs
gnuplot <<GP
set terminal svg size 720,440 dynamic font "sans,12"
set output "$svg"
set title "$(meta title)"
set xlabel "$(meta xlabel)"
set ylabel "$(meta ylabel)"
set termoption noenhanced
set key top left
set grid ytics
set offsets 0.3, 0.3, 0, 0
$logy
plot $plot
GP
