# fig1.gp — the figure of chapters/fig1.c: the paper's Figure 1 (Ioffe &
# Szegedy 2015, §4.1), a 784-100-100-100-10 sigmoid MLP with and without
# batch normalization, here on Fashion-MNIST.
#
# (a) Test accuracy against training steps, both networks. Guides: the
#     paper's claim (BN trains faster and ends higher) in the title, the
#     target accuracy of the printed "steps to reach" as a dashed line with
#     the step where each network first reaches it, and the steps at which the
#     summary compares the two (1/5, 2/5 and all of the run: 10k, 20k, 50k).
# (b, c) The 15th, 50th and 85th percentiles of the input of one sigmoid of
#     the last hidden layer over the test images, without and with BN, on the
#     same axis. Guide: the paper's claim, a band that stays where it started:
#     dashed lines at the first evaluation's three percentiles. The title of
#     each gives the drift the program printed (range of the median, of the
#     15-85 width).
#
# Invoked by `make plots` as
#   gnuplot -e "datafile='out/data/fig1.dat'; outstem='out/figures/fig1'" plots/fig1.gp
# which writes outstem.png (pngcairo, 1500x500) and outstem.pdf (pdfcairo).
# datafile: chapters/fig1.c's output: '#' lines (settings and the summary),
# then one row per evaluation: step acc_plain acc_bn loss_plain loss_bn
# train_loss_plain train_loss_bn p15_plain p50_plain p85_plain p15_bn p50_bn p85_bn.
# Deterministic: no timestamps, no random elements.

if (!exists("datafile")) datafile = 'out/data/fig1.dat'
if (!exists("outstem"))  outstem  = 'out/figures/fig1'

set encoding utf8
set datafile commentschars "#"
set datafile missing "nan"

# ---- numbers from the file's header: the "# figure:" line holds name value
# pairs (steps, target, reach_plain, reach_bn (-1: never), unit, drift_*, stats)
hdr(cmd) = system(sprintf("< '%s' %s", datafile, cmd))
fig(name) = hdr(sprintf("awk '/^# figure:/ {for (i = 3; i < NF; i++) if ($i == \"%s\") print $(i+1)}'", name))
steps     = real(fig("steps"))
target    = real(fig("target"))
reach(n)  = (fig(n) eq "-1") ? "never" : "step " . fig(n)
reach_a   = reach("reach_plain")
reach_b   = reach("reach_bn")
drift_m_a = fig("drift_median_plain")
drift_m_b = fig("drift_median_bn")
drift_w_a = fig("drift_width_plain")
drift_w_b = fig("drift_width_bn")
unit      = fig("unit")
evalstat  = fig("stats")
setting   = hdr("sed -n 's/^# \\(SGD .*\\), data .*/\\1/p' | sed 's/ (std by fan-in)//'")
dataname  = hdr("sed -n 's/^# SGD .*, data \\([^ ]*\\) .*/\\1/p' | sed 's:/*$::; s:.*/::'")

# ---- ranges: both band panels share one y axis
stats datafile using 8 name "A15" nooutput
stats datafile using 10 name "A85" nooutput
stats datafile using 11 name "B15" nooutput
stats datafile using 13 name "B85" nooutput
stats datafile using 2 name "ACC_A" nooutput
stats datafile using 3 name "ACC_B" nooutput
bmin = floor(A15_min < B15_min ? A15_min : B15_min) - 0.5
bmax = ceil(A85_max > B85_max ? A85_max : B85_max) + 0.5
# the first evaluation's percentiles (the guide of b and c)
first(c) = real(system(sprintf("awk '!/^#/ {print $%d; exit}' '%s'", c, datafile)))
a0_15 = first(8);  a0_50 = first(9);  a0_85 = first(10)
b0_15 = first(11); b0_50 = first(12); b0_85 = first(13)
accmax = ACC_A_max > ACC_B_max ? ACC_A_max : ACC_B_max
acclo = 0.70
acchi = ceil(100 * accmax + 1.5) / 100.0
acchi = acchi > target + 0.01 ? acchi : target + 0.01   # the target line stays inside

