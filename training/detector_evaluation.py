"""Evaluate a detector bundle on held-out images the way the paper does, for the R-CNN and
YOLOv4 alike (same code, so the comparison is like for like).

* Table 5 analogue: per class precision and recall, without a confidence threshold ("No CF":
  every detection the model returns at ``conf=0``) and at the paper's 0.5 ("CF 0.5").
* Table 6 analogue: precision, recall, F1 (macro over the two classes, at CF 0.5) and mAP
  (all-point AP at IoU 0.5, ranking every detection).
* FROC: sensitivity at 0.5, 1 and 2 false positives per image (class-agnostic and per class).
* The same figures broken down by BI-RADS density A-D, and the 2x2 (+background) confusion.

Every number comes from :mod:`calcsdk.metrics` / :mod:`calcsdk.froc`; nothing is recomputed here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from calcsdk.detections import Detections, GroundTruth
from calcsdk.detector import Detector
from calcsdk.froc import froc
from calcsdk.metrics import detection_confusion_matrix, evaluate_detections
from calcsdk.training.datasets.record import ImageRecord, records_to_ground_truth

FROC_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
DENSITIES = ("A", "B", "C", "D")


def predict_records(
    detector: Detector, records: Sequence[ImageRecord]
) -> tuple[list[Detections], float]:
    """Every detection (``conf=0``) on each record's image, and the median seconds per image."""
    return predict_with(
        lambda r: detector.detect(r.image_path, conf=0.0, spacing_mm=r.spacing_mm), records
    )


def predict_with(
    predict: Callable[[ImageRecord], Detections], records: Sequence[ImageRecord]
) -> tuple[list[Detections], float]:
    """``predict`` (every detection of one record's image) over ``records``, and the median
    seconds per image; for models that are not a bundle yet (e.g. torch weights on a GPU)."""
    preds, times = [], []
    for record in records:
        t = time.perf_counter()
        preds.append(predict(record))
        times.append(time.perf_counter() - t)
    times.sort()
    return preds, times[len(times) // 2] if times else float("nan")


def paper_tables(
    preds: Sequence[Detections], truths: Sequence[GroundTruth], iou_threshold: float = 0.5
) -> dict[str, Any]:
    """Tables 5/6 analogues, FROC and confusion for one set of images (JSON-safe dict)."""
    no_cf = evaluate_detections(preds, truths, iou_threshold=iou_threshold, conf_threshold=None)
    cf = evaluate_detections(preds, truths, iou_threshold=iou_threshold, conf_threshold=0.5)
    table5 = {
        m.class_name: {
            "precision_no_cf": m.precision,
            "precision_cf_0.5": cf[m.class_name].precision,
            "recall_no_cf": m.recall,
            "recall_cf_0.5": cf[m.class_name].recall,
            "n_truths": m.n_truths,
        }
        for m in no_cf.per_class
    }
    table6 = {
        "precision": cf.macro.precision,
        "recall": cf.macro.recall,
        "f1": cf.macro.f1,
        "map": cf.mean_average_precision,
        "micro_f1": cf.micro.f1,
    }
    curves = {"any": froc(preds, truths, iou_threshold=iou_threshold, fp_per_image=FROC_RATES)}
    for name in no_cf.per_class:
        curves[name.class_name] = froc(
            preds,
            truths,
            iou_threshold=iou_threshold,
            fp_per_image=FROC_RATES,
            class_name=name.class_name,
        )
    return {
        "n_images": len(preds),
        "table5": table5,
        "table6": table6,
        "report_no_cf": no_cf.to_dict(),
        "report_cf_0.5": cf.to_dict(),
        "froc": {k: c.to_dict() for k, c in curves.items()},
        "sensitivity_at_fp": {
            k: dict(zip(map(str, FROC_RATES), c.sensitivity_at.tolist())) for k, c in curves.items()
        },
        "confusion_cf_0.5": detection_confusion_matrix(preds, truths, iou_threshold, 0.5).to_dict(),
    }


def evaluate_records(
    detector: Detector, records: Sequence[ImageRecord], out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Predict on ``records`` and build the tables, overall and per density; writes
    ``evaluation.json`` and ``evaluation.md`` under ``out_dir`` when given."""
    preds, median_s = predict_records(detector, records)
    return evaluate_predictions(preds, records, detector.model_version, median_s, out_dir)


def evaluate_predictions(
    preds: Sequence[Detections],
    records: Sequence[ImageRecord],
    model: str,
    median_seconds: float,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The tables of ``preds`` (one per record, every detection), overall and per density;
    writes ``evaluation.json`` and ``evaluation.md`` under ``out_dir`` when given."""
    truths = records_to_ground_truth(records)
    result = {"model": model, "median_seconds_per_image": median_seconds}
    result["overall"] = paper_tables(preds, truths)
    result["by_density"] = {}
    for density in DENSITIES:
        rows = [i for i, r in enumerate(records) if r.metadata.get("density") == density]
        if rows:
            result["by_density"][density] = paper_tables(
                [preds[i] for i in rows], [truths[i] for i in rows]
            )
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.json").write_text(json.dumps(result, indent=2))
        (out / "evaluation.md").write_text(markdown_tables(result))
    return result


def format_figure(value: float | None) -> str:
    """A figure with two decimals for the tables; ``n/a`` for None or NaN."""
    return "n/a" if value is None or value != value else f"{value:.2f}"


def table5_cells(row: dict[str, Any]) -> str:
    """One class's Table 5 cells: ``P No CF | P CF 0.5 | R No CF | R CF 0.5 | lesions``."""
    return (
        f"{format_figure(row['precision_no_cf'])} | {format_figure(row['precision_cf_0.5'])} | "
        f"{format_figure(row['recall_no_cf'])} | {format_figure(row['recall_cf_0.5'])} | {row['n_truths']}"
    )


def table6_cells(subset: dict[str, Any]) -> str:
    """A subset's Table 6 cells: ``precision | recall | F1 | mAP | FROC sens @0.5/1/2 FP``."""
    t, sens = subset["table6"], subset["sensitivity_at_fp"]["any"]
    return (
        f"{format_figure(t['precision'])} | {format_figure(t['recall'])} | {format_figure(t['f1'])} | {format_figure(t['map'])} | "
        f"{format_figure(sens['0.5'])} / {format_figure(sens['1.0'])} / {format_figure(sens['2.0'])}"
    )


def markdown_tables(result: dict[str, Any]) -> str:
    """The paper-style tables as markdown."""
    o = result["overall"]
    lines = [f"# Evaluation of {result['model']} on {o['n_images']} images", ""]
    lines += ["## Table 5 analogue (precision / recall, No CF vs CF 0.5)", ""]
    lines += [
        "| class | P No CF | P CF 0.5 | R No CF | R CF 0.5 | lesions |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in o["table5"].items():
        lines.append(f"| {name} | {table5_cells(m)} |")
    lines += ["", "## Table 6 analogue (CF 0.5, macro over classes; mAP at IoU 0.5)", ""]
    lines += ["| subset | images | precision | recall | F1 | mAP | FROC sens @0.5/1/2 FP |"]
    lines += ["|---|---|---|---|---|---|---|"]
    subsets = {"all": o, **{f"density {k}": v for k, v in result["by_density"].items()}}
    for label, t in subsets.items():
        lines.append(f"| {label} | {t['n_images']} | {table6_cells(t)} |")
    lines += ["", f"Median detect() time per image: {result['median_seconds_per_image']:.2f} s", ""]
    return "\n".join(lines)
