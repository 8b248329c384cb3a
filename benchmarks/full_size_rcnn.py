"""An UNTRAINED full-size R-CNN run folder, for latency benchmarks of the paper's network size.

Latency does not depend on the weights, and training the full AlexNet is out of reach on 2 CPU
cores (see BENCHMARKS.md), so the speed targets of the full-size R-CNN are measured on this:
- ``finetune/best.pt``: the paper's AlexNet (width 1.0, 56.9 M parameters), seeded He init;
- ``head.npz``: a seeded random linear head (one row per detector class) on fc7;
- ``bundle/``: both exported exactly as ``calcsdk train rcnn`` exports them (fp32 fc7 + folded
  head), plus ``fc7@int8`` calibrated on proposal crops of the shipped sample mammograms.

The folder has the layout ``calcsdk bench --reference-run`` expects, so the per-crop PyTorch +
numpy SVM reference runs the same weights. Its detections mean nothing; never ship it.

    python -m calcsdk.benchmarks.full_size_rcnn --out /tmp/fullsize
    calcsdk bench --model /tmp/fullsize/bundle --images sdk/data/samples \\
        --compare onnxruntime:fp32,onnxruntime:int8,torch-reference --reference-run /tmp/fullsize
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from calcsdk.export.quantize import add_int8_fc7, calibration_crops
from calcsdk.samples import sample_paths
from calcsdk.training.datasets.record import CLASS_NAMES
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig
from calcsdk.training.rcnn.head import LinearSvmHead
from calcsdk.training.rcnn.train import RcnnTrainConfig, export_rcnn_bundle


def random_head(dim: int, classes: int, seed: int) -> LinearSvmHead:
    """A linear head with unit-norm random weights on standardised fc7: (C, D) float64."""
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(classes, dim))
    weight /= np.linalg.norm(weight, axis=1, keepdims=True)
    ones, zeros = np.ones(classes), np.zeros(classes)
    return LinearSvmHead(np.zeros(dim), np.ones(dim), weight, zeros, ones, zeros)


def build(out: Path, *, width: float = 1.0, seed: int = 0, int8: bool = True) -> Path:
    """Write the run folder ``out`` (finetune/best.pt, head.npz, bundle/); returns the bundle."""
    torch.manual_seed(seed)
    alexnet = AlexNet(AlexNetConfig(width=width)).eval()
    (out / "finetune").mkdir(parents=True, exist_ok=True)
    torch.save(
        {"model_config": dataclasses.asdict(alexnet.config), "model": alexnet.state_dict()},
        out / "finetune" / "best.pt",
    )
    head = random_head(alexnet.config.fc_width, len(CLASS_NAMES), seed)
    head.save(out / "head.npz")
    bundle = export_rcnn_bundle(
        alexnet,
        head,
        RcnnTrainConfig(),
        out / "bundle",
        name="calcsdk-rcnn-untrained-full-size",
        provenance={"reduced": "UNTRAINED full-size weights, for latency benchmarks only"},
    )
    if int8:
        add_int8_fc7(bundle, calibration_crops(sample_paths(), bundle, n=128, seed=seed))
    return bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.full_size_rcnn")
    parser.add_argument("--out", type=Path, required=True, help="run folder to create")
    parser.add_argument("--width", type=float, default=1.0, help="AlexNet width (1.0 = paper)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-int8", action="store_true", help="skip fc7@int8")
    args = parser.parse_args(argv)
    bundle = build(args.out, width=args.width, seed=args.seed, int8=not args.no_int8)
    print(bundle)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
