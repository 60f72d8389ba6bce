#!/usr/bin/env python3
"""check_numpy.py - a short example: checks a numpy batch normalization
(Ioffe & Szegedy 2015, Algorithm 1, its gradient, and Algorithm 2's
inference) against the bnlab conformance vectors, in float64 for fp64
groups and float32 for fp32 groups. Only the valid cases (numpy does not
reject bad input, so the invalid ones are not its business here).

Run: python3 data/examples/check_numpy.py [data]   (needs numpy)
"""
import json
import os
import sys

import numpy as np


def num(v):
    """17-digit JSON numbers parse exactly; non-finite values are strings."""
    return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(v, v)) \
        if isinstance(v, str) else v


def rows(group, values, dtype):
    """A data array as an (N*H*W, C) matrix: one column per channel."""
    s = group["shape"]
    n, c, hw = s["N"], s["C"], s["H"] * s["W"]
    a = np.array([num(v) for v in values], dtype=np.float64).astype(dtype)
    if group["layout"] == "NCHW":
        a = a.reshape(n, c, hw).transpose(0, 2, 1)
    return a.reshape(n * hw, c)


def run(group, test, dtype):
    """The outputs of one test, by the names of the expected arrays."""
    i = test["inputs"]
    C = group["shape"]["C"]
    chan = lambda k, d: np.array([num(v) for v in i.get(k, [d] * C)], dtype=np.float64).astype(dtype)
    eps = dtype(group["eps"])
    x, gamma, beta = rows(group, i["x"], dtype), chan("gamma", 1), chan("beta", 0)
    if group["type"].endswith("Infer"):
        mean, var = chan("mean", 0), chan("var", 1)
    else:                                   # Algorithm 1: the batch's own statistics
        mean = x.mean(axis=0)
        var = ((x - mean) ** 2).mean(axis=0)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    z = gamma * xhat + beta
    relu = group.get("activation") == "relu"
    if group["type"] in ("BnForwardTrain", "BnForwardInfer"):
        return {"y": np.maximum(z, 0) if relu else z, "mean": mean, "varBiased": var, "invstd": invstd}
    dy = rows(group, i["dy"], dtype) * ((z > 0) if relu else 1)
    dbeta, dgamma = dy.sum(axis=0), (dy * xhat).sum(axis=0)
    if group["type"] == "BnBackwardInfer":
        dx = dy * gamma * invstd            # statistics frozen
    else:                                   # dx = gamma*s*(dy - mean(dy) - xhat*mean(dy*xhat))
        dx = gamma * invstd * (dy - dbeta / len(x) - xhat * dgamma / len(x))
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    folder = sys.argv[1] if len(sys.argv) > 1 else "data"
    total = failed = 0
    for name in ["forward_train.json", "forward_train_relu.json", "backward_train.json",
                 "backward_train_relu.json", "forward_infer.json", "backward_infer.json"]:
        with open(os.path.join(folder, name)) as f:
            doc = json.load(f)
        for g in doc["testGroups"]:
            dtype = np.float64 if g["dtype"] == "fp64" else np.float32
            for t in (t for t in g["tests"] if t["result"] == "valid"):
                got, total = run(g, t, dtype), total + 1
                for key, want in t["expected"].items():
                    w = np.array([num(v) for v in want], dtype=np.float64)
                    if len(w) != g["shape"]["C"]:           # a data array: same matrix view
                        w = rows(g, want, np.float64)
                    tol = t["tolerance"][key]
                    err = np.abs(got[key].astype(np.float64) - w)
                    if not np.all(err <= tol["atol"] + tol["rtol"] * np.abs(w)):
                        print(f"FAIL {name} tcId {t['tcId']} {key}: max error {err.max():.3g}")
                        failed += 1
                        break
    print(f"check_numpy: {total} cases, {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
