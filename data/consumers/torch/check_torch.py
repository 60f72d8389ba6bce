#!/usr/bin/env python3
"""check_torch.py - runs the bnlab conformance vectors through PyTorch.

Every case PyTorch can express goes through its public API: F.batch_norm
(training and inference), torch.native_batch_norm for the saved mean and
invstd, autograd for every gradient, nn.BatchNorm1d/2d for the running
statistics (momentum=None for the cumulative average and for Algorithm 2).
NHWC cases use the channels_last memory format, (N, D) cases the 2-d input
of BatchNorm1d. The cases PyTorch cannot express are listed with the reason.

Each comparison uses the vector's tolerance: |got - want| <= atol + rtol*|want|.
Every mismatch must match an entry of DEVIATIONS (a framework behaviour whose
cause docs/conformance.md demonstrates); an unexplained one fails the run.

Run: make check-torch   (or: python3 data/consumers/torch/check_torch.py data)
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

FILES = ["forward_train.json", "forward_train_relu.json", "backward_train.json",
         "backward_train_relu.json", "running_stats.json", "forward_infer.json",
         "backward_infer.json"]


def num(v):
    """A vector number: a JSON number or "NaN" / "Infinity" / "-Infinity"."""
    return float(v) if not isinstance(v, str) else {"NaN": math.nan, "Infinity": math.inf,
                                                   "-Infinity": -math.inf}[v]


def arr(v):
    return np.array([num(a) for a in v], dtype=np.float64)


class Case:
    """One test with its group: tensors in PyTorch's logical NCHW order."""

    def __init__(self, group, test):
        self.g, self.t = group, test
        s = group["shape"]
        self.N, self.C, self.H, self.W = s["N"], s["C"], s["H"], s["W"]
        self.nhwc = group["layout"] == "NHWC"
        self.dtype = torch.float64 if group["dtype"] == "fp64" else torch.float32
        self.eps = group["eps"]
        self.flat2d = not self.nhwc and self.H == self.W == 1   # BatchNorm1d's (N, D)

    def data(self, values, grad=False):
        """A data array of the vector as a tensor (N, C, H, W), or (N, C)."""
        a = torch.tensor(arr(values), dtype=self.dtype)
        if self.flat2d:
            t = a.reshape(self.N, self.C)
        elif self.nhwc:   # the memory is NHWC: a channels_last NCHW view of it
            t = a.reshape(self.N, self.H, self.W, self.C).permute(0, 3, 1, 2)
        else:
            t = a.reshape(self.N, self.C, self.H, self.W)
        return t.requires_grad_(grad) if grad else t

    def flat(self, t):
        """A tensor back to the vector's layout, as float64 numpy."""
        t = t.detach()
        if self.nhwc:
            t = t.permute(0, 2, 3, 1)
        return t.reshape(-1).to(torch.float64).numpy()

    def chan(self, values, grad=False):
        if values is None:
            return None
        t = torch.tensor(arr(values), dtype=self.dtype)
        return t.requires_grad_(grad) if grad else t


# ------------------------------------------------------------- operations

def forward_train(c):
    x = c.data(c.t["inputs"]["x"])
    w, b = c.chan(c.t["inputs"].get("gamma")), c.chan(c.t["inputs"].get("beta"))
    y = F.batch_norm(x, None, None, w, b, training=True, momentum=0.0, eps=c.eps)
    if c.g["activation"] == "relu":
        y = F.relu(y)
    # what autograd saves for backward: the batch mean and 1/sqrt(var + eps)
    _, mean, invstd = torch.native_batch_norm(x, w, b, None, None, True, 0.0, c.eps)
    return {"y": c.flat(y), "mean": mean.double().numpy(), "invstd": invstd.double().numpy()}


def backward_train(c, training=True):
    i = c.t["inputs"]
    x = c.data(i["x"], grad=True)
    w = c.chan(i.get("gamma"), grad=True)
    b = c.chan(i.get("beta"), grad=w is not None) if training else \
        (torch.zeros(c.C, dtype=c.dtype, requires_grad=True) if w is not None else None)
    if training:
        y = F.batch_norm(x, None, None, w, b, training=True, momentum=0.0, eps=c.eps)
        if c.g.get("activation") == "relu":
            y = F.relu(y)
    else:
        y = F.batch_norm(x, c.chan(i["mean"]), c.chan(i["var"]), w, b, training=False,
                         eps=c.eps)
    y.backward(c.data(i["dy"]))
    out = {"dx": c.flat(x.grad)}
    if w is not None:
        out["dgamma"] = w.grad.double().numpy()
        out["dbeta"] = b.grad.double().numpy()
    return out


