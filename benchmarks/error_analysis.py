"""Where a detector's errors come from: per ground-truth cluster, was it proposed, found, and
labelled right, broken down by breast density, morphology, hard case and cluster size.

For each cluster of the evaluated images (COCO annotations written by ``calcsdk synth``, which
carry ``morphology``, ``hard`` and per-image ``density``):
- ``proposed``: some EdgeBoxes proposal of the bundle's settings has IoU >= 0.5 with it (the
  proposal stage's ceiling; R-CNN bundles only);
- ``found``: some detection with score >= 0.5 has IoU >= 0.5 with it, whatever its class;
- ``correct``: such a detection has the cluster's class.
False positives per image at CF 0.5 are counted per density. The paper's Tables 5/6 analogues
and FROC come from :func:`calcsdk.training.detector_evaluation.paper_tables` on the same
predictions (one implementation of the metrics).

    python -m calcsdk.benchmarks.error_analysis --model sdk/data/models/default \\
        --data DIR --skip 150 --out benchmarks/results/error_analysis_default
    python -m calcsdk.benchmarks.error_analysis --model RUN/bundle --data DIR \
        --split RUN/cv.json --out benchmarks/results/rcnn_cv/error_analysis
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from calcsdk import Detector
from calcsdk.boxes import box_iou
from calcsdk.bundle import load_bundle
from calcsdk.image import read_mammogram
from calcsdk.pipelines.rcnn import RcnnSettings
from calcsdk.prepare import prepare_mammogram
from calcsdk.proposals import ProposalConfig, propose
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.datasets.record import records_to_ground_truth
from calcsdk.training.detector_evaluation import paper_tables, predict_records

SIZE_BINS_MM = (8.0, 15.0)  # cluster box's longer side: < 8, 8-15, > 15 mm


def size_bin(side_mm: float) -> str:
    low, high = SIZE_BINS_MM
    return f"< {low:g} mm" if side_mm < low else (f"> {high:g} mm" if side_mm > high else
                                                     f"{low:g}-{high:g} mm")  # fmt: skip


def clusters_by_image(annotations_path: Path) -> dict[str, list[dict]]:
    """file path -> [{box_xyxy, category, morphology, hard, density}] from the COCO file."""
    data = json.loads(annotations_path.read_text())
    names = {c["id"]: c["name"].lower() for c in data["categories"]}
    images = {i["id"]: i for i in data["images"]}
    out: dict[str, list[dict]] = defaultdict(list)
    for a in data["annotations"]:
        image = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        out[str((annotations_path.parent / image["file_name"]).resolve())].append({
            "box": [x, y, x + w, y + h],
            "category": names[a["category_id"]],
            "morphology": a.get("morphology", "unknown"),
            "hard": bool(a.get("hard", False)),
            "density": image.get("density", "?"),
            "side_mm": max(w, h) * float(image.get("spacing_mm", 0.1)),
        })  # fmt: skip
    return out


def _proposal_best_iou(bundle_path: str, record, boxes: np.ndarray) -> np.ndarray:
    bundle = load_bundle(bundle_path)
    settings = RcnnSettings.from_bundle(bundle)
    config = ProposalConfig.from_dict(bundle.section("proposals"))
    working = prepare_mammogram(
        read_mammogram(record.image_path, spacing_mm=record.spacing_mm),
        settings.working_spacing_mm,
        settings.fallback_spacing_mm,
    )
    proposals, _ = propose(working.image01, working.mask, working.spacing_mm, config)
    if len(proposals) == 0:
        return np.zeros(len(boxes))
    sy, sx = working.scale
    original = proposals / np.array([sx, sy, sx, sy], np.float32)
    return box_iou(boxes.astype(np.float32), original).max(axis=1)


def held_out_paths(split: Path) -> set[str]:
    """Resolved image paths of a run's held-out images: ``split.json`` of ``calcsdk train
    rcnn`` (key ``test``) or ``cv.json`` of ``--folds`` (key ``test_images``).

    Raises:
        ValueError: the file has neither key.
    """
    saved = json.loads(split.read_text())
    paths = saved.get("test", saved.get("test_images"))
    if not isinstance(paths, list):
        raise ValueError(f"{split}: no 'test' or 'test_images' list of image paths")
    return {str(Path(p).resolve()) for p in paths}


def analyse(
    model: str, data: Path, skip: int, limit: int | None, split: Path | None = None
) -> dict:
    """Every cluster of the images ``[skip:skip+limit]`` of ``data`` (only those listed in
    ``split`` when given, see :func:`held_out_paths`), as the module doc describes."""
    records = load_coco(data / "annotations.json")
    if split is not None:
        keep = held_out_paths(split)
        records = [r for r in records if str(Path(r.image_path).resolve()) in keep]
    records = records[skip:]
    records = records[:limit] if limit else records
    clusters = clusters_by_image(data / "annotations.json")
    detector = Detector(model)
    preds, median_s = predict_records(detector, records)
    tables = paper_tables(preds, records_to_ground_truth(records))
    is_rcnn = detector.bundle.pipeline == "rcnn"
    rows, fp_by_density = [], defaultdict(list)
    for record, pred in zip(records, preds, strict=True):
        found = clusters.get(str(Path(record.image_path).resolve()), [])
        boxes = np.array([c["box"] for c in found], np.float32).reshape(-1, 4)
        keep = pred.scores >= 0.5
        det_boxes, det_labels = pred.boxes[keep], pred.labels[keep]
        iou = box_iou(boxes, det_boxes) if len(boxes) and len(det_boxes) else None
        proposal_iou = _proposal_best_iou(model, record, boxes) if is_rcnn and len(boxes) else None
        matched_detections = np.zeros(len(det_boxes), bool)
        for i, cluster in enumerate(found):
            hits = np.flatnonzero(iou[i] >= 0.5) if iou is not None else np.zeros(0, int)
            matched_detections[hits] = True
            names = {pred.class_names[det_labels[j]] for j in hits}
            rows.append({
                **{k: cluster[k] for k in ("category", "morphology", "hard", "density")},
                "size": size_bin(cluster["side_mm"]),
                "proposed": None if proposal_iou is None else bool(proposal_iou[i] >= 0.5),
                "found": bool(len(hits)),
                "correct": cluster["category"] in names,
            })  # fmt: skip
        density = record.metadata.get("density", "?")
        fp_by_density[density].append(int((~matched_detections).sum()))
    return {
        "model": detector.model_version,
        "data": str(data),
        "images": len(records),
        "clusters": len(rows),
        "median_seconds_per_image": median_s,
        "tables": {
            "table5": tables["table5"],
            "table6": tables["table6"],
            "sensitivity_at_fp": tables["sensitivity_at_fp"]["any"],
        },
        "breakdown": {
            key: _group(rows, key) for key in ("category", "density", "morphology", "hard", "size")
        },
        "false_positives_per_image_cf_0.5": {
            d: {"images": len(v), "mean": float(np.mean(v))}
            for d, v in sorted(fp_by_density.items())
        },
    }


def _group(rows: list[dict], key: str) -> dict[str, dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[str(row[key])].append(row)
    out = {}
    for name, members in sorted(groups.items()):
        proposed = [m["proposed"] for m in members if m["proposed"] is not None]
        out[name] = {
            "clusters": len(members),
            "proposed": float(np.mean(proposed)) if proposed else None,
            "found": float(np.mean([m["found"] for m in members])),
            "correct_class": float(np.mean([m["correct"] for m in members])),
        }
    return out


def markdown(report: dict) -> str:
    t6 = report["tables"]["table6"]
    s = report["tables"]["sensitivity_at_fp"]
    lines = [
        f"# Error analysis of {report['model']} on {report['images']} images "
        f"({report['clusters']} clusters)",
        "",
        f"Table 6 analogue (CF 0.5, macro): P {t6['precision']:.2f}, R {t6['recall']:.2f}, "
        f"F1 {t6['f1']:.2f}, mAP {t6['map']:.2f}; FROC sensitivity at 0.5 / 1 / 2 FP per image "
        f"{s['0.5']:.2f} / {s['1.0']:.2f} / {s['2.0']:.2f}; median detect() "
        f"{report['median_seconds_per_image']:.2f} s.",
        "",
        "Per cluster: proposed = a proposal at IoU >= 0.5; found = a detection with score >= 0.5"
        " at IoU >= 0.5 (any class); correct = such a detection of the cluster's class.",
    ]
    for key, groups in report["breakdown"].items():
        lines += ["", f"## By {key}", "", "| group | clusters | proposed | found | correct class |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, g in groups.items():
            proposed = "-" if g["proposed"] is None else f"{g['proposed']:.2f}"
            lines.append(
                f"| {name} | {g['clusters']} | {proposed} | {g['found']:.2f} | "
                f"{g['correct_class']:.2f} |"
            )
    lines += ["", "## False positives per image at CF 0.5, by density", "",
              "| density | images | FP / image |", "|---|---|---|"]  # fmt: skip
    for density, v in report["false_positives_per_image_cf_0.5"].items():
        lines.append(f"| {density} | {v['images']} | {v['mean']:.2f} |")
    return "\n".join(lines) + "\n"


def write_report(prefix: Path, report: dict, text: str) -> str:
    """Write ``prefix.json`` (``report``) and ``prefix.md`` (``text``); returns ``text``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    prefix.with_suffix(".md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.error_analysis")
    parser.add_argument("--model", required=True, help="bundle to analyse")
    parser.add_argument("--data", type=Path, required=True, help="calcsdk synth output folder")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N images (training)")
    parser.add_argument("--limit", type=int, default=None, help="use at most N images")
    parser.add_argument(
        "--split", type=Path, help="only these held-out images: a run's split.json or cv.json"
    )
    parser.add_argument("--out", type=Path, required=True, help="output prefix (.json, .md)")
    args = parser.parse_args(argv)
    report = analyse(args.model, args.data, args.skip, args.limit, args.split)
    print(write_report(args.out, report, markdown(report)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
