# transform.gp — the figure of chapters/transform.c: the batch-normalizing
# transform (Ioffe & Szegedy 2015, Algorithm 1) on one mini-batch.
#
# Left column: a histogram (density) of each of the three input features, in
# its own units: different locations, scales and shapes; the dashed line is the
# batch mean mu_B. Right panel: the three outputs y = (x - mu_B)/sqrt(sigma2_B
# + eps) on one common axis. The guides are what the paper promises: a line at
# mean 0 and the N(0, 1) density as the unit-variance guide. Every y lands on
# mean 0, variance 1; the shapes stay what they were (BN normalizes location
# and scale, not shape). The legend prints the means and biased variances that
# gnuplot measures in the data file.
#
# Invoked by `make plots` as
#   gnuplot -e "datafile='out/data/transform.dat'; outstem='out/figures/transform'" plots/transform.gp
# which writes outstem.png (pngcairo, 1200x500) and outstem.pdf (pdfcairo).
# datafile: '#' comment lines, then rows x0 x1 x2 y0 y1 y2 (one per example).
# Deterministic: no timestamps, no random elements.

if (!exists("datafile")) datafile = 'out/data/transform.dat'
if (!exists("outstem"))  outstem  = 'out/figures/transform'

set encoding utf8
set datafile commentschars "#"

# ---- the numbers, measured from the data (stats divides by n: biased variance)
array mu[6]
array var_b[6]
array lo[6]
array hi[6]
do for [c = 1:6] {
    stats datafile using c name "S" nooutput
    mu[c] = S_mean
    var_b[c] = S_stddev**2      # S_stddev is the population (1/n) standard deviation
    lo[c] = S_min
    hi[c] = S_max
}
N = S_records

# Each feature's distribution, as chapters/transform.c wrote it in the header
# ("# x0 ~ Normal(5, 2^2)   mu_B = ..."); empty if the header lacks it.
law(k) = system(sprintf("sed -n 's/^# x%d ~ \\(.*[^ ]\\) *mu_B.*/\\1/p' '%s'", k, datafile))

# ---- histograms as densities: count / (N · bin width)
bin(x, w) = w * (floor(x / w) + 0.5)
nbins = 24
wy = 0.25                                   # bin width of the y panel
ymax_x = ceil(hi[4] > hi[5] ? (hi[4] > hi[6] ? hi[4] : hi[6]) : (hi[5] > hi[6] ? hi[5] : hi[6]))
ymin_x = floor(lo[4] < lo[5] ? (lo[4] < lo[6] ? lo[4] : lo[6]) : (lo[5] < lo[6] ? lo[5] : lo[6]))
yl = ymin_x < -4 ? ymin_x : -4
yr = ymax_x > 4 ? ymax_x : 4

phi(x) = exp(-x**2 / 2) / sqrt(2 * pi)      # N(0, 1) density

array color[3] = ["#1f77b4", "#d95f02", "#2ca02c"]

title = "Batch normalization transform (Ioffe & Szegedy 2015, Alg. 1)"

do for [t in "png pdf"] {
    if (t eq "png") {
        set terminal pngcairo size 1200,500 enhanced font "Sans,10" background "white"
    } else {
        set terminal pdfcairo size 9in,3.75in enhanced font "Sans,10"
    }
    set output outstem . "." . t
    # Each pass starts from the same state (the loop's second pass would
    # otherwise inherit the right panel's labels, tics and ranges).
    unset xlabel
    unset x2label
    unset label
    unset arrow
    set xtics autofreq
    set ytics autofreq
    set offsets 0, 0, 0, 0

    set multiplot title sprintf("%s — one mini-batch of m = %d examples", title, N) font ",13" noenhanced

    # ---- left: the inputs, one panel each, each in its own units
    set style fill transparent solid 0.45 border
    unset key                                # each panel says what it is in a label
    set ytics font ",8"
    set xtics font ",8"
    set ylabel "density" font ",9"
    set offsets 0, 0, graph 0.45, 0          # headroom for each panel's legend
    do for [k = 0:2] {
        c = k + 1
        w = (hi[c] - lo[c]) / nbins
        set boxwidth w absolute
        set lmargin at screen 0.06
        set rmargin at screen 0.40
        set tmargin at screen 0.88 - k * 0.285
        set bmargin at screen 0.88 - k * 0.285 - 0.215
        set xrange [lo[c] - w : hi[c] + w]
        set yrange [0:*]
        set ytics autofreq
        if (k == 0) {
            set x2label "before BN: inputs x, each in its own units (dashed: batch mean {/Symbol m}_B)" font ",11"
        } else {
            unset x2label
        }
        unset arrow
        set arrow 1 from mu[c], graph 0 to mu[c], graph 0.8 nohead dt 2 lw 1.5 lc rgb "black" front
        lab = law(k)
        set label 1 sprintf("x%d%s:   {/Symbol m}_B = %.5g,  {/Symbol s}^2_B = %.4g", \
                            k, strlen(lab) > 0 ? " ∼ " . lab : "", mu[c], var_b[c]) \
            at graph 0.015, graph 0.86 left font ",9" tc rgb color[c] front
        plot datafile using (bin(column(c), w)):(1.0 / (N * w)) smooth frequency with boxes \
             lc rgb color[c] notitle
    }
    unset x2label
    unset label 1
    set offsets 0, 0, 0, 0

    # ---- right: the outputs, all on one axis, with the paper's guides
    set lmargin at screen 0.47
    set rmargin at screen 0.98
    set tmargin at screen 0.88
    set bmargin at screen 0.13
    set boxwidth wy absolute
    set style fill transparent solid 0.25 border
    set xrange [yl : yr]
    set yrange [0 : *]
    set offsets 0, 0, graph 0.25, 0          # headroom for the legend
    set xtics 1 font ",9"
    set ytics 0.1 font ",9"
    set xlabel "after: y = (x - {/Symbol m}_B) / sqrt({/Symbol s}^2_B + {/Symbol e}),  {/Symbol g} = 1, {/Symbol b} = 0" font ",10" offset 0,0
    set ylabel "density" font ",10"
    set x2label "after BN: every feature has mean 0 and unit variance" font ",11"
    set key top right samplen 2 font ",9" box opaque
    unset arrow
    set arrow 1 from 0, graph 0 to 0, graph 1 nohead lw 1.5 lc rgb "black" front
    set samples 400
    plot for [k = 0:2] datafile using (bin(column(k + 4), wy)):(1.0 / (N * wy)) \
             smooth frequency with boxes lc rgb color[k + 1] \
             title sprintf("y%d:  mean %+.1e,  var %.5f", k, mu[k + 4], var_b[k + 4]), \
         phi(x) with lines dt 2 lw 2.5 lc rgb "black" title "unit variance guide: N(0, 1) density", \
         NaN with lines lw 1.5 lc rgb "black" title "mean 0 guide"
    set offsets 0, 0, 0, 0
    unset multiplot
    unset output
}

# pdfcairo (cairo 1.16) stamps the PDF with /CreationDate (D:YYYYMMDDhhmmss...),
# so two runs would differ. Overwrite those 14 digits with a fixed date of the
# same length (the xref table holds byte offsets: the length must not change).
system(sprintf("command -v perl >/dev/null 2>&1 && perl -0777 -pi -e 's{(/CreationDate \\(D:)[0-9]{14}}{${1}19700101000000}' '%s.pdf'", outstem))
