"""Where the ROI classifier's test errors come from: accuracy of a cross-validation run's test
predictions by cluster morphology, hard case, breast density and cluster size.

Each test ROI of ``calcsdk train classifier`` (``predictions_test.npz``: ``indices`` into the
run's ROIs, ``source_rows`` of ``split.npz`` into the ROI set's ``index.csv``) is joined to the
cluster it was cut from (``annotations.json`` of ``calcsdk synth``: the cluster of its class in
its image that its box overlaps most; ROIs after the first of a cluster are jittered copies). Normal ROIs have no cluster: their group is ``normal``. Accuracy is argmax of
``probs`` against ``y_true``, pooled over the folds that finished, and also given for the fold
the report selects (best validation accuracy).

    python -m calcsdk.benchmarks.classifier_errors --run benchmarks/results/classifier_cv_default \\
        --data synth_default --out benchmarks/results/classifier_cv_default/errors
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from calcsdk.benchmarks.error_analysis import clusters_by_image, size_bin, write_report
from calcsdk.boxes import box_iou

CLASSES = ("malignant", "benign", "normal")  # the classifier's label order
GROUPS = ("label", "morphology", "hard", "density", "size")
MIN_IOU = 0.3  # a ROI is its cluster's box or a jittered copy (shift <= 10%, scale 0.9-1.25)


def roi_groups(data: Path) -> list[dict[str, str]]:
    """One dict per row of ``data/rois/index.csv``: its label, and the morphology, hard flag,
    density and size bin of its cluster (``normal`` for normal ROIs).

    Raises:
        ValueError: a lesion ROI matches no cluster of its image.
    """
    annotations = data / "annotations.json"
    files = {i["id"]: i["file_name"] for i in json.loads(annotations.read_text())["images"]}
    clusters = clusters_by_image(annotations)
    with open(data / "rois" / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        groups = {"label": row["label"], "density": row["density"]}
        if row["label"] == "normal":
            out.append({**groups, "morphology": "normal", "hard": "normal", "size": "normal"})
            continue
        found = clusters.get(str((data / files[int(row["image_id"])]).resolve()), [])
        found = [c for c in found if c["category"] == row["label"]]
        box = np.array([[float(row[k]) for k in ("x1", "y1", "x2", "y2")]], np.float32)
        iou = box_iou(box, np.array([c["box"] for c in found], np.float32).reshape(-1, 4))[0]
        if not len(iou) or iou.max() < MIN_IOU:
            raise ValueError(f"ROI {row['roi_id']}: no {row['label']} cluster of its image")
        cluster = found[int(iou.argmax())]
        out.append({**groups, "morphology": cluster["morphology"],
                    "hard": str(cluster["hard"]), "size": size_bin(cluster["side_mm"])})  # fmt: skip
    return out


def _fold_predictions(run: Path, representation: str) -> dict[int, dict[str, np.ndarray]]:
    folds = {}
    for path in sorted((run / representation).glob("fold*/predictions_test.npz")):
        with np.load(path) as saved:
            folds[int(path.parent.name[4:])] = {k: saved[k] for k in ("indices", "y_true", "probs")}
    return folds


def _selected_fold(run: Path, representation: str, folds) -> int:
    """The fold of best validation accuracy (the report's selection rule)."""
    best, best_accuracy = min(folds), -1.0
    for fold in sorted(folds):
        path = run / representation / f"fold{fold}" / "predictions_val.npz"
        if path.exists():
            with np.load(path) as saved:
                accuracy = float((saved["probs"].argmax(1) == saved["y_true"]).mean())
            if accuracy > best_accuracy:
                best, best_accuracy = fold, accuracy
    return best


def _table(rows: list[dict], predicted: np.ndarray, truth: np.ndarray) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key in GROUPS:
        members: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            members[row[key]].append(i)
        out[key] = {}
        for name, idx in sorted(members.items()):
            called = np.bincount(predicted[idx], minlength=len(CLASSES))
            out[key][name] = {
                "rois": len(idx),
                "accuracy": float((predicted[idx] == truth[idx]).mean()),
                "called": {c: int(n) for c, n in zip(CLASSES, called)},
            }
    return out


def analyse(run: Path, data: Path) -> dict:
    """Per representation: the pooled and the selected fold's breakdown (module docstring)."""
    with np.load(run / "split.npz") as split:
        source_rows = split["source_rows"]
    groups = roi_groups(data)
    report: dict = {"run": str(run), "data": str(data), "representations": {}}
    for representation in ("grayscale", "binary", "filtered"):
        folds = _fold_predictions(run, representation)
        if not folds:
            continue
        selected = _selected_fold(run, representation, folds)
        entry = {"folds": sorted(folds), "selected_fold": selected}
        for name, chosen in (("pooled", sorted(folds)), ("selected", [selected])):
            rows = [groups[r] for f in chosen for r in source_rows[folds[f]["indices"]]]
            predicted = np.concatenate([folds[f]["probs"].argmax(1) for f in chosen])
            truth = np.concatenate([folds[f]["y_true"] for f in chosen])
            entry[name] = _table(rows, predicted, truth)
        report["representations"][representation] = entry
    return report


def markdown(report: dict) -> str:
    lines = [f"# ROI classifier test errors by group ({report['run']})"]
    for representation, entry in report["representations"].items():
        lines += ["", f"## {representation}: folds {entry['folds']} pooled "
                  f"(selected fold {entry['selected_fold']} in brackets)"]  # fmt: skip
        for key in GROUPS:
            lines += ["", f"| {key} | ROIs | accuracy | called malignant / benign / normal |",
                      "|---|---|---|---|"]  # fmt: skip
            for name, g in entry["pooled"][key].items():
                chosen = entry["selected"][key].get(name)
                bracket = f" ({chosen['accuracy']:.3f})" if chosen else ""
                called = " / ".join(str(g["called"][c]) for c in CLASSES)
                lines.append(f"| {name} | {g['rois']} | {g['accuracy']:.3f}{bracket} | {called} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.classifier_errors")
    parser.add_argument("--run", type=Path, required=True, help="calcsdk train classifier --out")
    parser.add_argument("--data", type=Path, required=True, help="calcsdk synth output folder")
    parser.add_argument("--out", type=Path, required=True, help="output prefix (.json, .md)")
    args = parser.parse_args(argv)
    report = analyse(args.run, args.data)
    print(write_report(args.out, report, markdown(report)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
