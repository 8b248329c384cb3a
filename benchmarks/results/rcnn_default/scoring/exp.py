"""Head and postprocess experiments on cached proposal features (fc7_cache.py)."""

import glob
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from calcsdk.boxes import box_iou
from calcsdk.detections import GroundTruth
from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.training.detector_evaluation import paper_tables

NAMES = ("malignant", "benign")
RUN = Path("/work/runs/s7/rcnn-1")


def load_cache(d):
    out = []
    for f in sorted(glob.glob(f"{d}/*.npz")):
        if ".tmp." in f:
            continue
        with np.load(f) as z:
            out.append({k: z[k] for k in z.files})
    return out


def train_features(split_json, run=RUN):
    dst = Path("/work/runs/s8/train_fc7_r1.npz")
    if dst.exists():
        with np.load(dst) as z:
            return z["fc7"], z["labels"], z["is_gt"]
    import torch

    from calcsdk.training.classifier import load_classifier
    from calcsdk.training.rcnn.train import _fc7

    torch.set_num_threads(2)
    train = {str(Path(p).resolve()) for p in json.loads(Path(split_json).read_text())["train"]}
    model = load_classifier(run / "finetune" / "best.pt").eval()
    feats, labels, is_gt = [], [], []
    for meta in sorted(glob.glob("/work/runs/s7/samples_default/*[0-9].npz")):
        with np.load(meta) as z:
            if str(Path(str(z["image_path"])).resolve()) not in train:
                continue
            lab, gt = z["labels"], z["is_gt"]
        crops = np.load(meta.replace(".npz", ".crops.npy"), mmap_mode="r")
        rows = gt | (lab == 2)  # svm_positives="gt"
        feats.append(_fc7(model, crops, rows).astype(np.float16))
        labels.append(lab[rows])
        is_gt.append(gt[rows])
    fc7, labels, is_gt = np.concatenate(feats), np.concatenate(labels), np.concatenate(is_gt)
    np.savez(dst, fc7=fc7, labels=labels, is_gt=is_gt)
    return fc7, labels, is_gt


def proposal_labels(e, lo=0.3, hi=0.5):
    """per proposal: class if IoU>=hi with a GT of that class, 2 if < lo with all, -1 otherwise."""
    sy, sx = e["scale"]
    orig = e["boxes"] / np.array([sx, sy, sx, sy], np.float32)
    lab = np.full(len(orig), 2, np.int64)
    if len(e["gt_boxes"]) and len(orig):
        iou = box_iou(e["gt_boxes"], orig)
        best = iou.max(axis=0)
        arg = iou.argmax(axis=0)
        lab[best >= lo] = -1
        pos = best >= hi
        lab[pos] = e["gt_labels"][arg[pos]]
    return lab


def evaluate(entries, probs_fn, post: PostprocessConfig):
    preds, truths = [], []
    for e in entries:
        p = probs_fn(e["fc7"]).astype(np.float32)
        w = SimpleNamespace(
            scale=tuple(e["scale"]), original_shape=tuple(int(x) for x in e["original_shape"])
        )
        preds.append(postprocess(e["boxes"], p, NAMES, w, post, 0.0))
        truths.append(GroundTruth(e["gt_boxes"], e["gt_labels"], NAMES))
    t = paper_tables(preds, truths)
    s = t["sensitivity_at_fp"]
    return {
        **{k: round(v, 3) for k, v in t["table6"].items() if k != "micro_f1"},
        "R_mal": round(t["table5"]["malignant"]["recall_cf_0.5"], 3),
        "R_ben": round(t["table5"]["benign"]["recall_cf_0.5"], 3),
        "froc@.5/1/2": [round(s["any"][k], 3) for k in ("0.5", "1.0", "2.0")],
    }
