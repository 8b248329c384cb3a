import json
from dataclasses import replace

import exp
import numpy as np

from calcsdk.postprocess import PostprocessConfig
from calcsdk.training.rcnn.head import HeadConfig, train_head

man = json.load(open(exp.RUN / "bundle" / "manifest.json"))
post = PostprocessConfig(**man["thresholds"])
val = exp.load_cache("/work/runs/s8/fc7_r1/val")
test = exp.load_cache("/work/runs/s8/fc7_r1/test")
B = val[300:]
fc7, labels, _ = exp.train_features("/work/runs/s7/rcnn-1/split.json")
fc7 = fc7.astype(np.float32)
FB = np.concatenate([e["fc7"].astype(np.float32) for e in B])
LB = np.concatenate([exp.proposal_labels(e) for e in B])
m = LB >= 0
for C in (1e-4, 1e-5):
    h = train_head(
        fc7, labels, 2, replace(HeadConfig(), svm_c=C), calib_features=FB[m], calib_labels=LB[m]
    )
    print(
        f"samples only C={C}, calib B full", exp.evaluate(test, h.probabilities, post), flush=True
    )
