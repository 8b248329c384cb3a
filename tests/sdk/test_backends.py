"""Backend registry and the onnxruntime backend: real sessions, no silent fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from calcsdk.backends.base import Session, backend_names, create_backend, parse_device
from calcsdk.errors import BackendUnavailableError


@pytest.fixture(scope="module")
def matmul_model(tmp_path_factory) -> Path:
    """y = x @ W + 1 with x (N, 3) float32 and a dynamic batch."""
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "one"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[
            onnx.numpy_helper.from_array(w, "W"),
            onnx.numpy_helper.from_array(np.ones(2, np.float32), "one"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    onnx.save(model, path)
    return path


def test_cpu_session_runs(matmul_model: Path):
    backend = create_backend("auto", device="cpu", threads=1)
    assert backend.name == "onnxruntime"
    session = backend.load(matmul_model)
    assert isinstance(session, Session)
    assert session.input_names == ("x",) and session.output_names == ("y",)
    x = np.array([[1, 0, 0], [0, 1, 1]], np.float32)
    out = session.run({"x": x})["y"]
    np.testing.assert_array_equal(out, x @ np.arange(6, dtype=np.float32).reshape(3, 2) + 1)
    assert session.providers[0] == "CPUExecutionProvider"


def test_wrong_feed_names(matmul_model: Path):
    session = create_backend("onnxruntime").load(matmul_model)
    with pytest.raises(ValueError, match=r"expected inputs \('x',\), got \('crops',\)"):
        session.run({"crops": np.zeros((1, 3), np.float32)})


@pytest.mark.parametrize(
    ("name", "device", "message"),
    [
        ("nope", "cpu", "unknown backend 'nope'"),
        ("onnxruntime", "cuda", "CUDAExecutionProvider"),
    ],
)
def test_unavailable_backend_raises(name, device, message):
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(BackendUnavailableError, match=message):
        create_backend(name, device=device)


def test_provider_must_fit_device():
    with pytest.raises(BackendUnavailableError, match="does not fit device"):
        create_backend("onnxruntime", device="cpu", provider="cuda")


def test_corrupt_model_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(BackendUnavailableError, match="cannot load the model"):
        create_backend("onnxruntime").load(bad)


@pytest.mark.parametrize(
    ("device", "expected"), [("cpu", ("cpu", 0)), ("cuda", ("cuda", 0)), ("cuda:3", ("cuda", 3))]
)
def test_parse_device(device, expected):
    assert parse_device(device) == expected


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:1", ""])
def test_parse_device_rejects(device):
    with pytest.raises(ValueError, match="device must be"):
        parse_device(device)


def test_registry_lists_onnxruntime():
    assert "onnxruntime" in backend_names()


@pytest.mark.gpu
def test_cuda_session_runs_on_gpu(matmul_model: Path):
    session = create_backend("onnxruntime", device="cuda").load(matmul_model)
    assert session.providers[0] == "CUDAExecutionProvider"
    out = session.run({"x": np.ones((4, 3), np.float32)})["y"]
    assert out.shape == (4, 2)


def test_cuda_sessions_ask_for_ieee_fp32(matmul_model: Path, monkeypatch):
    """The CUDA provider is created with TF32 off (its default is on; see the backend docs)."""
    seen = {}

    class FakeSession:
        def __init__(self, path, options, providers):
            seen["providers"] = providers

        def get_providers(self):
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def get_inputs(self):
            return []

        get_outputs = get_inputs

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    create_backend("onnxruntime", device="cuda:1").load(matmul_model)
    assert seen["providers"][0] == ("CUDAExecutionProvider", {"device_id": 1, "use_tf32": 0})
