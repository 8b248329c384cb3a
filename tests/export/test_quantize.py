"""Static QDQ int8 fc7: graph structure, feature error vs fp32, bundle + Detector(precision)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from calcsdk import Detections, Detector
from calcsdk.bundle import load_bundle, write_bundle
from calcsdk.errors import BackendUnavailableError
from calcsdk.export.onnx_fc7 import export_fc7
from calcsdk.export.quantize import INT8_KEY, add_int8_fc7, calibration_crops, quantize_fc7
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig

# Tolerance on the int8 features, relative to the largest fp32 feature: with MinMax uint8
# activations each quantised tensor carries <= 0.5/255 ~ 0.2% of its range in rounding error,
# and 8 quantised layers compound it; the MEAN error must stay near that (1%), single features
# may move more (5% of the max), and each crop's feature vector keeps its direction (cosine
# > 0.99), which is what the linear SVM head sees.
MEAN_REL_TOL = 0.01
MAX_REL_TOL = 0.05
MIN_COSINE = 0.99


def _crops(n: int, seed: int) -> np.ndarray:
    """Random-but-structured (N, 1, 227, 227) float32 crops in [0, 1]: a smooth background
    blob plus a few bright dots, like grayscale proposal crops."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 1, 227, 227), np.float32)
    yy, xx = np.mgrid[:227, :227].astype(np.float32)
    for i in range(n):
        cy, cx, sigma = rng.uniform(60, 170), rng.uniform(60, 170), rng.uniform(30, 90)
        img = 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        img += rng.normal(0, 0.03, img.shape).astype(np.float32)
        for _ in range(rng.integers(0, 7)):
            cv2.circle(img, tuple(int(v) for v in rng.integers(40, 187, 2)), 3, 1.0, -1)
        out[i, 0] = np.clip(img, 0, 1)
    return out