def forward_infer(c):
    i = c.t["inputs"]
    y = F.batch_norm(c.data(i["x"]), c.chan(i["mean"]), c.chan(i["var"]), c.chan(i.get("gamma")),
                     c.chan(i.get("beta")), training=False, eps=c.eps)
    return {"y": c.flat(y)}


def running_stats(c):
    i, rule = c.t["inputs"], c.g["rule"]
    momentum = None if rule in ("cumulativeUnbiased", "populationAlgorithm2") else c.g["momentum"]
    cls = torch.nn.BatchNorm1d if c.flat2d else torch.nn.BatchNorm2d
    bn = cls(c.C, eps=c.eps, momentum=momentum, affine=False, dtype=c.dtype).train()
    if rule != "populationAlgorithm2":
        bn.running_mean.copy_(torch.tensor(arr(i["runningMean"])))
        bn.running_var.copy_(torch.tensor(arr(i["runningVar"])))
    bn.num_batches_tracked.fill_(i.get("numBatchesTracked", 0))
    means, vars_ = [], []
    with torch.no_grad():
        for batch in i["batches"]:
            bn(c.data(batch))
            means.append(bn.running_mean.double().numpy().copy())
            vars_.append(bn.running_var.double().numpy().copy())
    if rule == "populationAlgorithm2":
        return {"populationMean": means[-1], "populationVarUnbiased": vars_[-1]}
    out = {"runningMean": np.concatenate(means), "runningVar": np.concatenate(vars_)}
    if rule == "cumulativeUnbiased":
        out["numBatchesTracked"] = int(bn.num_batches_tracked)
    return out


RUN = {"BnForwardTrain": forward_train, "BnBackwardTrain": backward_train,
       "BnForwardInfer": forward_infer, "BnBackwardInfer": lambda c: backward_train(c, False),
       "BnRunningStats": running_stats}


def not_expressible(c):
    """Why PyTorch cannot run this case, or None."""
    if c.g["type"] == "BnRunningStats" and c.g["rule"] == "momentumOldBiased":
        return ("the Keras rule: PyTorch's running variance is always the unbiased one "
                "(m'/(m'-1)*sigma2_B), never the biased sigma2_B Keras stores")
    return None


# Outputs PyTorch does not expose: their cases still run, these arrays are not compared.
NOT_EXPOSED = {"varBiased": "PyTorch saves invstd = 1/sqrt(var + eps) for backward, not the "
                            "biased batch variance (checked through invstd)"}


def saved_invstd(c):
    """The invstd PyTorch's training forward saves for this case's x."""
    i = c.t["inputs"]
    _, _, invstd = torch.native_batch_norm(c.data(i["x"]), None, None, None, None, True, 0.0, c.eps)
    return invstd.double().numpy()


def deviation(c, got, error):
    """The cause of a mismatch on this case, shown by what PyTorch returned, or None."""
    t = c.t
    if t["result"] != "invalid" or error is not None:
        return None
    flags = set(t["flags"])
    finite = all(np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in got.values())
    what = "returns finite numbers" if finite else "returns NaN/Inf"
    training = c.g["type"] in ("BnForwardTrain", "BnBackwardTrain")
    if training and flags & {"ZeroVarianceZeroEps", "Overflow", "Underflow"} and \
            np.any(saved_invstd(c) == 0):
        return ("training: where var + eps is 0 (constant channel with eps = 0, or a variance "
                "that underflows) or the variance overflows, invstd is set to 0 and y = beta, "
                "with no error (saved invstd = 0 shows it)")
    if flags & {"NaNInput", "InfInput", "NonFiniteParameter"}:
        if finite and c.g["type"] == "BnForwardInfer" and \
                np.any(np.isinf(arr(t["inputs"]["var"]))):
            return "no check for Inf: an infinite stored variance gives scale 0, y = beta"
        return f"no check for NaN/Inf in the data or parameters: {what}"
    if "NegativeEps" in flags:
        return f"no check that eps >= 0 (var + eps stays > 0 here): {what}"
    if flags & {"ZeroVarianceZeroEps", "NegativeVariance"} and not finite:
        return ("inference: no check that var + eps > 0: 1/sqrt(0) or sqrt(negative) "
                "gives Inf/NaN (unlike training, which sets invstd = 0)")
    if "MomentumOutOfRange" in flags:
        return f"no check that momentum is in [0, 1]: the running statistics extrapolate ({what})"
    return None


