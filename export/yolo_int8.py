"""``yolov4@int8``: a static QDQ int8 YOLOv4 added to a YOLOv4 bundle, calibrated on real tiles.

Calibration inputs are made exactly as :class:`calcsdk.pipelines.yolo.YoloPipeline` makes them
(``prepare`` -> ``plan`` -> :func:`calcsdk.tiling.tile_input`), so the activation ranges are
those the deployed network sees. The quantisation recipe is
:func:`calcsdk.export.quantize.quantize_yolo`. ``Detector(bundle, precision="int8")`` then runs
the int8 graph.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.bundle import load_bundle
from calcsdk.export.quantize import (
    YOLO_INT8_OPS,
    add_model_variant,
    as_mammogram,
    quantize_yolo,
)
from calcsdk.pipelines.yolo import MODEL_ROLE
from calcsdk.tiling import tile_input

YOLO_INT8_FILE = "yolov4_int8.onnx"
YOLO_INT8_KEY = f"{MODEL_ROLE}@int8"


def training_images(run_dir: str | os.PathLike, count: int) -> list[str]:
    """``count`` training image paths of a YOLOv4 run, spread over its ``split.json`` "train"
    list (written by ``calcsdk train yolo``); held-out images are never used."""
    path = Path(run_dir) / "split.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no split.json to draw int8 calibration images from")
    train = json.loads(path.read_text()).get("train") or []
    if not train:
        raise ValueError(f"{path}: no training images listed under 'train'")
    picks = np.unique(np.linspace(0, len(train) - 1, min(count, len(train))).astype(int))
    return [train[i] for i in picks]


def calibration_tiles(
    images: Sequence[Any], bundle_dir: str | os.PathLike, n: int = 32, *, seed: int = 0
) -> np.ndarray:
    """Network inputs of ``images`` as the bundle's YOLOv4 pipeline tiles them.

    Args:
        images: paths, :class:`~calcsdk.image.Mammogram` objects or records with
            ``image_path`` (and optional ``spacing_mm``).
        n: tiles wanted, an equal share per image drawn at random (``seed``) among its tiles.
    Returns:
        (M, 1, S, S) float32 in [0, 1], M <= n, S the bundle's network size.
    """
    from calcsdk.detector import Detector

    if n < 1:
        raise ValueError(f"n should be >= 1, got {n}")
    pipeline = Detector(bundle_dir, backend="onnxruntime")._pipeline
    size = pipeline.settings.network_size
    rng = np.random.default_rng(seed)
    per_image = max(1, -(-n // max(len(images), 1)))
    out: list[np.ndarray] = []
    for image in images:
        working = pipeline.prepare(as_mammogram(image))
        tiles = pipeline.plan(working)
        for i in np.sort(rng.choice(len(tiles), size=min(per_image, len(tiles)), replace=False)):
            buffer = np.empty((size, size), np.float32)
            tile_input(working.image01, tiles[i], size, out=buffer)
            out.append(buffer[None])
        if len(out) >= n:
            break
    if not out:
        return np.zeros((0, 1, size, size), np.float32)
    return np.stack(out)[:n]


def add_int8_yolo(bundle_dir: str | os.PathLike, calibration: np.ndarray) -> Path:
    """Quantise the bundle's fp32 ``yolov4`` and add it as ``yolov4@int8``; the manifest is
    rewritten and the bundle re-verified. Returns the bundle directory."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise ValueError(f"add_int8_yolo needs a bundle directory, got {root}")
    bundle = load_bundle(root)
    if bundle.pipeline != MODEL_ROLE:
        raise ValueError(f"{root}: not a YOLOv4 bundle (pipeline {bundle.pipeline!r})")
    with tempfile.TemporaryDirectory(prefix="calcsdk-int8-") as tmp:
        staged = quantize_yolo(
            bundle.model_path(MODEL_ROLE), Path(tmp) / YOLO_INT8_FILE, calibration
        )
        entry = {
            "precision": "int8",
            "opset": bundle.models[MODEL_ROLE].opset,
            "quantization": {
                "format": "QDQ static",
                "weights": "qint8 per-channel symmetric",
                "activations": "quint8 MinMax",
                "ops": list(YOLO_INT8_OPS),
                "calibration_tiles": len(calibration),
            },
        }
        return add_model_variant(root, MODEL_ROLE, YOLO_INT8_KEY, staged, entry)
