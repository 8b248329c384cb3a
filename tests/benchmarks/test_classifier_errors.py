"""The ROI classifier's error breakdown: ROIs (jittered copies included) joined to their
clusters, accuracies by group recomputed from saved predictions, the selected fold."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from calcsdk.benchmarks.classifier_errors import analyse, markdown, roi_groups

CLUSTERS = [  # image 1 (density B): a malignant fine pleomorphic, a benign popcorn (hard)
    {"image_id": 1, "category_id": 1, "bbox": [100, 100, 50, 50], "morphology": "fine_pleomorphic", "hard": False},
    {"image_id": 1, "category_id": 2, "bbox": [400, 400, 200, 100], "morphology": "coarse_popcorn", "hard": True},
]  # fmt: skip
ROIS = [  # roi_id, label, box; r01 is a jittered copy of r00; rows 0..4
    ("a_r00", "malignant", (100, 100, 150, 150)),
    ("a_r01", "malignant", (104, 98, 158, 152)),
    ("a_r02", "benign", (400, 400, 600, 500)),
    ("a_r03", "normal", (700, 700, 800, 800)),
    ("a_r04", "normal", (900, 100, 1000, 200)),
]
LABELS = {"malignant": 0, "benign": 1, "normal": 2}


def _write_data(root: Path, rois=ROIS) -> Path:
    (root / "rois").mkdir(parents=True)
    annotations = {
        "images": [{"id": 1, "file_name": "images/a.png", "spacing_mm": 0.1, "density": "B"}],
        "annotations": [dict(c, id=i + 1) for i, c in enumerate(CLUSTERS)],
        "categories": [{"id": 1, "name": "malignant"}, {"id": 2, "name": "benign"}],
    }
    (root / "annotations.json").write_text(json.dumps(annotations))
    with open(root / "rois" / "index.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["roi_id", "label", "image_id", "patient_id", "density", "x1", "y1", "x2", "y2"]
        )
        for roi_id, label, box in rois:
            writer.writerow([roi_id, label, 1, "P1", "B", *box])
    return root


def _probs(predicted: list[int]) -> np.ndarray:
    return np.eye(3, dtype=np.float32)[predicted]


def _write_run(root: Path) -> Path:
    # the run's ROIs are index rows [4, 3, 2, 1, 0]; fold 1 tests run rows 0-3, fold 2 rows 0-4
    root.mkdir(parents=True)
    np.savez(root / "split.npz", source_rows=np.array([4, 3, 2, 1, 0]))
    truth = np.array([LABELS[ROIS[r][1]] for r in (4, 3, 2, 1, 0)])
    folds = {1: ([0, 1, 2, 3], [2, 0, 1, 2], 0.5), 2: ([0, 1, 2, 3, 4], [2, 2, 1, 0, 2], 0.9)}
    for fold, (indices, predicted, val_accuracy) in folds.items():
        folder = root / "grayscale" / f"fold{fold}"
        folder.mkdir(parents=True)
        idx = np.array(indices)
        np.savez(
            folder / "predictions_test.npz", indices=idx, y_true=truth[idx], probs=_probs(predicted)
        )
        right = int(val_accuracy * 10)
        np.savez(
            folder / "predictions_val.npz",
            y_true=np.zeros(10, int),
            probs=_probs([0] * right + [1] * (10 - right)),
        )
    return root


def test_rois_join_their_clusters(tmp_path):
    groups = roi_groups(_write_data(tmp_path))
    assert [g["morphology"] for g in groups] == ["fine_pleomorphic"] * 2 + ["coarse_popcorn"] + [
        "normal"
    ] * 2
    assert [g["hard"] for g in groups] == ["False", "False", "True", "normal", "normal"]
    assert [g["size"] for g in groups] == ["< 8 mm", "< 8 mm", "> 15 mm", "normal", "normal"]


def test_a_roi_without_its_cluster_is_an_error(tmp_path):
    rois = [*ROIS, ("a_r05", "benign", (100, 100, 150, 150))]  # a malignant cluster's box
    with pytest.raises(ValueError, match="a_r05: no benign cluster"):
        roi_groups(_write_data(tmp_path, rois))


def test_accuracies_by_group_pooled_and_selected(tmp_path):
    data, run = _write_data(tmp_path / "data"), _write_run(tmp_path / "run")
    report = analyse(run, data)
    entry = report["representations"]["grayscale"]
    assert entry["folds"] == [1, 2] and entry["selected_fold"] == 2
    # fold 1: rows 4,3,2,1 -> normal, normal, benign, malignant; predicted normal, mal, ben, normal
    # fold 2: rows 4..0 -> predicted normal, normal, benign, malignant, normal
    pooled = entry["pooled"]["label"]
    assert pooled["normal"] == {
        "rois": 4,
        "accuracy": 0.75,
        "called": {"malignant": 1, "benign": 0, "normal": 3},
    }
    assert pooled["malignant"]["rois"] == 3 and pooled["malignant"]["accuracy"] == pytest.approx(
        1 / 3
    )
    assert pooled["benign"]["accuracy"] == 1.0
    selected = entry["selected"]["morphology"]
    assert selected["fine_pleomorphic"]["accuracy"] == 0.5 and selected["normal"]["accuracy"] == 1.0
    assert "binary" not in report["representations"]
    text = markdown(report)
    assert "| fine_pleomorphic | 3 | 0.333 (0.500) | 1 / 0 / 2 |" in text
