"""YOLOv4 -> ONNX: parity with torch on a second, differently sized input (torchvision
test_onnx style), the in-graph decoding against calcsdk.yolo_decode, the appended NMS, and a
tiny bundle run through calcsdk.Detector."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from calcsdk import Detector
from calcsdk.backends.base import create_backend
from calcsdk.boxes import nms
from calcsdk.bundle import load_bundle
from calcsdk.export.onnx_yolo import (
    DecodedYOLOv4,
    export_yolo,
    export_yolo_bundle,
    write_yolo_bundle,
)
from calcsdk.image import read_mammogram
from calcsdk.pipelines.yolo import YoloPipeline, YoloSettings
from calcsdk.training.models import YOLOv4, YOLOv4Config
from calcsdk.training.yolo.evaluate import TorchYoloSession
from calcsdk.yolo_decode import RAW_OUTPUTS, decode_yolo

pytestmark = pytest.mark.slow  # two dynamo exports, ~8 s and ~15 s on 2 idle CPU cores

ANCHORS = np.array([[w, w * 1.25] for w in (4, 6, 8, 12, 16, 24, 32, 48, 64)], np.float32)
SCALE_X_Y = (1.2, 1.1, 1.05)
RTOL, ATOL = 1e-3, 1e-5
NMS = {"nms_iou_threshold": 0.45, "nms_score_threshold": 0.2, "nms_max_per_class": 7}
SETTINGS = YoloSettings(
    anchors=tuple(map(tuple, ANCHORS.tolist())),
    working_spacing_mm=0.2,
    network_size=64,
    tile_overlap=16,
    scale_x_y=SCALE_X_Y,
)


@pytest.fixture(scope="module")
def model() -> YOLOv4:
    torch.manual_seed(0)
    net = YOLOv4(YOLOv4Config(num_classes=2, in_channels=1, width=1 / 16, depth=1 / 8))
    with torch.no_grad():  # spread the scores so that thresholds and NMS have work to do
        for head in net.heads:
            head.predict.bias.add_(torch.randn(head.predict.bias.shape))
    return net.eval()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx-yolo")
    decoded = export_yolo(
        model, folder / "decoded.onnx", anchors=ANCHORS, scale_x_y=SCALE_X_Y, nms=True,
        metadata={"note": "test"}, **NMS,
    )  # fmt: skip
    raw_bundle = export_yolo_bundle(model, SETTINGS, folder / "raw-bundle", decode=False)
    return {"decoded": decoded, "raw": raw_bundle / "yolov4.onnx", "raw_bundle": raw_bundle}


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _torch_raw(model, images):
    with torch.no_grad():
        return [r.numpy() for r in model(torch.from_numpy(images))]


@pytest.mark.parametrize("shape", [(3, 1, 96, 160), (1, 1, 32, 32)])
def test_decoded_graph_matches_numpy_decoding_of_torch(model, exported, shape):
    images = np.random.default_rng(1).random(shape, dtype=np.float32)
    boxes, scores, _ = _session(exported["decoded"]).run(None, {"images": images})
    ref_boxes, ref_scores = decode_yolo(_torch_raw(model, images), ANCHORS, scale_x_y=SCALE_X_Y)
    np.testing.assert_allclose(boxes, ref_boxes, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(scores, ref_scores, rtol=RTOL, atol=ATOL)
    with torch.no_grad():  # the torch mirror of the decoding, before any export
        torch_boxes, torch_scores = DecodedYOLOv4(model, ANCHORS, SCALE_X_Y)(
            torch.from_numpy(images)
        )
    np.testing.assert_allclose(torch_boxes.numpy(), ref_boxes, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(torch_scores.numpy(), ref_scores, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", [(5, 1, 64, 64), (1, 1, 64, 64)])  # exported with batch 2
def test_raw_graph_matches_torch(model, exported, shape):
    images = np.random.default_rng(2).random(shape, dtype=np.float32)
    session = _session(exported["raw"])
    assert [o.name for o in session.get_outputs()] == list(RAW_OUTPUTS)
    for actual, expected in zip(session.run(None, {"images": images}), _torch_raw(model, images)):
        np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def test_appended_nms_selects_what_greedy_nms_selects(exported):
    images = np.random.default_rng(3).random((2, 1, 64, 96), dtype=np.float32)
    boxes, scores, selected = _session(exported["decoded"]).run(None, {"images": images})
    assert selected.dtype == np.int64 and selected.ndim == 2 and selected.shape[1] == 3
    assert len(selected) > 0
    for image in range(2):
        for label in range(2):
            rows = selected[(selected[:, 0] == image) & (selected[:, 1] == label), 2]
            candidates = np.flatnonzero(scores[image, :, label] > NMS["nms_score_threshold"])
            kept = candidates[nms(boxes[image, candidates], scores[image, candidates, label], 0.45)]
            assert rows.tolist() == kept[: NMS["nms_max_per_class"]].tolist()


def test_metadata_names_the_decoding(exported):
    meta = {p.key: p.value for p in onnx.load(str(exported["decoded"])).metadata_props}
    assert json.loads(meta["anchors"])[0] == [4.0, 5.0]
    assert json.loads(meta["scale_x_y"]) == list(SCALE_X_Y)
    assert (meta["decoded"], meta["nms"], meta["note"]) == ("true", "true", "test")


@pytest.mark.parametrize(
    ("options", "message"), [({"decode": False, "nms": True}, "decode"), ({"input_size": 48}, "32")]
)
def test_bad_export_options_raise(model, tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        export_yolo(model, tmp_path / "x.onnx", anchors=ANCHORS, **options)


def _mammogram_pixels() -> np.ndarray:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:320, 0:256]
    pixels = np.full((320, 256), 200.0)
    breast = (xx / 205) ** 2 + ((yy - 160) / 144) ** 2 <= 1
    pixels[breast] = 1800 + 200 * rng.standard_normal(breast.sum())
    return np.clip(pixels, 0, 4095).astype(np.uint16)


@pytest.mark.parametrize("kind", ["decoded", "raw"])
def test_bundle_runs_through_detector_like_the_torch_pipeline(model, exported, kind, tmp_path):
    if kind == "decoded":  # the dynamic-size graph with NMS; the SDK reads boxes and scores
        root = write_yolo_bundle(tmp_path / "bundle", exported[kind], SETTINGS, name="tiny-yolo")
    else:  # export_yolo_bundle: fixed 64 x 64 input, raw heads decoded by the SDK in numpy
        root = exported["raw_bundle"]
    bundle = load_bundle(root)
    outputs = bundle.models["yolov4"].outputs
    assert outputs == (("boxes", "scores") if kind == "decoded" else RAW_OUTPUTS)
    assert bundle.pipeline == "yolov4" and bundle.section("yolo")["anchors"][0] == [4.0, 5.0]
    pixels = _mammogram_pixels()
    with Detector(root) as detector:
        detections = detector.detect(pixels, conf=0.0, spacing_mm=0.1)
    assert 0 < len(detections) <= 100 and detections.class_names == ("malignant", "benign")
    boxes = detections.boxes
    assert boxes[:, 2].max() <= 256 and boxes[:, 3].max() <= 320
    assert boxes[:, 2].max() > 128  # original pixels (the working frame is 128 x 160)
    # the same candidates as the torch model through the numpy decoding
    mammogram = read_mammogram(pixels, spacing_mm=0.1)
    onnx_pipeline = YoloPipeline(bundle, create_backend("onnxruntime"))
    torch_pipeline = YoloPipeline.from_session(
        TorchYoloSession(model), SETTINGS, bundle.class_names
    )
    working = torch_pipeline.prepare(mammogram)
    tiles = torch_pipeline.plan(working)
    ours = onnx_pipeline.detect_tiles(working.image01, tiles)
    reference = torch_pipeline.detect_tiles(working.image01, tiles)
    assert len(ours[0]) == len(reference[0]) > 0
    np.testing.assert_allclose(ours[0], reference[0], rtol=RTOL, atol=1e-3)
    np.testing.assert_allclose(ours[1], reference[1], rtol=RTOL, atol=ATOL)


def test_export_yolo_run_bundles_a_training_run(tmp_path):
    from calcsdk.export.onnx_yolo import export_yolo_run
    from calcsdk.image import write_png
    from calcsdk.training.datasets import ImageRecord
    from calcsdk.training.yolo.config import get_config
    from calcsdk.training.yolo.train import train_yolo

    path = tmp_path / "image.png"
    write_png(path, _mammogram_pixels(), spacing_mm=0.1, bits_stored=12)
    record = ImageRecord(str(path), [[40, 120, 80, 160]], [0], (0.1, 0.1))
    config = get_config(
        "yolov4-1", width=1 / 16, depth=1 / 8, network_size=64, tile_overlap=16,
        batch_size=4, micro_batch_size=4, max_steps=1, progress=False,
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: one thread is faster (see test_yolo_train)
    try:
        train_yolo([record], config, tmp_path / "run", val_records=[record], anchors=ANCHORS)
    finally:
        torch.set_num_threads(threads)
    root = export_yolo_run(tmp_path / "run")
    bundle = load_bundle(root)
    assert bundle.manifest["provenance"]["weights"] == "best.pt"
    assert bundle.manifest["provenance"]["config"]["network_size"] == 64
    assert set(bundle.manifest["metrics"]["validation"]) == {"precision", "recall", "f1", "mAP"}
    assert bundle.section("preprocess")["tile_overlap"] == 16
    with Detector(root) as detector:
        detections = detector.detect(str(path), conf=0.0)
    assert len(detections) > 0 and detections.boxes[:, 2].max() <= 256
    from calcsdk.export.yolo_verify import verify_yolo_run

    report = verify_yolo_run(tmp_path / "run", root)
    assert report["decoded_in_graph"] and report["fp32_ok"], report
    assert set(report) >= {"batch_1", "batch_3", "max_rel"}
    with pytest.raises(FileNotFoundError):
        export_yolo_run(tmp_path / "nothing")

    # --int8 through the CLI: yolov4@int8 calibrated on the run's training tiles
    from calcsdk.cli import main as cli

    (tmp_path / "run" / "split.json").write_text(json.dumps({"train": [str(path)]}))
    int8_root = tmp_path / "int8"
    argv = ["export", "yolo", "--run", str(tmp_path / "run"), "--out", str(int8_root), "--int8"]
    assert cli(argv) == 0
    bundle = load_bundle(int8_root)
    assert bundle.precisions("yolov4") == ("fp32", "int8")
    quantization = bundle.manifest["models"]["yolov4@int8"]["quantization"]
    assert quantization["calibration_tiles"] >= 1
    ops = {n.op_type for n in onnx.load(bundle.model_path("yolov4", "int8")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    with Detector(int8_root, precision="int8") as detector:
        int8_detections = detector.detect(str(path), conf=0.0)
    assert len(int8_detections) > 0
