"""``calcsdk eval --results FILE --truth FILE``: score any system's detections like calcsdk's.

Results: CSV, JSONL or COCO (``calcsdk detect`` outputs, or another system's in those formats,
see :mod:`calcsdk.batch.results`). Truth: COCO or a public dataset's annotations through the
dataset loaders. Prints the paper's Tables 5/6 analogues (No CF and CF 0.5: per-class P/R/F1/AP,
mAP), FROC sensitivity at 0.5/1/2 FP per image, confusion matrices and a breakdown by breast
density when the truth has it; ``--json OUT`` writes the full report.
"""

from __future__ import annotations

import argparse
import sys

TRUTH_FORMATS = ("coco", "mias", "cbis", "inbreast", "vindr")


def _iou(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"--iou should be in (0, 1], got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, help="detections: .csv, .jsonl or COCO .json")
    parser.add_argument("--truth", required=True, help="ground truth file (or dataset folder)")
    parser.add_argument("--truth-format", choices=TRUTH_FORMATS, default="coco")
    parser.add_argument("--image-root", default=None, help="COCO truth: folder of file_name")
    parser.add_argument("--iou", type=_iou, default=0.5, help="IoU for a match (default 0.5)")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the report as JSON")


def _coco_categories(path: str) -> dict[int, str] | None:
    """Category id -> name of a COCO truth file (to read a COCO results list)."""
    import json

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return {c["id"]: str(c["name"]).lower() for c in data.get("categories") or []}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def run(args: argparse.Namespace) -> int:
    import json

    from calcsdk.batch.durable import atomic_write
    from calcsdk.batch.evaluation import evaluate, format_report
    from calcsdk.batch.results import read_results
    from calcsdk.batch.truth import load_truth, pair_with_truth
    from calcsdk.errors import CalcSdkError

    records = load_truth(args.truth, args.truth_format, args.image_root)
    if not records:
        raise CalcSdkError("the ground truth has no images", args.truth)
    categories = _coco_categories(args.truth) if args.truth_format == "coco" else None
    results = read_results(args.results, records[0].class_names, category_names=categories)
    paired = pair_with_truth(records, results)
    if len(paired.without_results) == len(records) and len(results):
        raise CalcSdkError(
            "no result names an image of the truth (compare the file names / image ids)",
            args.results,
        )
    report = evaluate(paired.preds, paired.truths, paired.densities, iou=args.iou)
    report["results"] = str(args.results)
    report["truth"] = {"path": str(args.truth), "format": args.truth_format}
    report["pairing"] = {
        "truth_images_without_results": paired.without_results,
        "results_not_in_truth": paired.unpaired_results,
    }
    print(format_report(report))
    if paired.without_results:
        print(
            f"note: {len(paired.without_results)} truth image(s) have no results and count as "
            "images without detections",
            file=sys.stderr,
        )
    if paired.unpaired_results:
        print(
            f"note: {len(paired.unpaired_results)} result image(s) are not in the truth: ignored",
            file=sys.stderr,
        )
    if args.json:
        atomic_write(args.json, lambda handle: json.dump(report, handle, indent=1))
    return 0
