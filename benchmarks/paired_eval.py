"""Paired evaluation of one R-CNN bundle's variants: the same images, the same proposals.

A variant is a precision of the fc7 model (``fp32``, ``int8``) plus optional overrides of the
bundle's ``thresholds`` (for example ``vote_iou=0.3`` or ``vote_iou=none``). Each image is read,
prepared and proposed ONCE; every precision scores those same proposals, and every variant
post-processes its precision's scores (the SDK's own ``RcnnPipeline`` methods and
:func:`calcsdk.postprocess.postprocess`, so the figures are what ``Detector.detect`` returns).
Metrics are :func:`calcsdk.training.detector_evaluation.paper_tables` (Tables 5/6 analogues
and FROC at IoU 0.5), plus F1 and mAP at IoU 0.3, and each variant's difference from the first.

    python -m calcsdk.benchmarks.paired_eval --model RUN/bundle --data DIR --split RUN/split.json \\
        --variant fp32 --variant int8 --json benchmarks/results/int8_map_full_size.json
    python -m calcsdk.benchmarks.paired_eval --model sdk/data/models/default --data DIR \\
        --variant "fp32 vote_iou=none" --variant "fp32 vote_iou=0.3" --json OUT.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk import Detector
from calcsdk.benchmarks.environment import environment_fingerprint
from calcsdk.benchmarks.error_analysis import held_out_paths
from calcsdk.image import read_mammogram
from calcsdk.metrics import evaluate_detections
from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.datasets.record import records_to_ground_truth
from calcsdk.training.detector_evaluation import paper_tables


@dataclasses.dataclass(frozen=True)
class Variant:
    """``precision`` of the fc7 model and ``overrides`` of the bundle's thresholds."""

    name: str
    precision: str
    overrides: dict[str, Any]


