"""``Detector``: the public facade vendors embed.

    from calcsdk import Detector
    with Detector() as detector:              # the shipped default bundle, onnxruntime on CPU
        detections = detector.detect("exam.dcm")

It verifies the bundle, creates the requested backend (never silently another one), builds the
pipeline the bundle names, and serves ``detect`` / ``detect_batch``. ``detect`` is thread-safe:
the pipelines keep no per-call state on ``self`` and onnxruntime sessions are thread-safe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.backends.base import create_backend
from calcsdk.bundle import Bundle, load_bundle
from calcsdk.detections import Detections
from calcsdk.errors import BackendUnavailableError
from calcsdk.image import Mammogram, read_mammogram

log = logging.getLogger(__name__)

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "data" / "models" / "default"
PRECISIONS = ("fp32", "int8")
# pipeline kind (manifest "pipeline") -> "module:Class"
PIPELINES = {
    "rcnn": "calcsdk.pipelines.rcnn:RcnnPipeline",
    "yolov4": "calcsdk.pipelines.yolo:YoloPipeline",
}
_MAIN_MODEL = {"rcnn": "fc7", "yolov4": "yolov4"}


class Detector:
    """Calcification detector over a verified model bundle.

    Args:
        bundle: bundle directory or archive; ``None`` loads the shipped default.
        backend: ``"auto"`` or a registered backend name (``"onnxruntime"``, ``"tensorrt"``).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        threads: intra-op threads per model (``None``: the backend's default).
        precision: ``"fp32"`` or ``"int8"``; must be present in the bundle.
    Raises:
        BundleError: the bundle is missing, tampered, incomplete or of an unknown version.
        BackendUnavailableError: backend, device or precision not available.
    """

    def __init__(
        self,
        bundle: str | os.PathLike | Bundle | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        precision: str = "fp32",
    ):
        self.bundle = (
            bundle if isinstance(bundle, Bundle) else load_bundle(bundle or DEFAULT_BUNDLE)
        )
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        available = self.bundle.precisions(_MAIN_MODEL.get(self.bundle.pipeline, ""))
        if precision not in available:
            raise BackendUnavailableError(
                f"precision {precision!r} is not in this bundle (it has {list(available)})",
                self.bundle.source,
            )
        self.precision = precision
        self.device = device
        self.backend = create_backend(backend, device=device, threads=threads)
        module, _, cls = PIPELINES[self.bundle.pipeline].partition(":")
        self._pipeline = getattr(import_module(module), cls)(self.bundle, self.backend, precision)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.bundle.class_names

    @property
    def model_version(self) -> str:
        return self.bundle.version

    def detect(
        self,
        image: str | os.PathLike | bytes | np.ndarray | Mammogram | Any,
        conf: float | None = None,
        *,
        spacing_mm: float | tuple[float, float] | None = None,
    ) -> Detections:
        """Detect calcification clusters on one mammogram.

        Args:
            image: a file path (DICOM, PNG, TIFF, PGM, JPEG), the bytes of such a file, a
                (H, W) uint8/uint16/float array, a :class:`Mammogram` or a ``pydicom.Dataset``.
            conf: confidence threshold in [0, 1]; ``None`` uses the bundle's (the paper's 0.5),
                ``0`` keeps every scored detection.
            spacing_mm: pixel spacing to assign when the input does not state it (arrays, PNGs
                without pHYs); mm per pixel, scalar or (row, col).
        Returns:
            :class:`Detections` with boxes xyxy float32 in ORIGINAL pixels.
        """
        _check_conf(conf)
        return self._pipeline(_read(image, spacing_mm), conf)

    def detect_batch(
        self,
        images: Iterable[Any] | Sequence[Any],
        conf: float | None = None,
        *,
        spacing_mm: float | tuple[float, float] | None = None,
    ) -> list[Detections]:
        """``detect`` over several images, pipelined, results in input order.

        While the network scores image i in the calling thread, one worker thread reads,
        preprocesses and proposes image i+1 (OpenCV and onnxruntime release the GIL, so the
        two halves overlap on two cores). The detections equal those of ``detect`` per image.
        Raises on the first bad image; batch tools that must survive bad files call
        ``detect`` per file instead.
        """
        _check_conf(conf)
        pipeline = self._pipeline
        if not (hasattr(pipeline, "front") and hasattr(pipeline, "back")):
            return [self.detect(image, conf, spacing_mm=spacing_mm) for image in images]

        def front(image: Any):
            return pipeline.front(_read(image, spacing_mm))

        results: list[Detections] = []
        iterator = iter(images)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calcsdk-front") as pool:
            first = next(iterator, _END)
            pending = None if first is _END else pool.submit(front, first)
            while pending is not None:
                ready = pending.result()
                upcoming = next(iterator, _END)
                pending = None if upcoming is _END else pool.submit(front, upcoming)
                results.append(pipeline.back(ready, conf))
        return results

    def warmup(self) -> None:
        """Run every model once on a blank synthetic image so first-call latency is paid now."""
        blank = np.zeros((256, 256), np.float32)
        blank[64:192, 32:224] = 0.5
        self.detect(blank, conf=1.0, spacing_mm=0.2)

    def close(self) -> None:
        self._pipeline = None

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Detector({self.bundle.version}, pipeline={self.bundle.pipeline}, "
            f"backend={self.backend.name}, device={self.device}, precision={self.precision})"
        )


_END = object()


def _read(image: Any, spacing_mm: float | tuple[float, float] | None) -> Mammogram:
    return read_mammogram(image, spacing_mm=spacing_mm) if spacing_mm else read_mammogram(image)


def _check_conf(conf: float | None) -> None:
    if conf is None:
        return
    if isinstance(conf, bool) or not isinstance(conf, (int, float, np.floating)):
        raise TypeError(f"conf should be a float in [0, 1] or None, got {type(conf).__name__}")
    if not 0.0 <= float(conf) <= 1.0:
        raise ValueError(f"conf should be in [0, 1], got {conf}")
