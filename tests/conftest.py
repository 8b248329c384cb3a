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
