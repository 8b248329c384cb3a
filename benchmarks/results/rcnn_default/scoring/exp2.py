"""Detection-level recalibration: after NMS, P(detection is a TP of its class | its score),
fitted per class on validation images, folded into the Platt parameters."""

import json
from dataclasses import replace
from types import SimpleNamespace

import exp
import numpy as np
from sklearn.linear_model import LogisticRegression

from calcsdk.detections import GroundTruth
from calcsdk.metrics import _match_image
from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.training.rcnn.head import HeadConfig, LinearSvmHead, train_head

man = json.load(open(exp.RUN / "bundle" / "manifest.json"))
post = PostprocessConfig(**man["thresholds"])
val = exp.load_cache("/work/runs/s8/fc7_r1/val")
test = exp.load_cache("/work/runs/s8/fc7_r1/test")
A, B = val[:300], val[300:]


def detections(entries, head):
    out = []
    for e in entries:
        p = head.probabilities(e["fc7"]).astype(np.float32)
        w = SimpleNamespace(
            scale=tuple(e["scale"]), original_shape=tuple(int(x) for x in e["original_shape"])
        )
        out.append(
            (
                postprocess(e["boxes"], p, exp.NAMES, w, post, 0.0),
                GroundTruth(e["gt_boxes"], e["gt_labels"], exp.NAMES),
            )
        )
    return out


def recalibrate(head, entries):
    pairs = detections(entries, head)
    a, b = head.platt_a.copy(), head.platt_b.copy()
    for c in range(2):
        s, y = [], []
        for d, g in pairs:
            m = _match_image(d, g, 0.5, True)
            k = d.labels == c
            s.append(d.scores[k])
            y.append(m[k] >= 0)
        s = np.clip(np.concatenate(s).astype(np.float64), 1e-7, 1 - 1e-7)
        y = np.concatenate(y)
        z = np.log(s / (1 - s))
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(z[:, None], y)
        a2, b2 = lr.coef_[0, 0], lr.intercept_[0]
        print(f"  class {c}: {len(y)} detections, {y.sum()} TP; a2 {a2:.3f} b2 {b2:.3f}")
        a[c], b[c] = a2 * a[c], a2 * b[c] + b2
    return replace(head, platt_a=a, platt_b=b)


def rep(name, head):
    r = exp.evaluate(test, head.probabilities, post)
    print(f"{name:44s} {r}", flush=True)


base = LinearSvmHead.load(exp.RUN / "head.npz")
rep("base", base)
rep("base + det-recal on all val", recalibrate(base, val))
rep("base + det-recal on val B", recalibrate(base, B))
fc7, labels, _ = exp.train_features("/work/runs/s7/rcnn-1/split.json")
fc7 = fc7.astype(np.float32)


def stack(entries):
    F, L = [], []
    for e in entries:
        F.append(e["fc7"].astype(np.float32))
        L.append(exp.proposal_labels(e))
    return np.concatenate(F), np.concatenate(L)


FA, LA = stack(A)
FB, LB = stack(B)
bg = LA == 2
mB = LB >= 0
F2 = np.concatenate([fc7, FA[bg]])
L2 = np.concatenate([labels, LA[bg]])
for C in (1e-4, 3e-4):
    h = train_head(
        F2,
        L2,
        2,
        replace(HeadConfig(), svm_c=C, hard_negative_rounds=5, negatives_per_round=10000),
        calib_features=FB[mB],
        calib_labels=LB[mB],
    )
    rep(f"mined C={C} proposal-calib B", h)
    rep(f"mined C={C} + det-recal B", recalibrate(h, B))
