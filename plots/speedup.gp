# speedup.gp — how fast is fast/? The lecture figure of `make bench`.
#
# Left: the speed-up of fast/ (float, AVX-512) over ref/ (double, one thread,
# the paper's formulas written for reading, not speed) for each operation,
# the geometric mean over the bench's shapes and layouts, at 1 and 2
# threads; oneDNN's best layout beside it for scale. Log axis: the factors
# span 10–100×.
# Right: fast/ in NCHW against oneDNN's fastest layout (nChw16c) on the
# ResNet-50 layers (N = 32), training forward and backward, 1 and 2 threads;
# above 1 fast/ is faster. Guides: parity (1) and issue 3's target (1.3).
#
# Invoked by `make plots` as
#   gnuplot -e "datafile='out/data/speedup.dat'; outstem='out/figures/speedup'" plots/speedup.gp
# datafile: written by scripts/bench_speedup.awk from a bench log (by
# default the committed plots/measured/bench.txt, so the figure is the same
# on every machine; `make plots BENCH_LOG=out/bench/bench.txt` draws your
# own `make bench` run). Its "# note:" line says where it was measured.
# Deterministic: no timestamps, no random elements.

if (!exists("datafile")) datafile = 'out/data/speedup.dat'
if (!exists("outstem"))  outstem  = 'out/figures/speedup'

set encoding utf8
set datafile commentschars "#"
set datafile missing "NaN"

note = system(sprintf("sed -n 's/^# note: //p' '%s' | head -n 1", datafile))

# the right panel's height: its largest ratio, and at least the target
rmax = 1.5
do for [c = 2:5] {
    stats datafile index 1 using c name "R" nooutput
    if (R_max * 1.15 > rmax) { rmax = R_max * 1.15 }
}

array color[4] = ["#1f77b4", "#aec7e8", "#d95f02", "#fdae6b"]

do for [t in "png pdf"] {
    if (t eq "png") {
        set terminal pngcairo size 1200,500 enhanced font "Sans,10" background "white"
    } else {
        set terminal pdfcairo size 9in,3.75in enhanced font "Sans,10"
    }
    set output outstem . "." . t
    unset label
    unset arrow
    set multiplot layout 1,2 title "bnlab fast/: speed-up over the reference, and against oneDNN\n".note font ",12" noenhanced

    # ---- left: fast/ and oneDNN over ref/, per operation (log scale)
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.9 border -1
    set boxwidth 0.9
    set logscale y
    # room above the bars for the key: the factors reach ~70
    set yrange [1:400]
    set ylabel "speed-up over ref/ (× faster, log scale)"
    set xtics rotate by -20 noenhanced
    set key top left horizontal maxcols 2 noenhanced
    set grid ytics
    set title "every op: geometric mean over shapes and layouts"
    plot datafile index 0 using 2:xtic(1) title "fast/ 1 thread"  lc rgb color[1], \
         ''       index 0 using 3         title "fast/ 2 threads" lc rgb color[2], \
         ''       index 0 using 4         title "oneDNN 1 thread" lc rgb color[3], \
         ''       index 0 using 5         title "oneDNN 2 threads" lc rgb color[4]

    # ---- right: fast/ NCHW against oneDNN's best, per ResNet-50 layer
    unset logscale y
    set yrange [0:rmax]
    set ylabel "oneDNN time / fast/ time (above 1: fast/ is faster)"
    set title "ResNet-50 layers at N = 32, fast/ NCHW vs oneDNN's best layout"
    set xtics rotate by -30 font ",8"
    set key top left horizontal maxcols 2
    # the guides: parity and issue 3's target
    set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb "#444444" dt 2
    set arrow 2 from graph 0, first 1.3 to graph 1, first 1.3 nohead lc rgb "#2ca02c" dt 3 lw 1.5
    set label 1 "target 1.3" at graph 0.99, first 1.34 right tc rgb "#2ca02c" font ",8"
    plot datafile index 1 using 2:xtic(1) title "fwd_train 1T" lc rgb color[1], \
         ''       index 1 using 3         title "fwd_train 2T" lc rgb color[2], \
         ''       index 1 using 4         title "bwd 1T"        lc rgb color[3], \
         ''       index 1 using 5         title "bwd 2T"        lc rgb color[4]
    unset arrow
    unset label
    unset multiplot
}
