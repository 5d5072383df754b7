#!/bin/sh
# bench/plot.sh CURVE.dat OUT.svg - draw one scaling curve with gnuplot.
# The .dat file (written by bench/harness.h) starts with "#title", "#xlabel",
# "#ylabel", "#logy" and "#impls" lines; each data line is an x label, then
# median, min and max for each implementation. Points are spaced evenly (the
# x values are labels such as 0, 64, 256, 1024 MiB).
set -eu
dat=$1 svg=$2
meta() { sed -n "s/^#$1 //p" "$dat" | head -n 1; }
impls=$(meta impls)
n=$(echo "$impls" | wc -w)
logy=""
[ "$(meta logy)" = 1 ] && logy="set logscale y"
gnuplot <<GP
set terminal svg size 720,440 dynamic font "sans,12"
set output "$svg"
set title "$(meta title)"
set xlabel "$(meta xlabel)"
set ylabel "$(meta ylabel)"
set key top left noenhanced
set termoption noenhanced
set grid ytics
set yrange [0:*]
$logy
if ("$logy" ne "") set yrange [*:*]
set offsets 0.3, 0.3, 0, 0
names = "$impls"
plot for [i=0:$n-1] "$dat" using 0:(column(2+3*i)):(column(3+3*i)):(column(4+3*i)):xticlabels(1) \
     with yerrorlines linewidth 2 title word(names, i+1)
GP
