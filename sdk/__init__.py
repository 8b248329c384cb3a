"""calcsdk: calcification detection on mammograms.

Runtime package: depends on numpy, opencv-contrib and onnxruntime only (never torch).
Heavy or optional pieces are imported lazily, so ``import calcsdk`` is cheap.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "Detector": "calcsdk.detector",
    "Detections": "calcsdk.detections",
    "Mammogram": "calcsdk.mammogram",
    "read_mammogram": "calcsdk.image",
    "read_mammogram_bytes": "calcsdk.image",
}

from calcsdk.errors import (  # noqa: E402
    BackendUnavailableError,
    BundleError,
    CalcSdkError,
    ImageError,
)

__all__ = [
    "BackendUnavailableError",
    "BundleError",
    "CalcSdkError",
    "Detections",
    "Detector",
    "ImageError",
    "Mammogram",
    "__version__",
    "read_mammogram",
    "read_mammogram_bytes",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'calcsdk' has no attribute {name!r}")
