"""The public facade: every API path, bad inputs with their own errors, threads, determinism."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import calcsdk
from calcsdk import Detections, Detector
from calcsdk.errors import (
    BackendUnavailableError,
    BundleError,
    CalcSdkError,
    CorruptImageError,
    EmptyImageError,
    ImageDtypeError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidPixelsError,
)
from calcsdk.image import Mammogram, read_mammogram, write_png


def _phantom(seed: int = 0, shape=(600, 480)) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.zeros(shape, np.float32)
    cv2.ellipse(img, (0, h // 2), (int(w * 0.85), int(h * 0.45)), 0, -90, 90, 1500, -1)
    img += rng.normal(0, 30, shape).astype(np.float32)
    for _ in range(6):
        dx, dy = rng.integers(-15, 16, 2)
        cv2.circle(img, (int(w * 0.35) + int(dx), h // 2 + int(dy)), 2, 4000, -1)
    return np.clip(img, 0, 4095).astype(np.uint16)


@pytest.fixture(scope="module")
def detector(toy_bundle) -> Detector:
    return Detector(toy_bundle, threads=1)


def _same(a: Detections, b: Detections) -> bool:
    return (
        np.array_equal(a.boxes, b.boxes)
        and np.array_equal(a.scores, b.scores)
        and np.array_equal(a.labels, b.labels)
    )


def test_top_level_exports():
    assert calcsdk.Detector is Detector and calcsdk.Detections is Detections


def test_detect_array_returns_original_pixel_boxes(detector):
    pixels = _phantom()
    det = detector.detect(pixels, spacing_mm=0.1)
    assert isinstance(det, Detections) and len(det) > 0
    assert det.class_names == ("malignant", "benign")
    # the working spacing is 0.2 mm, the input 0.1 mm: boxes come back in the input's pixels
    assert det.boxes[:, 2].max() <= pixels.shape[1] and det.boxes[:, 3].max() <= pixels.shape[0]
    assert det.boxes.dtype == np.float32 and (det.scores >= 0.5).all()


def test_every_input_kind_gives_the_same_result(detector, tmp_path: Path):
    pixels = _phantom(1)
    reference = detector.detect(pixels, spacing_mm=0.1)
    path = tmp_path / "m.png"
    write_png(path, pixels, (0.1, 0.1))
    mammogram = read_mammogram(path)
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.1, 0.1]
    ds.PixelData = pixels.tobytes()
    for image in (str(path), path, path.read_bytes(), mammogram, ds):
        assert _same(detector.detect(image), reference), type(image)


def test_conf_zero_keeps_more_and_conf_one_keeps_none(detector):
    pixels = _phantom(2)
    default = detector.detect(pixels, spacing_mm=0.1)
    everything = detector.detect(pixels, conf=0.0, spacing_mm=0.1)
    assert len(everything) >= len(default)
    assert len(detector.detect(pixels, conf=1.0, spacing_mm=0.1)) == 0


def test_detect_batch_context_manager_and_warmup(toy_bundle):
    images = [_phantom(s) for s in range(3)]
    with Detector(toy_bundle) as det:
        det.warmup()
        batch = [det.detect(im, spacing_mm=0.1) for im in images]
        assert all(_same(a, b) for a, b in zip(batch, det.detect_batch(images, spacing_mm=0.1)))
        assert "toy-rcnn@0.0.1" in repr(det) and det.model_version == "toy-rcnn@0.0.1"


def test_missing_spacing_uses_the_bundle_fallback(detector):
    # the toy bundle's fallback is 0.1 mm, so an array without spacing equals one at 0.1 mm
    pixels = _phantom(3)
    assert _same(detector.detect(pixels), detector.detect(pixels, spacing_mm=0.1))


def test_determinism_bit_for_bit(toy_bundle):
    pixels = _phantom(4)
    a = Detector(toy_bundle, threads=1).detect(pixels, spacing_mm=0.1)
    b = Detector(toy_bundle, threads=2).detect(pixels, spacing_mm=0.1)
    c = Detector(toy_bundle, threads=1).detect(pixels, spacing_mm=0.1)
    assert _same(a, c) and _same(a, b)


def test_thread_safety_eight_threads(detector):
    images = [_phantom(s) for s in range(8)]
    serial = [detector.detect(im, spacing_mm=0.1) for im in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(2):
            parallel = list(pool.map(lambda im: detector.detect(im, spacing_mm=0.1), images))
            assert all(_same(a, b) for a, b in zip(serial, parallel))


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.zeros((64, 64), np.complex64), ImageDtypeError, "complex64"),
        (np.zeros((0, 64), np.uint16), EmptyImageError, ""),
        (np.full((64, 64), np.nan, np.float32), InvalidPixelsError, "NaN"),
        (np.zeros((64, 64, 5), np.uint8), CalcSdkError, ""),
        ("does/not/exist.png", ImageNotFoundError, "does/not/exist.png"),
    ],
    ids=["wrong-dtype", "empty", "nan", "5-channels", "missing-file"],
)
def test_bad_images_raise_their_own_error(detector, image, error, message):
    with pytest.raises(error) as info:
        detector.detect(image, spacing_mm=0.1)
    assert message in str(info.value)


def test_huge_and_corrupt_files(detector, tmp_path: Path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptImageError, match=r"broken\.png"):
        detector.detect(corrupt)
    huge = tmp_path / "huge.png"
    write_png(huge, np.zeros((8200, 8200), np.uint8))  # > DEFAULT_MAX_PIXELS (8192^2)
    with pytest.raises(ImageTooLargeError, match=r"huge\.png"):
        detector.detect(huge, spacing_mm=0.1)  # refused from the header, before decoding
    with pytest.raises(ImageTooLargeError):
        detector.detect(np.zeros((8200, 8200), np.uint8), spacing_mm=0.1)


@pytest.mark.parametrize("conf", [-0.1, 1.5, float("nan")])
def test_bad_conf(detector, conf):
    with pytest.raises(ValueError, match="conf"):
        detector.detect(_phantom(), conf=conf, spacing_mm=0.1)


def test_conf_type(detector):
    with pytest.raises(TypeError, match="conf"):
        detector.detect(_phantom(), conf="0.5", spacing_mm=0.1)


def test_wrong_bundle(toy_bundle, tmp_path: Path):
    with pytest.raises(BundleError, match="bundle not found"):
        Detector(tmp_path / "nothing")
    tampered = tmp_path / "tampered"
    shutil.copytree(toy_bundle, tampered)
    (tampered / "head.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"sha256 mismatch for head\.onnx"):
        Detector(tampered)
    old = tmp_path / "old"
    shutil.copytree(toy_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["schema_version"] = 0
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unknown bundle schema version 0"):
        Detector(old)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"backend": "nope"}, BackendUnavailableError, "unknown backend 'nope'"),
        ({"precision": "int8"}, BackendUnavailableError, "precision 'int8' is not in this bundle"),
        ({"precision": "fp64"}, ValueError, "precision must be one of"),
        ({"device": "tpu"}, ValueError, "device must be"),
    ],
)
def test_unavailable_backend_precision_device(toy_bundle, kwargs, error, message):
    with pytest.raises(error, match=message):
        Detector(toy_bundle, **kwargs)


def test_cuda_without_gpu_raises(toy_bundle):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        Detector(toy_bundle, device="cuda")


def test_mammogram_passthrough_keeps_metadata(detector):
    m = Mammogram(
        pixels=_phantom(5),
        spacing_mm=(0.1, 0.1),
        view="CC",
        laterality="L",
        source="<array>",
        bits_stored=12,
    )
    assert isinstance(detector.detect(m), Detections)


def test_pipelined_detect_batch_equals_serial_detect(detector):
    images = [_phantom(s) for s in range(5)]
    serial = [detector.detect(im, spacing_mm=0.1) for im in images]
    batch = detector.detect_batch(iter(images), spacing_mm=0.1)  # any iterable, lazily consumed
    assert len(batch) == len(serial) and all(_same(a, b) for a, b in zip(serial, batch))
    assert detector.detect_batch([]) == []


def test_detect_batch_raises_on_a_bad_image(detector):
    with pytest.raises(ImageDtypeError):
        detector.detect_batch([_phantom(0), np.zeros((8, 8), np.complex64)], spacing_mm=0.1)


@pytest.mark.gpu
def test_cuda_scores_and_detections_match_cpu(toy_bundle, detector):
    """The CUDA provider scores the same proposals like the CPU (IEEE fp32, TF32 off), and each
    confident CPU detection has a CUDA twin: same label, IoU >= 0.9. Near-tied proposals may
    swap at NMS, so detections are matched by overlap, not compared row by row."""
    from calcsdk.boxes import box_iou
    from calcsdk.image import Mammogram

    gpu = Detector(toy_bundle, device="cuda")  # the backend refuses a silent CPU fallback
    for seed in range(3):
        image = Mammogram(_phantom(seed), (0.1, 0.1), None, None, "<array>", 12)
        working, boxes = detector._pipeline.front(image)
        np.testing.assert_allclose(
            gpu._pipeline.score(working, boxes), detector._pipeline.score(working, boxes),
            atol=1e-4,
        )  # fmt: skip
        a, b = detector.detect(image), gpu.detect(image)
        assert abs(len(a) - len(b)) <= max(1, len(a) // 10)
        confident = a.scores >= 0.2
        if confident.any() and len(b):
            iou = box_iou(a.boxes[confident], b.boxes)
            same_label = a.labels[confident][:, None] == b.labels[None, :]
            assert ((iou >= 0.9) & same_label).any(axis=1).all()


@pytest.mark.gpu
def test_cuda_detect_batch_equals_cuda_detect(toy_bundle):
    gpu = Detector(toy_bundle, device="cuda")
    images = [_phantom(s) for s in range(3)]
    serial = [gpu.detect(im, spacing_mm=0.1) for im in images]
    assert all(_same(a, b) for a, b in zip(serial, gpu.detect_batch(images, spacing_mm=0.1)))
