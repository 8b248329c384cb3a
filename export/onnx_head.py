"""The linear SVM head and its Platt calibration -> one ONNX ``Gemm`` + ``Sigmoid``.

The trained head (``calcsdk.training.rcnn.head.LinearSvmHead``) is, per detector class c,

    z_c = w_c . ((f - mu) / sigma) + b_c          (standardised one-vs-rest linear SVM)
    p_c = sigmoid(A_c * z_c + B_c)                 (Platt calibration on validation data)

which folds exactly into ``p = sigmoid(f @ W'.T + b')`` with ``W' = A * W / sigma`` and
``b' = A * (b - W @ (mu / sigma)) + B``. The folded graph is one GEMM: ~4k x C multiply-adds per
crop, negligible next to the CNN, and needs no ML-domain ONNX ops (which TensorRT lacks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calcsdk.model_io import BOX_OUTPUT, HEAD_INPUT, HEAD_OUTPUT

OPSET = 18


def fold_head(
    weight: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    platt_a: np.ndarray,
    platt_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold standardisation, SVM and Platt scaling into ``(W' (C, D), b' (C,))`` float64."""
    weight = np.asarray(weight, np.float64)
    scale = np.where(np.asarray(scale, np.float64) == 0, 1.0, scale)
    a = np.asarray(platt_a, np.float64)[:, None]
    folded_w = a * weight / scale[None, :]
    folded_b = a[:, 0] * (np.asarray(bias, np.float64) - weight @ (np.asarray(mean) / scale))
    return folded_w, folded_b + np.asarray(platt_b, np.float64)


def export_head(
    weight: np.ndarray,
    bias: np.ndarray,
    path: str | os.PathLike,
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``scores = sigmoid(fc7 @ weight.T + bias)``: ``fc7`` (N, D) -> ``scores`` (N, C)."""
    return _export_linear(weight, bias, path, HEAD_OUTPUT, "svm_head", True, metadata)


def export_box_regressor(
    weight: np.ndarray,
    bias: np.ndarray,
    path: str | os.PathLike,
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``deltas = fc7 @ weight.T + bias``: ``fc7`` (N, D) -> ``deltas`` (N, 4), the
    class-agnostic R-CNN box regressor (standardisation already folded into ``weight, bias``)."""
    if np.shape(weight)[0] != 4:
        raise ValueError(f"a box regressor has 4 outputs, got weight of shape {np.shape(weight)}")
    return _export_linear(weight, bias, path, BOX_OUTPUT, "box_regressor", False, metadata)


def _export_linear(weight, bias, path, output: str, name: str, sigmoid: bool, metadata) -> Path:
    """One Gemm (``fc7 @ weight.T + bias``), optionally followed by a Sigmoid, as ONNX."""
    from calcsdk.export.onnx_fc7 import set_metadata

    weight = np.asarray(weight, np.float32)
    bias = np.asarray(bias, np.float32).reshape(-1)
    c, d = weight.shape
    gemm_out = "logits" if sigmoid else output
    nodes = [helper.make_node("Gemm", [HEAD_INPUT, "W", "b"], [gemm_out], transB=1)]
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", [gemm_out], [output]))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(HEAD_INPUT, TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", c])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    set_metadata(model, metadata or {})
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, path)
    return path
