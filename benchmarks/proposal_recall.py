"""Proposal recall against ground-truth clusters, as a function of the number of proposals
kept, and proposal latency (the R-CNN issue's "proposal recall ... as a function of the number
of boxes"). Uses the SDK's own ``prepare_mammogram`` and ``propose``.

Three settings are compared: the default (EdgeBoxes on a 1 mm cluster-density map of the specks,
0.4 mm grid, NMS beta 0.55), the same map at beta 0.75 (calcsdk 0.2-0.3), and the first default
(edges of the specks themselves, 0.2 mm grid). EdgeBoxes
runs once per image and variant with no cap; keeping the best K proposals by EdgeBoxes score is
exactly ``ProposalConfig(max_proposals=K)``, so each K's recall is read off that one run.

    python -m calcsdk.benchmarks.proposal_recall --data DIR --images 25 \\
        --counts 100,250,500,1000,2000 --out benchmarks/results

Writes ``proposal_recall.json`` and, with matplotlib, ``proposal_recall.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from calcsdk.proposals import ProposalConfig

VARIANTS = {
    "density map, 0.4 mm grid, beta 0.55 (default)": ProposalConfig(),
    "density map, 0.4 mm grid, beta 0.75 (calcsdk 0.2-0.3)": ProposalConfig(beta=0.75),
    "speck edges, 0.2 mm grid, beta 0.75 (calcsdk 0.1)": ProposalConfig(
        beta=0.75, density_sigma_mm=None, spacing_mm=0.2, edge_sigma_px=1.5, max_boxes=2000
    ),
}


def prepare(records, working_spacing_mm: float = 0.1):
    """[(WorkingImage, (G, 4) float32 ground-truth xyxy in working pixels)] per record."""
    from calcsdk.boxes import scale_boxes
    from calcsdk.image import read_mammogram
    from calcsdk.prepare import prepare_mammogram

    out = []
    for r in records:
        working = prepare_mammogram(
            read_mammogram(r.image_path, spacing_mm=r.spacing_mm), working_spacing_mm
        )
        out.append((working, scale_boxes(r.boxes, working.scale[1], working.scale[0])))
    return out


def sweep(prepared, counts, config: ProposalConfig) -> dict:
    """Recall at IoU 0.5/0.3 for the best ``count`` proposals, and seconds per image."""
    from calcsdk.boxes import box_iou
    from calcsdk.proposals import propose

    runs, seconds = [], []
    for working, gt in prepared:
        t = time.perf_counter()
        boxes, _ = propose(working.image01, working.mask, working.spacing_mm, config)
        seconds.append(time.perf_counter() - t)
        runs.append((boxes, gt))
    rows = []
    for count in counts:
        best = [
            box_iou(gt, boxes[:count]).max(axis=1) if len(boxes) else np.zeros(len(gt))
            for boxes, gt in runs
            if len(gt)
        ]
        best = np.concatenate(best) if best else np.zeros(0)
        rows.append({
            "max_proposals": int(count),
            "proposals_per_image": float(np.mean([min(count, len(b)) for b, _ in runs])),
            "recall_iou_0.5": float(np.mean(best >= 0.5)) if best.size else None,
            "recall_iou_0.3": float(np.mean(best >= 0.3)) if best.size else None,
        })  # fmt: skip
    return {
        "config": config.to_dict(),
        "seconds_per_image_p50": float(np.median(seconds)),
        "all_proposals_per_image": float(np.mean([len(b) for b, _ in runs])),
        "rows": rows,
    }


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, result), color in zip(report["variants"].items(), ("C0", "C1", "C2"), strict=False):
        x = [r["proposals_per_image"] for r in result["rows"]]
        label = f"{name}, {result['seconds_per_image_p50']:.2f} s/img"
        ax.plot(x, [r["recall_iou_0.5"] for r in result["rows"]], "o-", color=color, label=label)
        ax.plot(x, [r["recall_iou_0.3"] for r in result["rows"]], "s--", color=color, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("proposals kept per image (best by EdgeBoxes score)")
    ax.set_ylabel("cluster recall (solid IoU 0.5, dashed 0.3)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"EdgeBoxes proposals, {report['images']} synthetic mammograms")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    from calcsdk.training.datasets.coco import load_coco

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with annotations.json")
    parser.add_argument("--images", type=int, default=25, help="last N images with clusters")
    parser.add_argument("--counts", default="100,250,500,1000,2000")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    records = [r for r in load_coco(args.data / "annotations.json") if r.num_boxes]
    records = records[-args.images :]
    counts = [int(c) for c in args.counts.split(",")]
    prepared = prepare(records)
    report = {
        "benchmark": "proposal_recall",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m calcsdk.benchmarks.proposal_recall "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "data": str(args.data),
        "images": len(records),
        "clusters": int(sum(r.num_boxes for r in records)),
        "load_average_before": os.getloadavg(),
        "variants": {
            name: sweep(prepared, counts, replace(config, max_proposals=None))
            for name, config in VARIANTS.items()
        },
        "load_average_after": os.getloadavg(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "proposal_recall.json").write_text(json.dumps(report, indent=2) + "\n")
    try:
        plot(report, args.out / "proposal_recall.png")
    except ImportError:
        pass
    for name, result in report["variants"].items():
        print(name, f"{result['seconds_per_image_p50']:.2f} s/img")
        for row in result["rows"]:
            print("  ", row)


if __name__ == "__main__":
    main()
