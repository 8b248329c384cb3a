"""Shared pytest configuration: GPU/TensorRT markers skip cleanly on machines without them."""

from __future__ import annotations

import importlib.util
import shutil

import pytest


def _has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        import onnxruntime as ort

        return "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:  # pragma: no cover
        return False


def pytest_collection_modifyitems(config, items):
    gpu = _has_gpu()
    trt = gpu and importlib.util.find_spec("tensorrt") is not None
    skip_gpu = pytest.mark.skip(reason="no NVIDIA GPU with onnxruntime CUDA provider here")
    skip_trt = pytest.mark.skip(reason="TensorRT 10 is not installed here (see FINDINGS.md)")
    for item in items:
        if item.get_closest_marker("tensorrt") and not trt:
            item.add_marker(skip_trt)
        elif item.get_closest_marker("gpu") and not gpu:
            item.add_marker(skip_gpu)


# --- shared fixtures ----------------------------------------------------------------------
def build_toy_rcnn_bundle(root):
    """A hand-made (untrained) R-CNN bundle with real ONNX graphs, for tests of the runtime
    plumbing (CLI, batch scoring, threading). fc7 = [mean, max] of each crop; the head calls
    bright-peaked crops (max >> mean) malignant and flat bright crops benign."""
    from pathlib import Path

    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from calcsdk.bundle import write_bundle
    from calcsdk.export.onnx_head import export_head

    root = Path(root)
    staging = root.parent / (root.name + "-staging")
    staging.mkdir(parents=True, exist_ok=True)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["crops"], ["avg"]),
            helper.make_node("GlobalMaxPool", ["crops"], ["max"]),
            helper.make_node("Concat", ["avg", "max"], ["cat"], axis=1),
            helper.make_node("Flatten", ["cat"], ["fc7"], axis=1),
        ],
        "toy_fc7",
        [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["N", 1, 227, 227])],
        [helper.make_tensor_value_info("fc7", TensorProto.FLOAT, ["N", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, staging / "fc7.onnx")
    export_head(np.array([[-4.0, 6.0], [4.0, -6.0]]), np.zeros(2), staging / "head.onnx")
    manifest = {
        "name": "toy-rcnn",
        "version": "0.0.1",
        "pipeline": "rcnn",
        "class_names": ["malignant", "benign"],
        "preprocess": {"working_spacing_mm": 0.2, "fallback_spacing_mm": 0.1},
        "proposals": {"max_boxes": 200},
        "thresholds": {"confidence": 0.5, "nms_iou": 0.3, "max_detections": 20},
        "models": {
            "fc7": {"file": "fc7.onnx", "inputs": ["crops"], "outputs": ["fc7"]},
            "head": {"file": "head.onnx", "inputs": ["fc7"], "outputs": ["scores"]},
        },
        "provenance": {"note": "hand-made toy bundle for tests; not trained"},
    }
    return write_bundle(
        root, manifest, {"fc7.onnx": staging / "fc7.onnx", "head.onnx": staging / "head.onnx"}
    )


def draw_toy_mammogram(seed: int = 0, shape=(600, 480)):
    """(H, W) uint16 12-bit phantom: a half-ellipse breast at the left edge, noise, and one
    cluster of 6 bright dots. Returns (pixels, cluster_box_xyxy)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.zeros(shape, np.float32)
    cv2.ellipse(img, (0, h // 2), (int(w * 0.85), int(h * 0.45)), 0, -90, 90, 1500, -1)
    img += rng.normal(0, 30, shape).astype(np.float32)
    cx, cy = int(w * 0.35), int(h * 0.5)
    for _ in range(6):
        dx, dy = rng.integers(-15, 16, 2)
        cv2.circle(img, (cx + int(dx), cy + int(dy)), 2, 4000, -1)
    pixels = np.clip(img, 0, 4095).astype(np.uint16)
    return pixels, np.array([cx - 18, cy - 18, cx + 19, cy + 19], np.float32)


@pytest.fixture(scope="session")
def toy_bundle(tmp_path_factory):
    """Path of a verified toy R-CNN bundle directory (see :func:`build_toy_rcnn_bundle`)."""
    return build_toy_rcnn_bundle(tmp_path_factory.mktemp("bundles") / "toy")
