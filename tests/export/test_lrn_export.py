"""ConvLRN (the exporters' LRN) computes exactly what nn.LocalResponseNorm computes."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from calcsdk.export.lrn_export import ConvLRN, with_conv_lrn
from calcsdk.export.onnx_fc7 import export_fc7
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig


@pytest.mark.parametrize("size,beta,channels", [(5, 0.75, 12), (3, 0.5, 7), (4, 0.75, 5)])
def test_conv_lrn_matches_torch_lrn(size: int, beta: float, channels: int):
    lrn = nn.LocalResponseNorm(size, alpha=0.3, beta=beta, k=1.5)  # large alpha: window matters
    x = torch.rand(2, channels, 6, 5, generator=torch.Generator().manual_seed(0)) * 4
    torch.testing.assert_close(ConvLRN(lrn, channels)(x), lrn(x), rtol=1e-5, atol=1e-6)


def test_with_conv_lrn_copies_and_keeps_the_function():
    torch.manual_seed(0)
    net = AlexNet(AlexNetConfig(width=0.125)).eval()
    converted = with_conv_lrn(net).eval()
    assert any(isinstance(m, nn.LocalResponseNorm) for m in net.modules())  # original untouched
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in converted.modules())
    assert sum(isinstance(m, ConvLRN) for m in converted.modules()) == 2
    x = torch.rand(3, 1, 227, 227)
    with torch.no_grad():
        torch.testing.assert_close(converted.features_fc7(x), net.features_fc7(x))


def test_exported_fc7_has_no_pool3d_or_pow(tmp_path):
    torch.manual_seed(0)
    path = export_fc7(AlexNet(AlexNetConfig(width=0.125)).eval(), tmp_path / "fc7.onnx")
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert not ops & {"AveragePool", "Pow", "LRN"}, ops
