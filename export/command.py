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
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also add a static QDQ int8 model (rcnn: fc7@int8, calibrated on training "
        "proposal crops; yolo: yolov4@int8, calibrated on training tiles)",
    )
    parser.add_argument(
        "--calibration-images", type=int, default=16, help="training images for --int8"
    )


def run(args: argparse.Namespace) -> int:
    if args.kind == "yolo":
        from calcsdk.export.onnx_yolo import export_yolo_run

        bundle = export_yolo_run(args.run, args.out)
        if args.int8:
            from calcsdk.export.yolo_int8 import add_int8_yolo, calibration_tiles, training_images

            images = training_images(args.run, args.calibration_images)
            add_int8_yolo(bundle, calibration_tiles(images, bundle))
        print(f"bundle: {bundle}")
        if args.verify:
            from calcsdk.export.yolo_verify import verify_yolo_run

            report = verify_yolo_run(args.run, bundle)
            print(f"parity: {report['path']}  fp32 within 1e-4: {report['fp32_ok']}")
            return 0 if report["fp32_ok"] else 1
        return 0
    from calcsdk.export.rcnn_export import export_run, verify_run

    bundle = export_run(
        args.run, args.out, int8=args.int8, calibration_images=args.calibration_images
    )
    print(f"bundle: {bundle}")
    if args.verify:
        report = verify_run(args.run, bundle, n_images=args.images)
        print(f"parity: {report['path']}  fp32 within 1e-4: {report['fp32_ok']}")
        if "int8" in report:
            cost = report["int8"]
            print(
                f"int8: fc7 max_rel {cost['fc7_vs_fp32']['max_rel']:.4f}, detections matched "
                f"{cost['detections_vs_fp32']['matched_share']:.3f}, mAP delta "
                f"{cost.get('map_vs_fp32', {}).get('delta', float('nan')):+.4f}"
            )
        return 0 if report["fp32_ok"] else 1
    return 0
