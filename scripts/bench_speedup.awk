# bench_speedup.awk — turn `make bench` output (its `bench ...` lines) into
# the numbers of plots/speedup.gp. Two gnuplot data blocks:
#
#   index 0, one row per op:   op  fast1  fast2  onednn1  onednn2
#     the speed-up over ref/ (double, one thread): the geometric mean over
#     every shape and layout that both measured of ref_ms / impl_ms, for
#     fast/ and for oneDNN's best layout, at 1 and 2 threads
#   index 1, one row per ResNet-50 shape (N = 32):
#     shape  fwd1  fwd2  bwd1  bwd2
#     fast/ NCHW over oneDNN's best layout (oneDNN_ms / fast_ms) for
#     training forward and backward, at 1 and 2 threads (issue 3's target
#     is 1.3)
#
# The log's first "# note: ..." line (where and when it was measured) is
# copied. A figure that is missing in the log is written as NaN (gnuplot skips it).
# Usage: awk -f scripts/bench_speedup.awk bench.txt > speedup.dat
BEGIN { nops = split("fwd_train fwd_infer bwd fwd_train_relu bwd_relu", ops, " ") }
/^# note: / { if (note == "") note = $0; next }
/^bench / {
    delete kv
    for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
    impl = kv["impl"]; op = kv["op"]; lay = kv["layout"]; sh = kv["shape"]
    t = kv["threads"]; ms = kv["med_ms"] + 0
    if (ms <= 0) next
    if (!(sh in seen)) { seen[sh] = 1; shapes[++nsh] = sh }
    # a log of several runs (cat them): each figure's fastest run
    if (impl == "ref") { if (!((op, sh, lay) in ref) || ms < ref[op, sh, lay]) ref[op, sh, lay] = ms }
    else if (impl == "fast") { if (!((op, sh, lay, t) in fast) || ms < fast[op, sh, lay, t]) fast[op, sh, lay, t] = ms }
    else if (impl == "onednn") {
        # oneDNN's best layout for this shape: its fastest of nchw, nhwc, nChw16c
        if (!((op, sh, t) in dbest) || ms < dbest[op, sh, t]) dbest[op, sh, t] = ms
    }
}
function geo(op, t, which,    k, n, s, sh, lay, parts) {
    n = 0; s = 0
    for (k in ref) {
        split(k, parts, SUBSEP)
        if (parts[1] != op) continue
        sh = parts[2]; lay = parts[3]
        if (which == "fast" && ((op, sh, lay, t) in fast)) { s += log(ref[k] / fast[op, sh, lay, t]); n++ }
        # oneDNN against ref in the same layout family: its best layout vs ref NCHW/ND
        if (which == "onednn" && lay != "nhwc" && ((op, sh, t) in dbest)) { s += log(ref[k] / dbest[op, sh, t]); n++ }
    }
    return n ? sprintf("%.2f", exp(s / n)) : "NaN"
}
function ratio(op, sh, t) {
    if (((op, sh, t) in dbest) && ((op, sh, "nchw", t) in fast))
        return sprintf("%.3f", dbest[op, sh, t] / fast[op, sh, "nchw", t])
    return "NaN"
}
END {
    if (note != "") print note
    print "# speed-up over ref/ (geometric mean over shapes and layouts)"
    print "# op  fast_1T  fast_2T  onednn_1T  onednn_2T"
    for (i = 1; i <= nops; i++)
        printf "%s %s %s %s %s\n", ops[i], geo(ops[i], 1, "fast"), geo(ops[i], 2, "fast"),
               geo(ops[i], 1, "onednn"), geo(ops[i], 2, "onednn")
    print ""; print ""
    print "# fast/ NCHW over oneDNN's best layout, ResNet-50 shapes"
    print "# shape  fwd_train_1T  fwd_train_2T  bwd_1T  bwd_2T"
    for (i = 1; i <= nsh; i++) {
        sh = shapes[i]
        if (sh !~ /^32x[0-9]+x[0-9]+x[0-9]+$/ ) continue
        printf "%s %s %s %s %s\n", sh, ratio("fwd_train", sh, 1), ratio("fwd_train", sh, 2),
               ratio("bwd", sh, 1), ratio("bwd", sh, 2)
    }
}
