"""Pre-NMS ranking quality: SVM head vs fine-tuned softmax vs ROI classifier softmax, per class.
For each GT cluster: best score among proposals at IoU>=0.5; background = proposals IoU<0.3 to
every cluster. Sensitivity at k background proposals per image scoring above (pre-NMS FROC)."""

import sys
from pathlib import Path

import numpy as np
import torch

from calcsdk import Detector
from calcsdk.benchmarks.error_analysis import held_out_paths
from calcsdk.boxes import box_iou
from calcsdk.image import read_mammogram
from calcsdk.prepare import roi_crops
from calcsdk.training.classifier import load_classifier
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.rcnn.head import LinearSvmHead

torch.set_num_threads(2)
run = Path(sys.argv[1])
data = Path(sys.argv[2])
split = Path(sys.argv[3])
n = int(sys.argv[4])
extra = sys.argv[5:]  # extra classifier checkpoints to score with softmax
records = load_coco(data / "annotations.json")
keep = held_out_paths(split)
records = [r for r in records if str(Path(r.image_path).resolve()) in keep][:n]
pipe = Detector(run / "bundle")._pipeline
s = pipe.settings
ft = load_classifier(run / "finetune" / "best.pt").eval()
head = LinearSvmHead.load(run / "head.npz")
others = {p: load_classifier(p).eval() for p in extra}
scorers = ["svm_margin", "svm_prob", "ft_softmax", *others]
pos = {k: {0: [], 1: []} for k in scorers}
bg = {k: {0: [], 1: []} for k in scorers}
for r in records:
    working, boxes = pipe.front(read_mammogram(r.image_path, spacing_mm=r.spacing_mm))
    crops = roi_crops(
        working.image01,
        boxes,
        representation=s.representation,
        size=s.crop_size,
        context_pad=s.context_pad,
    )
    out = {}
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(crops))
        logits, fc7 = [], []
        for i in range(0, len(x), 512):
            out_logits, f = ft.logits_and_fc7(x[i : i + 512])
            logits.append(out_logits)
            fc7.append(f)
        fc7 = torch.cat(fc7).numpy()
        out["ft_softmax"] = torch.cat(logits).softmax(1).numpy()
        for p, m in others.items():
            out[p] = (
                torch.cat([m(x[i : i + 512]) for i in range(0, len(x), 512)]).softmax(1).numpy()
            )
    out["svm_margin"] = head.decision(fc7)
    out["svm_prob"] = head.probabilities(fc7)
    sy, sx = working.scale
    orig = boxes / np.array([sx, sy, sx, sy], np.float32)
    gt = np.asarray(r.boxes, np.float32).reshape(-1, 4)
    iou = box_iou(gt, orig) if len(gt) else np.zeros((0, len(orig)))
    isbg = (iou.max(axis=0) if len(gt) else np.zeros(len(orig))) < 0.3
    for k in scorers:
        for c in (0, 1):
            bg[k][c].append(out[k][isbg, c])
            for i, lab in enumerate(r.labels):
                if lab == c:
                    m5 = iou[i] >= 0.5
                    pos[k][c].append(out[k][m5, c].max() if m5.any() else -np.inf)
nimg = len(records)
res = {}
for k in scorers:
    for c, name in ((0, "malignant"), (1, "benign")):
        b = np.sort(np.concatenate(bg[k][c]))[::-1]
        p = np.array(pos[k][c])
        sens = {}
        for fp in (0.25, 0.5, 1, 2, 5, 10):
            t = b[int(fp * nimg)] if int(fp * nimg) < len(b) else -np.inf
            sens[fp] = float((p > t).mean())
        res[f"{k}/{name}"] = sens
        print(
            f"{k:>40s} {name:9s} n={len(p):3d} "
            + " ".join(f"@{fp}:{v:.2f}" for fp, v in sens.items())
        )