def parse_variant(text: str) -> Variant:
    """``"int8"`` or ``"fp32 vote_iou=0.3 nms_iou=0.4"`` (``none`` sets a field to None).

    Raises:
        ValueError: an empty text, an unknown thresholds field or a value that is not a number.
    """
    words = text.split()
    if not words:
        raise ValueError("an empty --variant")
    fields = {f.name for f in dataclasses.fields(PostprocessConfig)}
    overrides: dict[str, Any] = {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key not in fields or not value:
            raise ValueError(
                f"variant {text!r}: {word!r} is not FIELD=VALUE with FIELD in {fields}"
            )
        try:
            overrides[key] = None if value.lower() == "none" else float(value)
        except ValueError:
            raise ValueError(f"variant {text!r}: {value!r} is not a number or none") from None
        if key == "max_detections" and overrides[key] is not None:
            overrides[key] = int(overrides[key])
    return Variant(" ".join(words), words[0], overrides)


def evaluate(
    model: str | Path, records: Sequence[Any], variants: Sequence[Variant]
) -> dict[str, Any]:
    """Every variant's detections (``conf=0``) on ``records`` and their paper tables.

    Returns:
        JSON-safe dict: per variant ``table6``/``table5``/``froc`` (IoU 0.5), ``at_iou_0.3``
        (F1, mAP), median seconds per image of the network half, and ``delta_vs_first``.
    """
    variants = list({v.name: v for v in variants}.values())  # a repeated variant is one row
    if not variants:
        raise ValueError("no variants to evaluate")
    pipelines = {
        p: Detector(model, precision=p)._pipeline
        for p in dict.fromkeys(v.precision for v in variants)
    }
    first = next(iter(pipelines.values()))
    preds: dict[str, list] = {v.name: [] for v in variants}
    seconds: dict[str, list[float]] = {p: [] for p in pipelines}
    for record in records:
        image = read_mammogram(record.image_path, spacing_mm=record.spacing_mm)
        working = first.prepare(image)
        boxes = first.propose(working)
        scored = {}
        for precision, pipeline in pipelines.items():
            started = time.perf_counter()
            scores, deltas = pipeline.score_and_deltas(working, boxes)
            seconds[precision].append(time.perf_counter() - started)
            scored[precision] = (pipeline.refine(working, boxes, deltas), scores)
        for v in variants:
            pipeline = pipelines[v.precision]
            config = dataclasses.replace(pipeline.post_config, **v.overrides)
            refined, scores = scored[v.precision]
            preds[v.name].append(
                postprocess(refined, scores, pipeline.class_names, working, config, 0.0)
            )
    truths = records_to_ground_truth(records)
    out: dict[str, Any] = {}
    for v in variants:
        tables = paper_tables(preds[v.name], truths)
        loose = evaluate_detections(preds[v.name], truths, iou_threshold=0.3, conf_threshold=0.5)
        out[v.name] = {
            "precision": v.precision,
            "overrides": v.overrides,
            "table6": tables["table6"],
            "table5": tables["table5"],
            "sensitivity_at_fp": tables["sensitivity_at_fp"]["any"],
            "at_iou_0.3": {"f1": loose.macro.f1, "map": loose.mean_average_precision},
            "median_network_seconds": float(np.median(seconds[v.precision])),
        }
    base = out[variants[0].name]
    for v in variants:
        row = out[v.name]
        row["delta_vs_first"] = {
            **{
                k: row["table6"][k] - base["table6"][k]
                for k in ("precision", "recall", "f1", "map")
            },
            "f1_iou_0.3": row["at_iou_0.3"]["f1"] - base["at_iou_0.3"]["f1"],
            "map_iou_0.3": row["at_iou_0.3"]["map"] - base["at_iou_0.3"]["map"],
        }
    return out


def markdown(variants: dict[str, Any], n_images: int, n_truths: int) -> str:
    lines = [
        f"{n_images} images, {n_truths} ground-truth clusters; CF 0.5, macro over classes.",
        "",
        "| variant | P | R | F1 | mAP | F1 / mAP at IoU 0.3 | FROC @ 0.5 / 1 / 2 FP | "
        "network s / image | dF1 | dmAP |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in variants.items():
        t, d = row["table6"], row["delta_vs_first"]
        froc = " / ".join(f"{row['sensitivity_at_fp'][k]:.2f}" for k in ("0.5", "1.0", "2.0"))
        lines.append(
            f"| {name} | {t['precision']:.3f} | {t['recall']:.3f} | {t['f1']:.3f} | "
            f"{t['map']:.3f} | {row['at_iou_0.3']['f1']:.3f} / {row['at_iou_0.3']['map']:.3f} | "
            f"{froc} | {row['median_network_seconds']:.2f} | {d['f1']:+.3f} | {d['map']:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.paired_eval")
    parser.add_argument("--model", required=True, help="R-CNN bundle")
    parser.add_argument("--data", type=Path, required=True, help="calcsdk synth output folder")
    parser.add_argument("--split", type=Path, help="only these held-out images (split/cv.json)")
    parser.add_argument("--limit", type=int, help="use at most N images")
    parser.add_argument(
        "--variant", action="append", required=True, help='"PRECISION [FIELD=VALUE ...]"'
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    try:
        variants = [parse_variant(v) for v in args.variant]
    except ValueError as error:
        parser.error(str(error))
    records = load_coco(args.data / "annotations.json")
    if args.split is not None:
        keep = held_out_paths(args.split)
        records = [r for r in records if str(Path(r.image_path).resolve()) in keep]
    records = records[: args.limit] if args.limit else records
    if not records:
        where = f" listed in {args.split} (paths are resolved from the current folder)"
        parser.error(f"no images of {args.data}{where if args.split else ''}")
    started = time.perf_counter()
    results = evaluate(args.model, records, variants)
    n_truths = int(sum(len(r.boxes) for r in records))
    report = {
        "benchmark": "paired_eval",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m calcsdk.benchmarks.paired_eval "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model),
        "images": [r.image_path for r in records],
        "n_truths": n_truths,
        "seconds": time.perf_counter() - started,
        "environment": environment_fingerprint(),
        "variants": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        args.json.with_suffix(".md").write_text(markdown(results, len(records), n_truths))
    print(markdown(results, len(records), n_truths))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
