"""K-fold cross-validation of the R-CNN detector: the paper's Tables 5 and 6 "average (range)
across five folds".

Protocol (the classifier's, applied to whole mammograms):

* the held-out test images (the paper's 377 of 3,265) are fixed by the caller and never seen in
  training, validation or model selection;
* the other images are split into ``n_folds`` patient-level folds, stratified by image label
  (:func:`calcsdk.training.splits.kfold_indices`); fold k validates on part k (early stopping
  of the fine-tuning, Platt calibration of the SVMs, model selection) and trains on the rest;
* every fold's bundle is evaluated on its validation images and on the test images with
  :func:`calcsdk.training.detector_evaluation.evaluate_records` (``sdk/metrics.py`` only);
* the fold with the highest validation mAP (ties: the lowest fold) is selected and its bundle
  copied to ``out_dir/bundle``; its test figures are the run's headline, the spread of the
  folds' test figures its range.

Proposals and warped crops of the training images are computed once and shared by the folds
(and, through ``samples_cache``, by runs and sessions).
A fold whose ``fold.json`` exists is not retrained (resume after an interruption); inside a
fold the fine-tuning resumes from its ``last.pt``.

Layout of ``out_dir``: ``foldK/`` (``bundle/``, ``finetune/``, ``head.npz``, ``eval_val/``,
``eval/``, ``fold.json``), ``bundle/`` (the selected fold's), ``cv.json`` (:func:`summarise`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.training.datasets.record import ImageRecord
from calcsdk.training.models.alexnet import AlexNetConfig
from calcsdk.training.rcnn.train import RcnnTrainConfig, collect_samples, fit_rcnn
from calcsdk.training.splits import kfold_indices

log = logging.getLogger(__name__)

TABLE6_KEYS = ("precision", "recall", "f1", "map")
TABLE5_KEYS = ("precision_no_cf", "precision_cf_0.5", "recall_no_cf", "recall_cf_0.5")


def cross_validate_rcnn(
    train_records: Sequence[ImageRecord],
    test_records: Sequence[ImageRecord],
    config: RcnnTrainConfig,
    out_dir: str | Path,
    *,
    n_folds: int,
    classifier_weights: str | Path | None,
    model_config: AlexNetConfig,
    bundle_name: str = "calcsdk-rcnn",
    provenance: dict | None = None,
    samples_cache: str | Path | None = None,
    sample_workers: int = 1,
) -> dict[str, Any]:
    """Train ``n_folds`` R-CNNs, evaluate each, select one (see the module doc).
    ``samples_cache``: a disk cache of the training images' samples (:mod:`.sample_store`),
    shared by every fold and by runs of other configs over the same images in the same order.
    ``sample_workers``: processes that make the samples (:func:`.train.collect_samples`).

    Returns:
        the summary written to ``out_dir/cv.json`` (:func:`summarise`).
    """
    from calcsdk.detector import Detector
    from calcsdk.training.detector_evaluation import evaluate_records

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folds = kfold_indices(
        [r.image_label for r in train_records],
        n_folds,
        config.seed,
        groups=[r.group_id for r in train_records],
    )
    results: list[dict[str, Any]] = []
    samples = None
    for k, (fit_idx, val_idx) in enumerate(folds, start=1):
        fold_dir = out / f"fold{k}"
        done = fold_dir / "fold.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            log.info("fold %d: already trained (%s)", k, done)
            continue
        if samples is None:
            t = time.perf_counter()
            samples = collect_samples(
                train_records, config.samples, cache_dir=samples_cache, workers=sample_workers
            )
            sample_seconds = time.perf_counter() - t
        log.info("fold %d/%d: %d train, %d val images", k, n_folds, len(fit_idx), len(val_idx))
        result = fit_rcnn(
            [samples[i] for i in fit_idx],
            [samples[i] for i in val_idx],
            config,
            fold_dir,
            classifier_weights=classifier_weights,
            model_config=model_config,
            bundle_name=f"{bundle_name}-fold{k}",
            provenance={**(provenance or {}), "fold": k, "n_folds": n_folds},
            seconds={"samples (shared by the folds)": sample_seconds},
            mining_records=[train_records[i] for i in fit_idx],
        )
        detector = Detector(result.bundle_dir)
        val_eval = evaluate_records(
            detector, [train_records[i] for i in val_idx], fold_dir / "eval_val"
        )
        test_eval = evaluate_records(detector, test_records, fold_dir / "eval")
        record = {
            "fold": k,
            "train_images": [train_records[i].image_path for i in fit_idx],
            "val_images": [train_records[i].image_path for i in val_idx],
            "seconds": result.seconds,
            "val": headline(val_eval),
            "test": headline(test_eval),
            "test_table5": test_eval["overall"]["table5"],
        }
        done.write_text(json.dumps(record, indent=1))
        results.append(record)
    summary = summarise(results)
    selected = out / f"fold{summary['selected_fold']}" / "bundle"
    target = out / "bundle"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(selected, target)
    summary["bundle"] = str(target)
    summary["config"] = config.name
    summary["test_images"] = [r.image_path for r in test_records]
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    return summary


def headline(evaluation: dict[str, Any]) -> dict[str, Any]:
    """Table 6 figures, FROC sensitivities and timing of one evaluation (JSON-safe)."""
    overall = evaluation["overall"]
    return {
        "n_images": overall["n_images"],
        **{key: overall["table6"][key] for key in TABLE6_KEYS},
        "froc_at_0.5_1_2": [overall["sensitivity_at_fp"]["any"][r] for r in ("0.5", "1.0", "2.0")],
        "median_seconds_per_image": evaluation["median_seconds_per_image"],
    }


def _spread(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean, sample SD, min and max of the finite values (None where there are none)."""
    finite = np.array([v for v in values if v is not None and v == v], np.float64)
    if finite.size == 0:
        return {"mean": None, "sd": None, "min": None, "max": None}
    sd = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {
        "mean": float(finite.mean()),
        "sd": sd,
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def summarise(folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Across-fold statistics and the selection.

    Args:
        folds: the folds' ``fold.json`` records (keys ``fold``, ``val``, ``test``,
            ``test_table5``), in fold order.
    Returns:
        ``{"folds", "selected_fold", "selection", "table6": {metric: spread},
        "table5": {class: {metric: spread}}}``; a spread is :func:`_spread` of the folds' test
        figures. The selected fold has the highest validation mAP (ties: the lowest fold;
        a fold without a finite mAP ranks last).
    """
    if not folds:
        raise ValueError("no folds to summarise")

    def key(record: dict[str, Any]) -> tuple[float, int]:
        value = record["val"]["map"]
        return (value if value is not None and value == value else -1.0, -record["fold"])

    selected = max(folds, key=key)["fold"]
    table6 = {m: _spread([f["test"][m] for f in folds]) for m in TABLE6_KEYS}
    classes = list(folds[0]["test_table5"])
    table5 = {
        c: {m: _spread([f["test_table5"][c][m] for f in folds]) for m in TABLE5_KEYS}
        for c in classes
    }
    return {
        "folds": list(folds),
        "selected_fold": selected,
        "selection": "highest validation mAP (IoU 0.5); ties go to the lowest fold",
        "table6": table6,
        "table5": table5,
    }
