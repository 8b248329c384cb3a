"""FROC curves of one or more evaluated detectors in one PNG (class-agnostic lesion sensitivity
against false positives per image, from the ``froc.any`` curve that ``calcsdk train rcnn|yolo``
writes into ``RUN/eval/evaluation.json``; every point comes from :mod:`calcsdk.froc`).

    python -m calcsdk.benchmarks.froc_plot --out benchmarks/results/froc_tiny.png \\
        "R-CNN tiny=RUN1/eval/evaluation.json" "YOLOv4 tiny=RUN2/eval/evaluation.json"
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FP_LIMIT = 4.0  # x-axis: false positives per image


def load_curve(path: str | Path) -> dict:
    """The class-agnostic FROC curve (``fp_per_image``, ``sensitivity`` lists) of a report."""
    report = json.loads(Path(path).read_text())
    curve = report.get("overall", report).get("froc", {}).get("any")
    if not curve or "fp_per_image" not in curve:
        raise ValueError(f"{path}: no overall.froc.any curve in this evaluation report")
    return curve


def plot(curves: dict[str, dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        x = [0.0, *curve["fp_per_image"]]
        y = [0.0, *curve["sensitivity"]]
        ax.step(x, y, where="post", label=f"{label} ({curve['n_images']} images)")
    for rate in (0.5, 1.0, 2.0):
        ax.axvline(rate, color="0.8", lw=0.8, zorder=0)
    ax.set(xlim=(0, FP_LIMIT), ylim=(0, 1), xlabel="false positives per image",
           ylabel="cluster sensitivity (IoU >= 0.5, any class)")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.froc_plot")
    parser.add_argument("reports", nargs="+", metavar="LABEL=EVALUATION.json")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    curves = {}
    for item in args.reports:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"expected LABEL=PATH, got {item!r}")
        curves[label] = load_curve(path)
    plot(curves, args.out)
    print(args.out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
