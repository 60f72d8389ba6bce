# bench_tables.awk — the tables of docs/performance.md from a `make bench`
# log: for each op, one Markdown table with a row per shape and thread
# count: fast/ NCHW and NHWC, oneDNN's best layout and its plain NCHW
# (med_ms, and bw_frac in brackets), the ratio oneDNN-best / fast (above 1:
# fast/ is faster) and ref/ (double, one thread).
# A log may hold several runs (cat them): each figure is its fastest run.
# Usage: awk -f scripts/bench_tables.awk out/bench/bench.txt
BEGIN { nops = split("fwd_train fwd_infer bwd fwd_train_relu bwd_relu", ops, " ") }
/^bench / {
    delete kv
    for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
    impl = kv["impl"]; op = kv["op"]; lay = kv["layout"]; sh = kv["shape"]; t = kv["threads"]
    if (lay == "nd") lay = "nchw"                 # (N, D): one layout, shown as NCHW
    if (!(sh in seen)) { seen[sh] = 1; shapes[++nsh] = sh }
    if (!(t in seent)) { seent[t] = 1; threads[++nt] = t }
    passes[op] = kv["passes"]
    k = impl SUBSEP op SUBSEP sh SUBSEP lay SUBSEP t
    # a log of several runs: each figure's fastest run (with its own bw_frac)
    if (!(k in ms) || kv["med_ms"] + 0 < ms[k] + 0) { ms[k] = kv["med_ms"]; fr[k] = kv["bw_frac"] }
    if (impl == "onednn" && (!((op, sh, t) in best) || kv["med_ms"] + 0 < best[op, sh, t] + 0)) {
        best[op, sh, t] = kv["med_ms"]; bestl[op, sh, t] = kv["layout"]; bestf[op, sh, t] = kv["bw_frac"]
    }
}
function cell(impl, op, sh, lay, t,    k) {
    k = impl SUBSEP op SUBSEP sh SUBSEP lay SUBSEP t
    return (k in ms) ? sprintf("%s (%s)", ms[k], fr[k]) : "-"
}
function ratio(op, sh, lay, t,    k) {
    k = "fast" SUBSEP op SUBSEP sh SUBSEP lay SUBSEP t
    return ((k in ms) && ((op, sh, t) in best)) ? sprintf("%.2f", best[op, sh, t] / ms[k]) : "-"
}
END {
    for (o = 1; o <= nops; o++) {
        op = ops[o]
        if (!(op in passes)) continue
        printf "**%s** (passes = %s): med_ms, and in brackets bw_frac\n\n", op, passes[op]
        print "| shape | T | fast nchw | fast nhwc | oneDNN best | oneDNN nchw | fast / best (nchw, nhwc) | ref (1T, nchw) |"
        print "|---|---|---|---|---|---|---|---|"
        for (s = 1; s <= nsh; s++)
            for (j = 1; j <= nt; j++) {
                sh = shapes[s]; t = threads[j]
                b = ((op, sh, t) in best) ? sprintf("%s (%s) %s", best[op, sh, t], bestf[op, sh, t], bestl[op, sh, t]) : "-"
                r = ratio(op, sh, "nchw", t)
                if (cell("fast", op, sh, "nhwc", t) != "-") r = r ", " ratio(op, sh, "nhwc", t)
                refc = (j == 1 && (("ref", op, sh, "nchw", 1) in ms)) ? ms["ref", op, sh, "nchw", 1] : ""
                printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", sh, t, cell("fast", op, sh, "nchw", t),
                       cell("fast", op, sh, "nhwc", t), b, cell("onednn", op, sh, "nchw", t), r, refc
            }
        print ""
    }
}
