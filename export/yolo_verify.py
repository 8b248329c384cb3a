"""Parity of an exported YOLOv4 bundle with its PyTorch run (``calcsdk export yolo --verify``).

The reference is the run's torch network followed by the SDK's ONE numpy decoding
(:func:`calcsdk.yolo_decode.decode_yolo`); the exported graph must reproduce it on fresh random
inputs of two batch sizes (fp32: 1e-4 relative to the largest value). Writes ``parity.json``
beside the bundle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from calcsdk.backends.base import create_backend
from calcsdk.bundle import load_bundle
from calcsdk.export.parity import FP32_RTOL, tensor_error
from calcsdk.model_io import YOLO_BOXES, YOLO_INPUT, YOLO_SCORES
from calcsdk.pipelines.yolo import YoloSettings
from calcsdk.yolo_decode import RAW_OUTPUTS, decode_yolo


@torch.no_grad()
def verify_yolo_run(
    run_dir: str | Path,
    bundle_dir: str | Path,
    batch_sizes: tuple[int, ...] = (1, 3),
    seed: int = 0,
) -> dict[str, Any]:
    """Compare the bundle's graph with the run's weights + numpy decoding; see module doc."""
    from calcsdk.training.yolo.train import load_trained_yolo

    run, bundle_path = Path(run_dir), Path(bundle_dir)
    bundle = load_bundle(bundle_path)
    weights = bundle.manifest.get("provenance", {}).get("weights", "best.pt")
    model, anchors = load_trained_yolo(run / weights)
    settings = YoloSettings.from_sections(bundle.section("preprocess"), bundle.section("yolo"))
    session = create_backend("onnxruntime", device="cpu").load(bundle.model_path("yolov4"))
    decoded = YOLO_BOXES in session.output_names
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {"bundle": bundle.version, "decoded_in_graph": decoded}
    size = settings.network_size
    for n in batch_sizes:
        images = rng.random((n, model.config.in_channels, size, size), dtype=np.float32)
        raw = [r.numpy() for r in model(torch.from_numpy(images))]
        outputs = session.run({YOLO_INPUT: images})
        if decoded:
            boxes, scores = decode_yolo(raw, anchors, scale_x_y=settings.scale_x_y)
            report[f"batch_{n}"] = {
                "boxes": tensor_error(outputs[YOLO_BOXES], boxes),
                "scores": tensor_error(outputs[YOLO_SCORES], scores),
            }
        else:
            report[f"batch_{n}"] = {
                name: tensor_error(outputs[name], r) for name, r in zip(RAW_OUTPUTS, raw)
            }
    worst = max(
        e["max_rel"] for k, v in report.items() if k.startswith("batch_") for e in v.values()
    )
    report["max_rel"] = worst
    report["fp32_ok"] = bool(worst <= FP32_RTOL)
    path = bundle_path.parent / "parity.json"
    path.write_text(json.dumps(report, indent=2))
    report["path"] = str(path)
    return report
