"""Per-cluster scoring diagnostic for an R-CNN bundle on held-out images."""

import json
import sys
from pathlib import Path

import numpy as np

from calcsdk import Detector
from calcsdk.benchmarks.error_analysis import held_out_paths
from calcsdk.boxes import box_iou
from calcsdk.image import read_mammogram
from calcsdk.training.datasets.coco import load_coco

model, data, split, n = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
records = load_coco(data / "annotations.json")
keep = held_out_paths(split)
records = [r for r in records if str(Path(r.image_path).resolve()) in keep][:n]
det = Detector(model)
pipe = det._pipeline
names = list(pipe.class_names)
rows = []
bg_hi = []
nprop = []
for r in records:
    m = read_mammogram(r.image_path, spacing_mm=r.spacing_mm)
    working, boxes = pipe.front(m)
    scores, deltas = pipe.score_and_deltas(working, boxes)
    sy, sx = working.scale
    orig = boxes / np.array([sx, sy, sx, sy], np.float32)
    dets = pipe.finish(working, pipe.refine(working, boxes, deltas), scores, 0.0)
    gt = np.asarray(r.boxes, np.float32).reshape(-1, 4)
    labels = list(r.labels)
    iou = box_iou(gt, orig) if len(gt) else np.zeros((0, len(orig)))
    anyiou = iou.max(axis=0) if len(gt) else np.zeros(len(orig))
    bg = anyiou < 0.3
    bg_hi.append(int((scores[bg].max(axis=1) >= 0.5).sum()))
    nprop.append(len(orig))
    diou = box_iou(gt, dets.boxes) if len(gt) and len(dets.boxes) else None
    for i, lab in enumerate(labels):
        name = lab if isinstance(lab, str) else names[int(lab)]
        c = names.index(name)
        p5 = iou[i] >= 0.5
        p3 = iou[i] >= 0.3
        row = {
            "class": name,
            "best_iou": float(iou[i].max()) if len(orig) else 0.0,
            "max_own_p_iou5": float(scores[p5, c].max()) if p5.any() else None,
            "max_other_p_iou5": float(scores[p5, 1 - c].max()) if p5.any() else None,
            "max_own_p_iou3": float(scores[p3, c].max()) if p3.any() else None,
        }
        if diou is not None:
            d5 = (diou[i] >= 0.5) & (dets.labels == c)
            d3 = (diou[i] >= 0.3) & (dets.labels == c)
            row["det_own_iou5"] = float(dets.scores[d5].max()) if d5.any() else 0.0
            row["det_own_iou3"] = float(dets.scores[d3].max()) if d3.any() else 0.0
        rows.append(row)
json.dump({"rows": rows, "bg_hi": bg_hi, "nprop": nprop, "names": names}, open(sys.argv[5], "w"))


def frac(xs):
    return f"{np.mean(xs):.2f}" if xs else "-"


for cls in names:
    R = [x for x in rows if x["class"] == cls]
    print(cls, len(R))
    print("  proposed@.5", frac([x["max_own_p_iou5"] is not None for x in R]))
    print("  own p>=.5 among proposals@.5", frac([(x["max_own_p_iou5"] or 0) >= 0.5 for x in R]))
    print(
        "  other p>=.5 among proposals@.5", frac([(x["max_other_p_iou5"] or 0) >= 0.5 for x in R])
    )
    print("  own p>=.5 among proposals@.3", frac([(x["max_own_p_iou3"] or 0) >= 0.5 for x in R]))
    print("  det own >=.5 @iou.5", frac([x.get("det_own_iou5", 0) >= 0.5 for x in R]))
    print("  det own >=.5 @iou.3", frac([x.get("det_own_iou3", 0) >= 0.5 for x in R]))
    print("  median max own p@.5", np.median([x["max_own_p_iou5"] or 0 for x in R]))
print("bg proposals with p>=.5 per image", np.mean(bg_hi), "of", np.mean(nprop))