@pytest.fixture(scope="module")
def tiny_fc7(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    alexnet = AlexNet(AlexNetConfig(width=1 / 16)).eval()
    path = tmp_path_factory.mktemp("fc7") / "fc7.onnx"
    return export_fc7(alexnet, path, metadata={"calcsdk.version": "test"})


@pytest.fixture(scope="module")
def tiny_int8(tiny_fc7: Path) -> Path:
    return quantize_fc7(tiny_fc7, tiny_fc7.with_name("fc7_int8.onnx"), _crops(24, seed=0))


def _run(path: Path, crops: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["fc7"], {"crops": crops})[0]


def test_int8_graph_has_qdq_pairs_and_int8_weights(tiny_int8: Path):
    model = onnx.load(tiny_int8)
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("QuantizeLinear") >= 7 and ops.count("DequantizeLinear") >= 7
    int8_weights = [
        init
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.INT8 and len(init.dims) >= 2
    ]
    # 5 conv + 2 LRN window convs (calcsdk.training.models.conv_lrn) + fc6 + fc7 weights, each
    # quantised per output channel (a 1-D scale per weight)
    assert len(int8_weights) == 9
    float_matrices = [
        init
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.FLOAT and len(init.dims) >= 2
    ]
    assert float_matrices == []
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["calcsdk.precision"] == "int8" and meta["calcsdk.version"] == "test"


@pytest.mark.parametrize("n", [1, 5, 17])
def test_int8_features_stay_close_to_fp32(tiny_fc7: Path, tiny_int8: Path, n: int):
    crops = _crops(n, seed=100 + n)  # not the calibration crops
    fp32, int8 = _run(tiny_fc7, crops), _run(tiny_int8, crops)
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    scale = np.abs(fp32).max()
    assert np.abs(int8 - fp32).mean() / scale < MEAN_REL_TOL
    assert np.abs(int8 - fp32).max() / scale < MAX_REL_TOL
    cosine = (int8 * fp32).sum(1) / (np.linalg.norm(int8, axis=1) * np.linalg.norm(fp32, axis=1))
    assert cosine.min() > MIN_COSINE
    assert not np.array_equal(int8, fp32)  # it really is a different (quantised) graph


@pytest.mark.parametrize(
    ("crops", "error"),
    [
        (np.zeros((0, 1, 227, 227), np.float32), ValueError),  # empty calibration set
        (np.zeros((2, 227, 227), np.float32), ValueError),  # missing channel axis
        (np.zeros((2, 3, 227, 227), np.float32), ValueError),  # colour crops
        (np.zeros((2, 1, 227, 227), np.float64), TypeError),  # wrong dtype
    ],
)
def test_bad_calibration_crops_are_refused(tiny_fc7: Path, tmp_path: Path, crops, error):
    with pytest.raises(error):
        quantize_fc7(tiny_fc7, tmp_path / "x.onnx", crops)


def test_unknown_activation_type_is_refused(tiny_fc7: Path, tmp_path: Path):
    with pytest.raises(ValueError):
        quantize_fc7(tiny_fc7, tmp_path / "x.onnx", _crops(2, 0), activation_type="int4")


def _phantom(seed: int = 0, shape=(400, 320)) -> np.ndarray:
    """(H, W) uint16 phantom at 0.2 mm: half-ellipse breast, noise, one cluster of 6 dots."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.zeros(shape, np.float32)
    cv2.ellipse(img, (0, h // 2), (int(w * 0.85), int(h * 0.45)), 0, -90, 90, 1500, -1)
    img += rng.normal(0, 30, shape).astype(np.float32)
    for _ in range(6):
        dx, dy = rng.integers(-8, 9, 2)
        cv2.circle(img, (int(w * 0.35) + int(dx), h // 2 + int(dy)), 1, 4000, -1)
    return np.clip(img, 0, 4095).astype(np.uint16)


@pytest.fixture(scope="module")
def int8_bundle(tiny_fc7: Path, tmp_path_factory) -> Path:
    """An R-CNN bundle with the tiny fc7 and a linear head on it, then ``fc7@int8`` added from
    real proposal crops of phantoms (the SDK's calibration path)."""
    from calcsdk.export.onnx_head import export_head

    root = tmp_path_factory.mktemp("bundle") / "rcnn"
    features = _run(tiny_fc7, _crops(4, seed=7))
    weight = np.random.default_rng(0).normal(0, 1, (2, features.shape[1])) / features.max()
    export_head(weight, np.zeros(2), root.parent / "head.onnx")
    manifest = {
        "name": "int8-test",
        "version": "0.0.1",
        "pipeline": "rcnn",
        "class_names": ["malignant", "benign"],
        "preprocess": {"working_spacing_mm": 0.2},
        "proposals": {"max_boxes": 60},
        "thresholds": {"confidence": 0.5, "nms_iou": 0.3, "max_detections": 20},
        "models": {
            "fc7": {"file": "fc7.onnx", "inputs": ["crops"], "outputs": ["fc7"]},
            "head": {"file": "head.onnx", "inputs": ["fc7"], "outputs": ["scores"]},
        },
    }
    write_bundle(root, manifest, {"fc7.onnx": tiny_fc7, "head.onnx": root.parent / "head.onnx"})
    from calcsdk.image import read_mammogram

    images = [read_mammogram(_phantom(s), spacing_mm=0.2) for s in (1, 2)]
    crops = calibration_crops(images, root, n=16)
    return add_int8_fc7(root, crops)


def test_calibration_crops_are_real_network_inputs(int8_bundle: Path):
    from calcsdk.image import read_mammogram

    images = [read_mammogram(_phantom(3), spacing_mm=0.2)]
    crops = calibration_crops(images, int8_bundle, n=8)
    assert 1 <= len(crops) <= 8 and crops.shape[1:] == (1, 227, 227)
    assert crops.dtype == np.float32 and crops.min() >= 0 and crops.max() <= 1
    # a flat image gives no proposals: an empty (0, 1, 227, 227) array, not an error
    flat = read_mammogram(np.full((200, 160), 1000, np.uint16), spacing_mm=0.2)
    assert calibration_crops([flat], int8_bundle, n=8).shape == (0, 1, 227, 227)
    with pytest.raises(ValueError):
        calibration_crops(images, int8_bundle, n=0)


def test_bundle_with_int8_loads_and_detects(int8_bundle: Path):
    bundle = load_bundle(int8_bundle)
    assert set(bundle.precisions("fc7")) == {"fp32", "int8"}
    spec = json.loads((int8_bundle / "manifest.json").read_text())["models"][INT8_KEY]
    assert spec["precision"] == "int8" and spec["quantization"]["calibration_crops"] > 0
    assert bundle.model_path("fc7", "int8") != bundle.model_path("fc7")
    pixels = _phantom(4)
    int8 = Detector(bundle, precision="int8", threads=1)
    fp32 = Detector(bundle, precision="fp32", threads=1)
    a = int8.detect(pixels, conf=0.0, spacing_mm=0.2)
    b = fp32.detect(pixels, conf=0.0, spacing_mm=0.2)
    assert isinstance(a, Detections) and len(a) > 0
    # same proposals, scores from a slightly different network: close, not identical (this
    # random tiny net is more sensitive to rounding than a trained one)
    gap = np.abs(np.sort(a.scores) - np.sort(b.scores))
    assert len(a) == len(b) and gap.mean() < 0.06 and gap.max() < 0.25, gap
    assert int8.precision == "int8"


def test_adding_int8_twice_replaces_it(int8_bundle: Path, tmp_path: Path):
    import shutil

    copy = Path(shutil.copytree(int8_bundle, tmp_path / "copy"))
    add_int8_fc7(copy, _crops(4, seed=9))
    bundle = load_bundle(copy)
    assert sorted(bundle.models) == ["fc7", INT8_KEY, "head"]
    spec = json.loads((copy / "manifest.json").read_text())["models"][INT8_KEY]
    assert spec["quantization"]["calibration_crops"] == 4


def test_int8_on_a_bundle_without_it_raises(toy_bundle):
    assert load_bundle(toy_bundle).precisions("fc7") == ("fp32",)
    with pytest.raises(BackendUnavailableError, match="int8"):
        Detector(toy_bundle, precision="int8")