c_plain = "#d95f02"
c_bn    = "#1f77b4"

do for [t in "png pdf"] {
    if (t eq "png") {
        set terminal pngcairo size 1500,520 enhanced font "Sans,10" background "white"
    } else {
        set terminal pdfcairo size 11in,3.8in enhanced font "Sans,10"
    }
    set output outstem . "." . t
    unset label
    unset arrow
    unset object
    set multiplot layout 1,3 title sprintf("Figure 1 (Ioffe \\& Szegedy 2015, §4.1) on %s: 784-100-100-100-10 sigmoid MLP, with and without BN\n{/=9 %s}", \
        dataname, setting) font ",12"

    # ---- (a) test accuracy
    set title "(a) test accuracy — paper: with BN it trains faster and ends higher" font ",11"
    set xlabel "training steps"
    set ylabel "test accuracy"
    set xrange [0:steps]
    set yrange [acclo:acchi]
    set format x (steps >= 10000 ? "%.0s%c" : "%g")
    set format y "%.2f"
    set grid ytics lc rgb "#dddddd"
    set key bottom right box opaque samplen 2 font ",9"
    set arrow 1 from 0, target to steps, target nohead dt 2 lw 1.5 lc rgb "black"
    set label 1 sprintf("target %.0f%%, first reached:\nwithout BN: %s, with BN: %s", 100 * target, reach_a, reach_b) \
        at graph 0.2, first target - 0.009 left font ",8"
    do for [k = 1:3] {
        s = k == 3 ? steps : k * steps / 5
        set arrow (k + 1) from s, graph 0 to s, graph 1 nohead dt 3 lc rgb "#888888"
    }
    plot datafile using 1:2 with lines lw 2 lc rgb c_plain title "without BN", \
         datafile using 1:3 with lines lw 2 lc rgb c_bn title sprintf("with BN (%s statistics)", evalstat), \
         NaN with lines dt 2 lw 1.5 lc rgb "black" title "target accuracy", \
         NaN with lines dt 3 lc rgb "#888888" title "compared at 1/5, 2/5, 5/5 of the run"
    unset arrow
    unset label
    unset grid

    # ---- (b, c) the percentile bands, without and with BN
    set ylabel sprintf("input of sigmoid unit %s, last hidden layer", unit)
    set yrange [bmin:bmax]
    set format y "%g"
    set key top left box opaque samplen 2 font ",9"
    set style fill transparent solid 0.25 noborder
    do for [k = 0:1] {
        col = k == 0 ? 8 : 11
        lc = k == 0 ? c_plain : c_bn
        g15 = k == 0 ? a0_15 : b0_15
        g50 = k == 0 ? a0_50 : b0_50
        g85 = k == 0 ? a0_85 : b0_85
        set title sprintf("(%s) %s BN: median drifts by %s, 15–85 width by %s", k == 0 ? "b" : "c", \
            k == 0 ? "without" : "with", k == 0 ? drift_m_a : drift_m_b, k == 0 ? drift_w_a : drift_w_b) font ",11"
        plot datafile using 1:(column(col)):(column(col + 2)) with filledcurves lc rgb lc title "15th–85th percentile", \
             datafile using 1:(column(col)) with lines lw 1 lc rgb lc notitle, \
             datafile using 1:(column(col + 2)) with lines lw 1 lc rgb lc notitle, \
             datafile using 1:(column(col + 1)) with lines lw 2.5 lc rgb lc title "median", \
             g50 with lines dt 2 lw 1.5 lc rgb "black" title "guide: the start (no drift)", \
             g15 with lines dt 2 lw 1 lc rgb "#555555" notitle, \
             g85 with lines dt 2 lw 1 lc rgb "#555555" notitle
    }
    unset multiplot
    unset output
}

# pdfcairo stamps the PDF with /CreationDate: overwrite its 14 digits with a
# fixed date of the same length, so two runs give the same bytes.
system(sprintf("command -v perl >/dev/null 2>&1 && perl -0777 -pi -e 's{(/CreationDate \\(D:)[0-9]{14}}{${1}19700101000000}' '%s.pdf'", outstem))
