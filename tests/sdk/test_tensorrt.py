"""TensorRT backend: cache keys, cache location, lazy-import refusals and the EfficientNMS
graph surgery run everywhere; engine builds need TensorRT 10 and a GPU (marked, skipped here)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from calcsdk.backends.base import backend_names, create_backend
from calcsdk.backends.tensorrt_engine import (
    EngineKey,
    engine_cache_dir,
    import_cudart,
    load_or_build,
)
from calcsdk.bundle import load_bundle, sha256_file
from calcsdk.errors import BackendUnavailableError
from calcsdk.export.tensorrt_yolo import NMS_OUTPUTS, export_efficient_nms, with_efficient_nms

KEY = EngineKey("NVIDIA H100 80GB HBM3", "9.0", "10.3.0", "fp16", 1, 32, 256, "ab" * 32)


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory) -> Path:
    """y = relu(conv3x3(x) + b), x (N, 1, 16, 16) float32, dynamic batch, 4 output channels."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 4).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "tiny_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 16, 16])],
        initializer=[onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("trt") / "conv.onnx"
    onnx.save(model, path)
    return path


def _yolo_like(batch="N", anchors=6, classes=2) -> onnx.ModelProto:
    """images (N, 1, 6, 6) -> boxes (N, A, 4), scores (N, A, C): a hand-made decoded head."""
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["images", "box_shape"], ["flat"]),
            helper.make_node("Slice", ["flat", "s0", "s4", "ax"], ["boxes"]),
            helper.make_node("Slice", ["flat", "s0", "sc", "ax"], ["raw"]),
            helper.make_node("Sigmoid", ["raw"], ["scores"]),
        ],
        "yolo_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 1, 6, 6])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batch, anchors, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, anchors, classes]),
        ],
        initializer=[
            onnx.numpy_helper.from_array(np.array([0, anchors, -1], np.int64), "box_shape"),
            onnx.numpy_helper.from_array(np.array([0], np.int64), "s0"),
            onnx.numpy_helper.from_array(np.array([4], np.int64), "s4"),
            onnx.numpy_helper.from_array(np.array([classes], np.int64), "sc"),
            onnx.numpy_helper.from_array(np.array([2], np.int64), "ax"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# --- engine keys and cache location (no GPU) ------------------------------------------------
def test_engine_key_name_is_stable():
    again = EngineKey(**dataclasses.asdict(KEY))
    assert KEY.file_name() == again.file_name()
    assert KEY.file_name().endswith(".engine") and "/" not in KEY.file_name()
    assert KEY.file_name().startswith("abababababab-fp16-b1_32_256-sm9.0-trt10.3.0-")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("gpu_name", "NVIDIA L4"),
        ("compute_capability", "8.9"),
        ("trt_version", "10.4.0"),
        ("precision", "int8"),
        ("batch_min", 2),
        ("batch_opt", 64),
        ("batch_max", 512),
        ("onnx_sha256", "cd" * 32),
    ],
)
def test_engine_key_name_changes_with_every_field(field, value):
    assert dataclasses.replace(KEY, **{field: value}).file_name() != KEY.file_name()


@pytest.mark.parametrize(
    "changes", [{"precision": "bf16"}, {"batch_min": 0}, {"batch_opt": 300}, {"batch_min": 64}]
)
def test_engine_key_rejects_bad_fields(changes):
    with pytest.raises(ValueError, match=r"precision|batch profile"):
        dataclasses.replace(KEY, **changes)


def test_engine_cache_dir_is_beside_the_bundle(toy_bundle):
    bundle = load_bundle(toy_bundle)
    expected = Path(toy_bundle).absolute().parent / f"{Path(toy_bundle).name}.engines"
    for given in (toy_bundle, bundle, bundle.model_path("fc7")):
        cache = engine_cache_dir(given)
        assert cache == expected
        assert Path(toy_bundle).absolute() not in cache.parents


