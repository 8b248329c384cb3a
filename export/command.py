"""``calcsdk export rcnn|yolo --run DIR [--out BUNDLE] [--verify]``.

Re-exports a training run to a bundle (training already writes one; this is for re-packing,
other precisions and the parity report) and, with ``--verify``, writes ``parity.json``:
tensor errors of every graph on fresh inputs of two batch sizes, detection agreement with the
PyTorch reference pipeline on held-out images, and the mAP change.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("rcnn", "yolo"), help="which kind of run")
    parser.add_argument("--run", type=Path, required=True, help="training run folder")
    parser.add_argument("--out", type=Path, help="bundle folder (default: RUN/bundle)")
    parser.add_argument("--verify", action="store_true", help="write the parity report")
    parser.add_argument("--images", type=int, default=8, help="held-out images for --verify")


def run(args: argparse.Namespace) -> int:
    if args.kind == "yolo":
        from calcsdk.export.onnx_yolo import export_yolo_run

        bundle = export_yolo_run(args.run, args.out)
        print(f"bundle: {bundle}")
        if args.verify:
            print("parity for YOLOv4 runs in tests/export/test_onnx_yolo.py; --verify covers rcnn")
        return 0
    from calcsdk.export.rcnn_export import export_run, verify_run

    bundle = export_run(args.run, args.out)
    print(f"bundle: {bundle}")
    if args.verify:
        report = verify_run(args.run, bundle, n_images=args.images)
        print(f"parity: {report['path']}  fp32 within 1e-4: {report['fp32_ok']}")
        return 0 if report["fp32_ok"] else 1
    return 0
