"""Static QDQ int8 quantisation of the fc7 extractor (calibrated on real proposal crops) and
of YOLOv4 (calibrated on network inputs), one recipe for both (:func:`quantize_qdq`).

Why static QDQ per-channel (FINDINGS.md, 2 Zen4 cores with VNNI): with onnxruntime's graph
optimisation ON the QDQ pairs fuse into integer Conv/MatMul kernels, ~3x faster than fp32 for
the full AlexNet; dynamic quantisation was 4x slower and QDQ without graph optimisation slower
than fp32 (the runtime backend always enables it).

Scheme: weights QInt8 symmetric, one scale per output channel; activations QUInt8 with
MinMax-calibrated ranges (the default, ``activation_type="quint8"``). Every quantised
activation here follows a ReLU (or is the [0, 1] input), so it is non-negative: uint8 spends
all 256 levels on [0, max] while int8 would waste its negative half (asymmetric int8 also
works, but measured no faster; see ``benchmarks/results/int8_fc7.json``).

Measured on the full-size nets (BENCHMARKS.md): AlexNet fc7 2.4x faster than fp32 once LRN
is a Conv (``training.models.conv_lrn``); YOLOv4 at 608 ~1.9x once Mish is exported with ``Exp``
(``mish_export``), its Mish arithmetic staying fp32.

Calibration crops come from the SDK's own ``prepare_mammogram`` -> ``propose`` -> ``roi_crops``
on training images, so the ranges are those the deployed network sees.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from calcsdk.bundle import Bundle, load_bundle, write_bundle
from calcsdk.image import Mammogram, read_mammogram
from calcsdk.model_io import FC7_INPUT, FC7_OUTPUT, YOLO_INPUT
from calcsdk.pipelines.rcnn import RcnnSettings
from calcsdk.prepare import prepare_mammogram, roi_crops
from calcsdk.proposals import ProposalConfig, propose

log = logging.getLogger(__name__)

INT8_FILE = "alexnet_fc7_int8.onnx"
INT8_KEY = "fc7@int8"
ACTIVATION_TYPES = {"quint8": QuantType.QUInt8, "qint8": QuantType.QInt8}
CALIBRATION_BATCH = 16  # crops per calibration call: bounded memory for the full AlexNet
# AlexNet's fc7 graph is quantised whole, LRN included (its window Conv and Mul): keeping the
# LRN in fp32 measured 2.1x slower (233 vs 109 ms per 64 crops) for the same fc7 error
YOLO_INT8_OPS = ("Conv", "Concat", "MaxPool", "LeakyRelu", "Resize")
# YOLOv4's Mish (exported as Exp/Mul/Div, see mish_export) stays fp32 between Q/DQ pairs:
# quantising its Mul/Add/Div too measured slower (215 vs 202 ms, full size at 608, 2 threads)


class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds ``array`` ((N, ...) float32) to the calibrator as input ``name``, in batches."""

    def __init__(self, array: np.ndarray, name: str, batch_size: int = CALIBRATION_BATCH):
        self.array = array
        self.name = name
        self.batch_size = batch_size
        self._batches: Iterator[dict[str, np.ndarray]] | None = None
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:
        self._batches = iter(
            {self.name: np.ascontiguousarray(self.array[i : i + self.batch_size])}
            for i in range(0, len(self.array), self.batch_size)
        )


