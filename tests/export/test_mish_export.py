"""ExpMish (the exporters' Mish) computes what nn.Mish computes, and the exported YOLO uses it."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from calcsdk.export.mish_export import ExpMish, with_exp_mish
from calcsdk.export.onnx_yolo import export_yolo
from calcsdk.training.models.yolov4 import YOLOv4, YOLOv4Config


def test_exp_mish_matches_mish_over_the_float_range():
    x = torch.cat([torch.linspace(-100, 100, 20001), torch.tensor([0.0, -1e-30, 1e-30, 3e38])])
    expected, got = nn.Mish()(x), ExpMish()(x)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-6)


def test_with_exp_mish_copies_and_keeps_the_function():
    torch.manual_seed(0)
    model = YOLOv4(YOLOv4Config(width=0.125, depth=0.33)).eval()
    converted = with_exp_mish(model).eval()
    assert any(isinstance(m, nn.Mish) for m in model.modules())  # the original is untouched
    assert not any(isinstance(m, nn.Mish) for m in converted.modules())
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        for a, b in zip(converted(x), model(x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_exported_yolo_has_no_softplus(tmp_path):
    torch.manual_seed(0)
    model = YOLOv4(YOLOv4Config(width=0.125, depth=0.33)).eval()
    anchors = np.arange(1, 19, dtype=np.float32).reshape(9, 2) * 8
    path = export_yolo(model, tmp_path / "y.onnx", anchors=anchors, decode=False, input_size=64)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert not ops & {"Mish", "Softplus"} and "Exp" in ops, ops
