"""`--folds K` for the R-CNN: K folds of the training images, each evaluated on the same test
images, the selected fold's bundle, Tables 5/6 with ranges recomputed from the saved
evaluations, resume, and the report (FROC, overlays with ground truth, proposal recall)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from calcsdk import Detector
from calcsdk.proposals import ProposalConfig
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.models.alexnet import AlexNetConfig
from calcsdk.training.rcnn import cross_validation
from calcsdk.training.rcnn.cross_validation import cross_validate_rcnn, summarise
from calcsdk.training.rcnn.cv_report import write_report
from calcsdk.training.rcnn.head import HeadConfig
from calcsdk.training.rcnn.samples import SampleConfig
from calcsdk.training.rcnn.train import RcnnTrainConfig

CONFIG = RcnnTrainConfig(
    name="rcnn-2",
    samples=SampleConfig(proposals=ProposalConfig(max_boxes=300), negatives_per_image=16),
    head=HeadConfig(initial_negatives=300, negatives_per_round=300, hard_negative_rounds=2),
    finetune_overrides={"epochs": 1, "batch_size": 32, "patience": 0, "progress": False},
)


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory, tiny_detection_data):
    records = load_coco(tiny_detection_data / "annotations.json")
    train, test = records[:20], records[20:]
    out = tmp_path_factory.mktemp("rcnn-cv")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = _cross_validate(train, test, out)
    finally:
        torch.set_num_threads(threads)
    return summary, out, train, test


def _cross_validate(train, test, out) -> dict:
    """Two tiny folds (AlexNet width 1/16, one epoch)."""
    return cross_validate_rcnn(
        train,
        test,
        CONFIG,
        out,
        n_folds=2,
        classifier_weights=None,
        model_config=AlexNetConfig(width=1 / 16),
        bundle_name="tiny-cv",
    )


@pytest.mark.slow
def test_folds_partition_the_training_images_by_patient(cv_run):
    summary, _, train, _ = cv_run
    folds = summary["folds"]
    assert [f["fold"] for f in folds] == [1, 2]
    patient = {r.image_path: r.group_id for r in train}
    vals = [set(f["val_images"]) for f in folds]
    assert vals[0].isdisjoint(vals[1]) and vals[0] | vals[1] == set(patient)
    for f in folds:
        assert set(f["train_images"]) == set(patient) - set(f["val_images"])
        assert {patient[p] for p in f["train_images"]}.isdisjoint(
            {patient[p] for p in f["val_images"]}
        )


@pytest.mark.slow
def test_table6_is_recomputed_from_the_saved_evaluations(cv_run):
    summary, out, _, test = cv_run
    saved = json.loads((out / "cv.json").read_text())
    assert saved["selected_fold"] == summary["selected_fold"]
    assert saved["test_images"] == [r.image_path for r in test]
    for metric in ("precision", "recall", "f1", "map"):
        per_fold = []
        for k in (1, 2):
            evaluation = json.loads((out / f"fold{k}" / "eval" / "evaluation.json").read_text())
            assert evaluation["overall"]["n_images"] == len(test)
            per_fold.append(evaluation["overall"]["table6"][metric])
        finite = [v for v in per_fold if v is not None and v == v]
        spread = saved["table6"][metric]
        if finite:
            assert spread["mean"] == pytest.approx(np.mean(finite))
            assert (spread["min"], spread["max"]) == (min(finite), max(finite))


@pytest.mark.slow
def test_selected_fold_has_the_best_validation_map_and_is_the_shipped_bundle(cv_run):
    summary, out, _, _ = cv_run
    val_maps = {}
    for k in (1, 2):
        evaluation = json.loads((out / f"fold{k}" / "eval_val" / "evaluation.json").read_text())
        value = evaluation["overall"]["table6"]["map"]
        val_maps[k] = value if value == value else -1.0
    best = max(val_maps.values())
    assert summary["selected_fold"] == min(k for k, v in val_maps.items() if v == best)
    assert Detector(out / "bundle").model_version == f"tiny-cv-fold{summary['selected_fold']}@0.1.0"


@pytest.mark.slow
def test_finished_folds_are_not_retrained(cv_run, monkeypatch):
    summary, out, train, test = cv_run

    def fail(*args, **kwargs):
        raise AssertionError("a finished fold was retrained")

    monkeypatch.setattr(cross_validation, "fit_rcnn", fail)
    monkeypatch.setattr(cross_validation, "collect_samples", fail)
    again = _cross_validate(train, test, out)
    assert again["table6"] == summary["table6"]


@pytest.mark.slow
def test_report_files(cv_run):
    _, out, _, test = cv_run
    path = write_report(out, test, overlays=2, proposal_config=CONFIG.samples.proposals)
    text = path.read_text()
    assert text.startswith("# R-CNN rcnn-2: 2-fold cross-validation")
    assert "| paper RCNN-2 | 0.82 | 0.85 | 0.83 | 0.74 |" in text
    assert (out / "froc.png").stat().st_size > 0
    assert (out / "proposal_recall.png").stat().st_size > 0
    recall = json.loads((out / "proposal_recall.json").read_text())
    assert [r["max_proposals"] for r in recall["rows"]] == [50, 100, 250, 500, 1000, 2000]
    overlays = sorted((out / "overlays").glob("*.png"))
    assert len(overlays) == min(2, sum(1 for r in test if r.num_boxes))
    assert all(f"overlays/{p.name}" in text for p in overlays)


def _fold(k: int, val_map: float, test_map: float) -> dict:
    table5 = {"malignant": dict.fromkeys(cross_validation.TABLE5_KEYS, 0.5)}
    test = {"precision": 0.1 * k, "recall": 0.2, "f1": 0.3, "map": test_map}
    return {"fold": k, "val": {"map": val_map}, "test": test, "test_table5": table5}


def test_summarise_selects_by_validation_map_lowest_fold_on_ties_nan_last():
    assert (
        summarise([_fold(1, 0.2, 0.9), _fold(2, 0.4, 0.1), _fold(3, 0.4, 0.5)])["selected_fold"]
        == 2
    )
    assert summarise([_fold(1, float("nan"), 0.9), _fold(2, 0.0, 0.1)])["selected_fold"] == 2


def test_summarise_spread_over_the_folds_test_figures():
    summary = summarise([_fold(1, 0.2, 0.5), _fold(2, 0.4, float("nan")), _fold(3, 0.1, 0.7)])
    assert summary["table6"]["map"] == pytest.approx(
        {"mean": 0.6, "sd": np.std([0.5, 0.7], ddof=1), "min": 0.5, "max": 0.7}
    )
    assert summary["table6"]["precision"]["max"] == pytest.approx(0.3)
    assert summary["table5"]["malignant"]["recall_cf_0.5"]["sd"] == 0.0
    with pytest.raises(ValueError, match="no folds"):
        summarise([])


def test_overlays_show_different_patients_first():
    from types import SimpleNamespace

    from calcsdk.training.rcnn.cv_report import _one_per_patient

    records = [SimpleNamespace(group_id=g, name=i) for i, g in enumerate("aabbc")]
    assert [r.name for r in _one_per_patient(records, 4)] == [0, 2, 4, 1]
    assert [r.name for r in _one_per_patient(records, 2)] == [0, 2]


def test_report_of_an_unfinished_run_says_what_is_missing(tmp_path):
    (tmp_path / "split.json").write_text("{}")  # a one-split run stopped before its evaluation
    with pytest.raises(ValueError, match=r"neither a cross-validation run .*evaluation\.json"):
        write_report(tmp_path, [])