def _check_calibration(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[1] != 1 or array.shape[0] < 1:
        raise ValueError(f"{what} should be (N>=1, 1, H, W), got {array.shape}")
    if array.dtype != np.float32:
        raise TypeError(f"{what} should be float32, got {array.dtype}")
    return array


def quantize_qdq(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    reader: CalibrationDataReader,
    *,
    per_channel: bool = True,
    activation_type: str = "quint8",
    op_types: Sequence[str] | None = None,
    preprocess: bool = True,
    extra_metadata: dict[str, str] | None = None,
) -> Path:
    """Static QDQ int8 copy of the ONNX graph at ``fp32_path``, written to ``int8_path``.

    The one quantisation recipe of calcsdk (module doc): weights qint8 symmetric (per output
    channel with ``per_channel``), activations ``activation_type`` with MinMax ranges from
    ``reader``; only ``op_types`` are quantised (None: every supported op). Inputs and outputs
    keep their names, dtypes (float32) and shapes. The fp32 graph's ``metadata_props`` are
    carried over, plus ``calcsdk.precision=int8``, the scheme, and ``extra_metadata``.
    """
    if activation_type not in ACTIVATION_TYPES:
        raise ValueError(f"activation_type should be one of {sorted(ACTIVATION_TYPES)}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    source = onnx.load(fp32_path)
    metadata = {p.key: p.value for p in source.metadata_props}
    with tempfile.TemporaryDirectory(prefix="calcsdk-quant-") as tmp:
        model_in = fp32_path
        if preprocess:
            model_in = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32_path), str(model_in), skip_symbolic_shape=True)
        quantize_static(
            str(model_in),
            str(Path(tmp) / "int8.onnx"),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=ACTIVATION_TYPES[activation_type],
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=list(op_types) if op_types else None,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
        model = onnx.load(Path(tmp) / "int8.onnx")
    metadata.update(
        {
            "calcsdk.precision": "int8",
            "calcsdk.quantization": f"static QDQ, weights qint8 "
            f"{'per-channel' if per_channel else 'per-tensor'}, activations {activation_type}",
            **(extra_metadata or {}),
        }
    )
    del model.metadata_props[:]
    for key, value in sorted(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, int8_path)
    return int8_path


def quantize_fc7(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    calibration_crops: np.ndarray,
    *,
    per_channel: bool = True,
    activation_type: str = "quint8",
    preprocess: bool = True,
) -> Path:
    """Write a static QDQ int8 copy of the fc7 graph at ``fp32_path`` to ``int8_path``.

    Args:
        fp32_path: ONNX fc7 extractor (input ``crops`` (N, 1, 227, 227) float32 in [0, 1],
            output ``fc7`` (N, D) float32), e.g. from :func:`calcsdk.export.onnx_fc7.export_fc7`.
        int8_path: where the quantised graph goes (same input/output names, dtypes and shapes;
            fp32 in, fp32 out, QuantizeLinear/DequantizeLinear pairs inside).
        calibration_crops: (N, 1, S, S) float32 in [0, 1], N >= 1: real proposal crops
            (:func:`calibration_crops`); a few hundred suffice for MinMax ranges.
        per_channel: one weight scale per output channel (recommended: fc/conv channels of a
            fine-tuned AlexNet differ in range by orders of magnitude).
        activation_type: ``"quint8"`` (default, see the module doc) or ``"qint8"``.
        preprocess: run onnxruntime's ``quant_pre_process`` (shape inference + graph
            optimisation) first.
    Returns:
        ``int8_path``, with ``calcsdk.calibration_crops`` in its metadata.
    """
    crops = _check_calibration(calibration_crops, "calibration_crops")
    return quantize_qdq(
        fp32_path,
        int8_path,
        ArrayCalibrationReader(crops, FC7_INPUT),
        per_channel=per_channel,
        activation_type=activation_type,
        preprocess=preprocess,
        extra_metadata={"calcsdk.calibration_crops": str(len(crops))},
    )


def quantize_yolo(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    calibration_images: np.ndarray,
    *,
    input_name: str = YOLO_INPUT,
    op_types: Sequence[str] = YOLO_INT8_OPS,
) -> Path:
    """Static QDQ int8 copy of a YOLOv4 graph (:func:`calcsdk.export.onnx_yolo.export_yolo`).

    Args:
        calibration_images: (N, 1, S, S) float32 in [0, 1]: network inputs (tiles or
            letterboxed images) made as the bundle's pipeline makes them, S the graph's size.
        op_types: ops to quantise (:data:`YOLO_INT8_OPS`: convolutions and the ops between
            them that onnxruntime runs in uint8; Mish and the decoding stay fp32).
    """
    images = _check_calibration(calibration_images, "calibration_images")
    return quantize_qdq(
        fp32_path,
        int8_path,
        ArrayCalibrationReader(images, input_name, batch_size=1),
        op_types=op_types,
        extra_metadata={"calcsdk.calibration_images": str(len(images))},
    )


def calibration_crops(
    images: Sequence[Any],
    bundle: Bundle | str | os.PathLike,
    n: int = 256,
    *,
    seed: int = 0,
) -> np.ndarray:
    """Real proposal crops of ``images``, made exactly as the bundle's R-CNN pipeline makes them.

    Each image goes through :func:`calcsdk.prepare.prepare_mammogram` (the bundle's working
    spacing), :func:`calcsdk.proposals.propose` (the bundle's proposal config) and
    :func:`calcsdk.prepare.roi_crops` (its representation, crop size, context padding).

    Args:
        images: training images: paths, :class:`~calcsdk.image.Mammogram` objects or records
            with ``image_path`` (and optional ``spacing_mm``) attributes.
        bundle: the R-CNN bundle (or its path) whose settings to use.
        n: crops wanted; an equal share per image, drawn at random (``seed``) among its
            proposals (fewer if the images have fewer proposals).
    Returns:
        (M, 1, S, S) float32 in [0, 1], M <= n (M = 0 when no image gave a proposal).
    """
    if n < 1:
        raise ValueError(f"n should be >= 1, got {n}")
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    settings = RcnnSettings.from_bundle(bundle)
    proposal_config = ProposalConfig.from_dict(bundle.section("proposals"))
    rng = np.random.default_rng(seed)
    per_image = max(1, -(-n // max(len(images), 1)))
    chunks: list[np.ndarray] = []
    for image in images:
        if sum(len(c) for c in chunks) >= n:
            break
        working = prepare_mammogram(
            as_mammogram(image), settings.working_spacing_mm, settings.fallback_spacing_mm
        )
        boxes, _ = propose(working.image01, working.mask, working.spacing_mm, proposal_config)
        if len(boxes) == 0:
            continue
        pick = rng.choice(len(boxes), size=min(per_image, len(boxes)), replace=False)
        chunks.append(
            roi_crops(
                working.image01,
                boxes[np.sort(pick)],
                representation=settings.representation,
                size=settings.crop_size,
                context_pad=settings.context_pad,
            ).copy()
        )
    if not chunks:
        size = settings.crop_size
        return np.zeros((0, 1, size, size), np.float32)
    return np.concatenate(chunks)[:n]


def add_model_variant(
    bundle_dir: str | os.PathLike, role: str, key: str, staged: Path, entry: dict[str, Any]
) -> Path:
    """Add (or replace) model ``key`` (e.g. ``fc7@int8``) to the bundle directory: the file
    ``staged`` is copied in under its own name, the manifest entry is ``role``'s entry updated
    with ``entry``, and the bundle is rewritten and re-verified. Returns the bundle directory."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise ValueError(f"adding {key} needs a bundle directory, got {root}")
    bundle = load_bundle(root)
    manifest = {k: v for k, v in bundle.manifest.items() if k != "files"}
    models = dict(manifest["models"])
    models[key] = {**dict(models[role]), "file": staged.name, **entry}
    manifest["models"] = models
    files = {name: root / name for name in bundle.manifest["files"] if name != staged.name}
    files[staged.name] = staged
    (root / staged.name).unlink(missing_ok=True)
    write_bundle(root, manifest, files)
    log.info("added %s to %s", key, root)
    return root


def add_int8_fc7(
    bundle_dir: str | os.PathLike, calibration: np.ndarray, *, activation_type: str = "quint8"
) -> Path:
    """Quantise the bundle's fp32 ``fc7`` and add it as ``fc7@int8`` (file ``INT8_FILE``);
    the manifest is rewritten and the bundle re-verified. Returns the bundle directory."""
    bundle = load_bundle(bundle_dir)
    if not Path(bundle_dir).is_dir():
        raise ValueError(f"add_int8_fc7 needs a bundle directory, got {bundle_dir}")
    with tempfile.TemporaryDirectory(prefix="calcsdk-int8-") as tmp:
        staged = quantize_fc7(
            bundle.model_path("fc7"),
            Path(tmp) / INT8_FILE,
            calibration,
            activation_type=activation_type,
        )
        entry = {
            "inputs": [FC7_INPUT],
            "outputs": [FC7_OUTPUT],
            "precision": "int8",
            "opset": bundle.models["fc7"].opset,
            "quantization": {
                "format": "QDQ static",
                "weights": "qint8 per-channel symmetric",
                "activations": f"{activation_type} MinMax",
                "calibration_crops": len(calibration),
            },
        }
        return add_model_variant(bundle_dir, "fc7", INT8_KEY, staged, entry)


def as_mammogram(image: Any) -> Mammogram:
    """A Mammogram from a Mammogram, a path, or a record with ``image_path``/``spacing_mm``."""
    if isinstance(image, Mammogram):
        return image
    path = getattr(image, "image_path", image)
    spacing = getattr(image, "spacing_mm", None)
    return read_mammogram(path, spacing_mm=spacing) if spacing else read_mammogram(path)


__all__ = [
    "ArrayCalibrationReader",
    "add_int8_fc7",
    "add_model_variant",
    "as_mammogram",
    "calibration_crops",
    "quantize_fc7",
    "quantize_qdq",
    "quantize_yolo",
]
