"""The R-CNN run report: Tables 5 and 6 "average (range)" as in the paper, the folds' FROC
curves, ground-truth + detection overlays and the proposal-recall curve of the test images,
written beside ``cv.json`` (:mod:`.cross_validation`). A one-split run (``--folds 1``: ``eval/``,
``split.json``, ``bundle/``) gets the same report with its single split as the only fold.

Files (under the run folder): ``report.md``, ``froc.png``, ``overlays/*.png``,
``proposal_recall.json`` and ``proposal_recall.png``. Every figure is read from the folds'
evaluation files (``foldK/eval/evaluation.json``) or recomputed with the SDK's own code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from calcsdk.training.datasets.record import ImageRecord

# The paper's Table 6 (average over five folds): RCNN-1 and YOLOv4-1 lr 1e-3 / 50 epochs,
# RCNN-2 and YOLOv4-2 lr 1e-4 / 100 epochs, batch 128.
PAPER_TABLE6 = {
    "rcnn-1": {"precision": 0.72, "recall": 0.66, "f1": 0.69, "map": 0.66},
    "rcnn-2": {"precision": 0.82, "recall": 0.85, "f1": 0.83, "map": 0.74},
    "yolov4-1": {"precision": 0.72, "recall": 0.57, "f1": 0.64, "map": 0.70},
    "yolov4-2": {"precision": 0.77, "recall": 0.78, "f1": 0.77, "map": 0.70},
}
RECALL_COUNTS = (50, 100, 250, 500, 1000, 2000)


def _f(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.2f}"


def _range(spread: dict[str, float | None]) -> str:
    if spread["mean"] is None:
        return "n/a"
    return f"{spread['mean']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"


def markdown(summary: dict[str, Any], run_dir: Path, recall: dict | None) -> str:
    """The report's markdown (see the module doc)."""
    name = summary.get("config", "?")
    folds = summary["folds"]
    n_test = folds[0]["test"]["n_images"]
    kind = "one split" if len(folds) == 1 else f"{len(folds)}-fold cross-validation"
    lines = [
        f"# R-CNN {name}: {kind} (the paper's Tables 5 and 6)",
        "",
        f"Run folder `{run_dir}`. Test: {n_test} held-out images, the same for every fold. "
        f"Selected: fold {summary['selected_fold']} ({summary['selection']}); its bundle is "
        "`bundle/`.",
        "",
        "## Table 6 analogue: test figures per fold (CF 0.5, macro; mAP at IoU 0.5)",
        "",
        "| fold | train / val images | val mAP | precision | recall | F1 | mAP | "
        "FROC @0.5/1/2 FP | detect() s/img |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in folds:
        t = f["test"]
        mark = "**" if f["fold"] == summary["selected_fold"] else ""
        lines.append(
            f"| {mark}{f['fold']}{mark} | {len(f['train_images'])} / {len(f['val_images'])} | "
            f"{_f(f['val']['map'])} | {_f(t['precision'])} | {_f(t['recall'])} | {_f(t['f1'])} "
            f"| {_f(t['map'])} | {' / '.join(_f(v) for v in t['froc_at_0.5_1_2'])} | "
            f"{t['median_seconds_per_image']:.2f} |"
        )
    t6 = summary["table6"]
    lines += [
        "",
        "| | precision | recall | F1 | mAP |",
        "|---|---|---|---|---|",
        f"| this run: {'one split' if len(folds) == 1 else 'mean (min-max) over folds'} | "
        f"{_range(t6['precision'])} | {_range(t6['recall'])} | {_range(t6['f1'])} | "
        f"{_range(t6['map'])} |",
    ]
    paper = PAPER_TABLE6.get(name)
    if paper:
        lines.append(
            f"| paper {name.upper()} | {paper['precision']:.2f} | {paper['recall']:.2f} | "
            f"{paper['f1']:.2f} | {paper['map']:.2f} |"
        )
    lines += [
        "",
        "## Table 5 analogue: per class, mean ± SD over folds (test images)",
        "",
        "| class | P No CF | P CF 0.5 | R No CF | R CF 0.5 |",
        "|---|---|---|---|---|",
    ]
    for cls, spreads in summary["table5"].items():
        cells = [
            "n/a" if s["mean"] is None else f"{s['mean']:.2f} ± {s['sd']:.2f}"
            for s in spreads.values()
        ]
        lines.append(f"| {cls} | {' | '.join(cells)} |")
    selected = _eval_dir(run_dir, summary, summary["selected_fold"]) / "evaluation.md"
    if selected.exists():
        body = selected.read_text().split("\n", 1)[1]
        lines += [
            "",
            f"## Selected fold {summary['selected_fold']} on the test images, by density",
            body.replace("\n## ", "\n### "),
        ]
    lines += ["", "![FROC of every fold on the test images](froc.png)", ""]
    if recall:
        lines += [
            "## Proposal recall on the test images",
            "",
            "| proposals kept | per image | recall IoU 0.5 | recall IoU 0.3 |",
            "|---|---|---|---|",
        ]
        for row in recall["rows"]:
            lines.append(
                f"| {row['max_proposals']} | {row['proposals_per_image']:.0f} | "
                f"{_f(row['recall_iou_0.5'])} | {_f(row['recall_iou_0.3'])} |"
            )
        lines += [
            "",
            f"EdgeBoxes + pruning: {recall['seconds_per_image_p50']:.2f} s per image (median).",
            "",
            "![proposal recall](proposal_recall.png)",
            "",
        ]
    overlays = sorted((run_dir / "overlays").glob("*.png"))
    if overlays:
        lines += [
            "## Overlays (selected fold, CF 0.5; white: ground truth)",
            "",
            *[f"![{p.stem}](overlays/{p.name})" for p in overlays],
            "",
        ]
    return "\n".join(lines)


def write_report(
    run_dir: str | Path,
    test_records: Sequence[ImageRecord],
    *,
    overlays: int = 4,
    proposal_config=None,
) -> Path:
    """Write the report files of a finished run, cross-validated or one split (module doc)."""
    from calcsdk.benchmarks import froc_plot, proposal_recall
    from calcsdk.detector import Detector
    from calcsdk.image import read_mammogram
    from calcsdk.overlay import write_overlay
    from calcsdk.proposals import ProposalConfig
    from calcsdk.training.datasets.record import records_to_ground_truth

    run = Path(run_dir)
    summary = load_summary(run)
    curves = {
        f"fold {f['fold']}": froc_plot.load_curve(
            _eval_dir(run, summary, f["fold"]) / "evaluation.json"
        )
        for f in summary["folds"]
    }
    froc_plot.plot(curves, run / "froc.png")

    detector = Detector(run / "bundle")
    shown = _one_per_patient([r for r in test_records if r.num_boxes], overlays)
    (run / "overlays").mkdir(exist_ok=True)
    for stale in (run / "overlays").glob("*.png"):  # from an earlier report of this run
        stale.unlink()
    for record, truth in zip(shown, records_to_ground_truth(shown), strict=True):
        mammogram = read_mammogram(record.image_path, spacing_mm=record.spacing_mm)
        detections = detector.detect(mammogram, conf=0.5)
        write_overlay(
            run / "overlays" / f"{Path(record.image_path).stem}.png",
            mammogram,
            detections,
            max_side=1024,
            truths=truth,
        )

    config = proposal_config or ProposalConfig()
    with_clusters = [r for r in test_records if r.num_boxes]
    recall = proposal_recall.sweep(
        proposal_recall.prepare(with_clusters), RECALL_COUNTS, replace(config, max_proposals=None)
    )
    report = {"variants": {"bundle's proposals": recall}, "images": len(with_clusters)}
    (run / "proposal_recall.json").write_text(json.dumps(recall, indent=1))
    proposal_recall.plot(report, run / "proposal_recall.png")
    path = run / "report.md"
    path.write_text(markdown(summary, run, recall))
    return path


def load_summary(run: Path) -> dict[str, Any]:
    """``cv.json`` of a cross-validation run; for a one-split run the same summary
    (:func:`.cross_validation.summarise`) built from ``split.json``, ``rcnn_train.json`` and
    ``eval/evaluation.json``, its split as fold 1 (``"one_split": True``)."""
    from calcsdk.training.rcnn.cross_validation import headline, summarise

    if (run / "cv.json").exists():
        return json.loads((run / "cv.json").read_text())
    try:
        split = json.loads((run / "split.json").read_text())
        evaluation = json.loads((run / "eval" / "evaluation.json").read_text())
        trained = json.loads((run / "rcnn_train.json").read_text())
    except FileNotFoundError as error:
        raise ValueError(
            f"{run}: neither a cross-validation run (cv.json) nor a finished one-split run"
            f" ({error.filename} is missing)"
        ) from error
    fold = {
        "fold": 1,
        "train_images": split.get("train", []),
        "val_images": split.get("val", []),
        "val": {"map": None},
        "test": headline(evaluation),
        "test_table5": evaluation["overall"]["table5"],
    }
    summary = summarise([fold])
    summary["config"] = trained["config"]["name"]
    summary["selection"] = "one split, no selection"
    summary["one_split"] = True
    return summary


def _eval_dir(run: Path, summary: dict[str, Any], fold: int) -> Path:
    """Where fold ``fold``'s test evaluation lives."""
    return run / "eval" if summary.get("one_split") else run / f"fold{fold}" / "eval"


def _one_per_patient(records: Sequence[ImageRecord], count: int) -> list[ImageRecord]:
    """Up to ``count`` records, different patients first (then the rest, in order)."""
    seen, first, rest = set(), [], []
    for record in records:
        (rest if record.group_id in seen else first).append(record)
        seen.add(record.group_id)
    return (first + rest)[:count]