def compare(c, got):
    """The names of the expected arrays that do not match."""
    bad = []
    for name, want in c.t["expected"].items():
        if name in NOT_EXPOSED:
            continue
        if name == "numBatchesTracked":
            if got[name] != want:
                bad.append(name)
            continue
        w = arr(sum(want, []) if want and isinstance(want[0], list) else want)
        g = np.asarray(got[name], dtype=np.float64)
        tol = c.t["tolerance"][name]
        ok = np.abs(g - w) <= tol["atol"] + tol["rtol"] * np.abs(w)
        if g.shape != w.shape or not ok.all():
            k = int(np.argmin(ok)) if g.shape == w.shape else 0
            bad.append(f"{name}[{k}] got {g.flat[k]:.17g} want {w[k]:.17g}"
                       if g.shape == w.shape else f"{name} has the wrong shape")
    return bad


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    folder = sys.argv[1] if len(sys.argv) > 1 else "data"
    torch.set_num_threads(1)
    print(f"check-torch: PyTorch {torch.__version__}, numpy {np.__version__}, CPU")
    totals = {"run": 0, "passed": 0, "deviations": 0, "unexplained": 0, "not_expressible": 0}
    causes, skipped = {}, {}
    for fname in FILES:
        with open(os.path.join(folder, fname)) as fh:
            doc = json.load(fh)
        counts = dict.fromkeys(totals, 0)
        for g in doc["testGroups"]:
            for t in g["tests"]:
                c = Case(g, t)
                why = not_expressible(c)
                if why:
                    skipped.setdefault(why, []).append(f"{fname}:{t['tcId']}")
                    counts["not_expressible"] += 1
                    continue
                counts["run"] += 1
                got, error = None, None
                try:
                    got = RUN[g["type"]](c)
                except (RuntimeError, ValueError) as e:
                    error = str(e).splitlines()[0]
                if t["result"] == "invalid":
                    ok, bad = error is not None, ["accepted"]
                elif error is not None:
                    ok, bad = False, [f"raised: {error}"]
                else:
                    bad = compare(c, got)
                    ok = not bad
                if ok:
                    counts["passed"] += 1
                    continue
                cause = deviation(c, got, error)
                label = f"{fname}:{t['tcId']} ({g['dtype']}, {', '.join(t['flags'])}): {'; '.join(bad)}"
                if cause:
                    counts["deviations"] += 1
                    causes.setdefault(cause, []).append(f"{fname}:{t['tcId']}")
                else:
                    counts["unexplained"] += 1
                    print(f"  UNEXPLAINED {label}")
        print(f"  {fname:26s} run {counts['run']:3d}, passed {counts['passed']:3d}, "
              f"deviations {counts['deviations']:2d}, unexplained {counts['unexplained']}, "
              f"not expressible {counts['not_expressible']}")
        for k in totals:
            totals[k] += counts[k]
    print("Not expressible in PyTorch:")
    for why, ids in skipped.items():
        print(f"  {len(ids)} cases: {why}\n    {' '.join(ids)}")
    print("Outputs not exposed by PyTorch (not compared):")
    for name, why in NOT_EXPOSED.items():
        print(f"  {name}: {why}")
    print("Deviations (PyTorch behaviour, cause in docs/conformance.md):")
    for why, ids in causes.items():
        print(f"  {len(ids)} cases: {why}\n    {' '.join(ids)}")
    print(f"check-torch: {totals['run']} run, {totals['passed']} passed, {totals['deviations']} "
          f"deviations, {totals['unexplained']} unexplained, {totals['not_expressible']} not expressible")
    return 1 if totals["unexplained"] else 0


if __name__ == "__main__":
    sys.exit(main())
