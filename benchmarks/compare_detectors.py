"""Tables 5 and 6 of several detectors side by side, each evaluated on the same test images.

Reads the ``evaluation.json`` (or ``.json.gz``) files that ``calcsdk eval``, ``calcsdk train
rcnn`` and ``calcsdk train yolo --split`` write (:func:`calcsdk.training.detector_evaluation.
evaluate_predictions`), and writes one markdown page: Table 6 (CF 0.5, macro over classes; mAP
at IoU 0.5; FROC sensitivity; median seconds per image) with the paper's rows for reference,
Table 5 per class (No CF and CF 0.5), and F1 / mAP by BI-RADS density.

    python -m calcsdk.benchmarks.compare_detectors \\
        --run "R-CNN rcnn-1 (0.4.0)=benchmarks/results/rcnn_default/default-0.4.0/evaluation.json.gz" \\
        --run "YOLOv4-1=runs/yolov4-1/eval/evaluation.json" \\
        --paper rcnn-2 --paper yolov4-2 --out comparison.md
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from calcsdk.training.detector_evaluation import format_figure, table5_cells, table6_cells
from calcsdk.training.rcnn.cv_report import PAPER_TABLE6

DENSITIES = ("A", "B", "C", "D")
PAPER_NAMES = {
    "rcnn-1": "RCNN-1",
    "rcnn-2": "RCNN-2",
    "yolov4-1": "YOLOv4-1",
    "yolov4-2": "YOLOv4-2",
}


def load_evaluation(path: str | Path) -> dict[str, Any]:
    """One evaluation file (``.json`` or ``.json.gz``) as a dict.

    Raises:
        ValueError: the file is not JSON, or lacks the ``overall`` tables (names the file).
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as handle:
            result = json.load(handle)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable evaluation JSON ({error})") from error
    overall = result.get("overall") if isinstance(result, dict) else None
    if not isinstance(overall, dict) or not {"table5", "table6", "n_images"} <= overall.keys():
        raise ValueError(f"{path}: no overall table5/table6/n_images; not an evaluation file")
    return result


def comparison_markdown(
    runs: Sequence[tuple[str, dict[str, Any]]], paper: Sequence[str] = (), title: str = ""
) -> str:
    """The side-by-side page for ``runs`` (label, evaluation dict), in that order.

    Raises:
        ValueError: no run, or runs scored on different numbers of images (not comparable).
    """
    if not runs:
        raise ValueError("compare at least one evaluation")
    counts = {label: r["overall"]["n_images"] for label, r in runs}
    if len(set(counts.values())) != 1:
        raise ValueError(f"the evaluations cover different numbers of images: {counts}")
    unknown = [name for name in paper if name not in PAPER_TABLE6]
    if unknown:
        raise ValueError(f"no paper figures for {unknown}; known: {sorted(PAPER_TABLE6)}")
    n_images = next(iter(counts.values()))
    lines = [f"# {title or 'Detectors compared'}", ""]
    lines += [f"All on the same {n_images} test images.", ""]
    lines += ["## Table 6 analogue (CF 0.5, macro over classes; mAP at IoU 0.5)", ""]
    lines += ["| model | precision | recall | F1 | mAP | FROC sens @0.5/1/2 FP | s/image |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for label, result in runs:
        seconds = format_figure(result.get("median_seconds_per_image"))
        lines.append(f"| {label} | {table6_cells(result['overall'])} | {seconds} |")
    for name in paper:
        p = PAPER_TABLE6[name]
        lines.append(
            f"| paper {PAPER_NAMES.get(name, name)} (5-fold mean) | {format_figure(p['precision'])} | {format_figure(p['recall'])} "
            f"| {format_figure(p['f1'])} | {format_figure(p['map'])} | | |"
        )
    lines += ["", "## Table 5 analogue (per class)", ""]
    lines += ["| model | class | P No CF | P CF 0.5 | R No CF | R CF 0.5 | lesions |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for label, result in runs:
        for name, row in result["overall"]["table5"].items():
            lines.append(f"| {label} | {name} | {table5_cells(row)} |")
    lines += ["", "## By BI-RADS density (CF 0.5): F1 / mAP", ""]
    lines += ["| model | " + " | ".join(f"density {d}" for d in DENSITIES) + " |"]
    lines += ["|---|" + "---|" * len(DENSITIES)]
    for label, result in runs:
        cells = []
        for density in DENSITIES:
            subset = result.get("by_density", {}).get(density)
            if subset is None:
                cells.append("n/a")
                continue
            t = subset["table6"]
            cells.append(
                f"{format_figure(t['f1'])} / {format_figure(t['map'])} ({subset['n_images']} images)"
            )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _run_argument(text: str) -> tuple[str, Path]:
    label, sep, path = text.rpartition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    return label, Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=_run_argument, action="append", required=True,
                        metavar="LABEL=PATH", help="an evaluation.json(.gz); repeat")  # fmt: skip
    parser.add_argument("--paper", action="append", default=[], choices=sorted(PAPER_TABLE6),
                        help="add the paper's Table 6 row of this model; repeat")  # fmt: skip
    parser.add_argument("--title", default="")
    parser.add_argument("--out", type=Path, help="markdown file (default: standard output)")
    args = parser.parse_args(argv)
    try:
        runs = [(label, load_evaluation(path)) for label, path in args.run]
        text = comparison_markdown(runs, args.paper, args.title)
    except ValueError as error:
        raise SystemExit(f"compare_detectors: {error}") from error
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
