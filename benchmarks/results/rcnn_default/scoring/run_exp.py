import json
import time
from dataclasses import replace

import exp
import numpy as np

from calcsdk.postprocess import PostprocessConfig
from calcsdk.training.rcnn.head import HeadConfig, LinearSvmHead, train_head

man = json.load(open(exp.RUN / "bundle" / "manifest.json"))
post = PostprocessConfig(**man["thresholds"])
val = exp.load_cache("/work/runs/s8/fc7_r1/val")
test = exp.load_cache("/work/runs/s8/fc7_r1/test")
print("val", len(val), "test", len(test), flush=True)
A, B = val[:300], val[300:]
base = LinearSvmHead.load(exp.RUN / "head.npz")
res = {}


def rep(name, probs, entries=test, p=post):
    t = time.time()
    r = exp.evaluate(entries, probs, p)
    res[name] = r
    print(f"{name:40s} {r}  ({time.time() - t:.0f}s)", flush=True)


rep("base/test", base.probabilities)
fc7, labels, is_gt = exp.train_features("/work/runs/s7/rcnn-1/split.json")
fc7 = fc7.astype(np.float32)


def stack(entries, keep_bg=None):
    F, L = [], []
    for e in entries:
        lab = exp.proposal_labels(e)
        F.append(e["fc7"].astype(np.float32))
        L.append(lab)
    return np.concatenate(F), np.concatenate(L)


FA, LA = stack(A)
FB, LB = stack(B)
mB = LB >= 0
print("A rows", len(LA), "B rows", len(LB), "B pos", (LB == 0).sum(), (LB == 1).sum(), flush=True)
cfg = HeadConfig()
# same training data, calibrated on B's full proposals
h1 = train_head(fc7, labels, 2, cfg, calib_features=FB[mB], calib_labels=LB[mB])
rep("samples, calib B full/test", h1.probabilities)
# + all background proposals of A as mining pool
bgA = LA == 2
F2 = np.concatenate([fc7, FA[bgA]])
L2 = np.concatenate([labels, LA[bgA]])
for rounds, per in ((3, 4000), (5, 10000)):
    c2 = replace(cfg, hard_negative_rounds=rounds, negatives_per_round=per)
    t = time.time()
    h2 = train_head(F2, L2, 2, c2, calib_features=FB[mB], calib_labels=LB[mB])
    print("fit", time.time() - t)
    rep(f"samples+A mined r{rounds} n{per}, calib B/test", h2.probabilities)
# positives also from A (IoU>=0.5 proposals)
for C in (1e-4, 1e-3, 1e-2):
    c3 = replace(cfg, svm_c=C, hard_negative_rounds=5, negatives_per_round=10000)
    h3 = train_head(F2, L2, 2, c3, calib_features=FB[mB], calib_labels=LB[mB])
    rep(f"mined C={C} calib B/test", h3.probabilities)
json.dump(res, open("/work/runs/s8/exp_results.json", "w"), indent=1)