def test_engine_cache_dir_of_an_archive_copy_is_per_user(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    copy = Path(tempfile.mkdtemp(prefix="calcsdk-bundle-"))
    try:
        (copy / "m.onnx").write_bytes(b"x")
        assert engine_cache_dir(copy / "m.onnx") == tmp_path / "cache" / "calcsdk" / "engines"
    finally:
        (copy / "m.onnx").unlink()
        copy.rmdir()


# --- refusals without TensorRT / cuda-python / GPU -----------------------------------------
def test_load_or_build_names_missing_tensorrt(conv_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    key = dataclasses.replace(KEY, onnx_sha256=sha256_file(conv_model))
    with pytest.raises(BackendUnavailableError, match="'tensorrt' package is not importable"):
        load_or_build(conv_model, key, tmp_path / "engines")
    assert not (tmp_path / "engines").exists()


def test_import_cudart_names_missing_cuda_python(monkeypatch):
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendUnavailableError, match="'cuda-python' package"):
        import_cudart()


def test_tensorrt_is_registered():
    assert "tensorrt" in backend_names()


def test_tensorrt_backend_refuses_cpu():
    with pytest.raises(BackendUnavailableError, match="needs a CUDA device"):
        create_backend("tensorrt")


def test_tensorrt_backend_without_tensorrt_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        create_backend("tensorrt", device="cuda")


# --- EfficientNMS graph surgery (no TensorRT needed) ---------------------------------------
def test_efficient_nms_graph(tmp_path):
    src = tmp_path / "yolo.onnx"
    onnx.save(_yolo_like(), src)
    dst = export_efficient_nms(src, tmp_path / "yolo_nms.onnx", iou_threshold=0.3,
                               score_threshold=0.25, max_output_boxes=7)  # fmt: skip
    model = onnx.load(dst)
    onnx.checker.check_model(model, full_check=True)
    assert tuple(o.name for o in model.graph.output) == NMS_OUTPUTS
    node = model.graph.node[-1]
    assert node.op_type == "EfficientNMS_TRT" and list(node.input) == ["boxes", "scores"]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["score_threshold"] == pytest.approx(0.25)
    assert attrs["iou_threshold"] == pytest.approx(0.3)
    assert (attrs["max_output_boxes"], attrs["background_class"]) == (7, -1)
    assert (attrs["score_activation"], attrs["box_coding"]) == (0, 0)
    assert "class_agnostic" not in attrs
    types = {
        o.name: (
            o.type.tensor_type.elem_type,
            [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim],
        )
        for o in model.graph.output
    }
    assert types == {
        "num_detections": (TensorProto.INT32, ["N", 1]),
        "detection_boxes": (TensorProto.FLOAT, ["N", 7, 4]),
        "detection_scores": (TensorProto.FLOAT, ["N", 7]),
        "detection_classes": (TensorProto.INT32, ["N", 7]),
    }


def test_efficient_nms_keeps_a_fixed_batch_and_the_input_model():
    model = _yolo_like(batch=2)
    before = model.SerializeToString()
    out = with_efficient_nms(model, class_agnostic=True, max_output_boxes=5)
    assert model.SerializeToString() == before
    dims = [d.dim_value for d in out.graph.output[1].type.tensor_type.shape.dim]
    assert dims == [2, 5, 4]
    attrs = {a.name: helper.get_attribute_value(a) for a in out.graph.node[-1].attribute}
    assert attrs["class_agnostic"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"score_threshold": 1.5}, "thresholds"),
        ({"iou_threshold": -0.1}, "thresholds"),
        ({"max_output_boxes": 0}, "max_output_boxes"),
    ],
)
def test_efficient_nms_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        with_efficient_nms(_yolo_like(), **options)


def test_efficient_nms_needs_boxes_and_scores():
    model = _yolo_like()
    model.graph.output.pop()
    with pytest.raises(ValueError, match="lacks \\['scores'\\]"):
        with_efficient_nms(model)


# --- TensorRT on a GPU (skipped cleanly without TensorRT 10 + GPU) -------------------------
@pytest.mark.gpu
@pytest.mark.tensorrt
def test_fp16_engine_matches_onnxruntime(conv_model, tmp_path):
    backend = create_backend("tensorrt", device="cuda", precision="fp16", max_batch=8,
                             cache_dir=tmp_path)  # fmt: skip
    session = backend.load(conv_model)
    assert session.input_names == ("x",) and session.output_names == ("y",)
    reference = create_backend("onnxruntime").load(conv_model)
    x = np.random.default_rng(1).random((11, 1, 16, 16), dtype=np.float32)  # 2 chunks of <= 8
    got, want = session.run({"x": x})["y"], reference.run({"x": x})["y"]
    assert got.dtype == np.float32 and got.shape == want.shape == (11, 4, 16, 16)
    np.testing.assert_allclose(got, want, atol=1e-2, rtol=1e-2)
    assert session.run({"x": x[:0]})["y"].shape == (0, 4, 16, 16)


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_engine_cache_is_reused_and_rebuilt_on_key_change(conv_model, tmp_path):
    backend = create_backend("tensorrt", device="cuda", max_batch=4, cache_dir=tmp_path)
    backend.load(conv_model)
    engine = tmp_path / backend.engine_key(conv_model).file_name()
    first = engine.stat().st_mtime_ns
    backend.load(conv_model)
    assert engine.stat().st_mtime_ns == first  # reused, not rebuilt
    other = create_backend("tensorrt", device="cuda", max_batch=8, cache_dir=tmp_path)
    other.load(conv_model)
    assert (tmp_path / other.engine_key(conv_model).file_name()).is_file()
    assert len(list(tmp_path.glob("*.engine"))) == 2


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_int8_calibration_writes_a_cache(conv_model, tmp_path):
    crops = np.random.default_rng(2).random((32, 1, 16, 16), dtype=np.float32)
    backend = create_backend("tensorrt", device="cuda", precision="int8", max_batch=8,
                             cache_dir=tmp_path, calibration={"x": crops})  # fmt: skip
    session = backend.load(conv_model)
    assert list(tmp_path.glob("*.calib"))
    out = session.run({"x": crops[:4]})["y"]
    want = create_backend("onnxruntime").load(conv_model).run({"x": crops[:4]})["y"]
    assert out.shape == want.shape and np.abs(out - want).max() < 0.2
