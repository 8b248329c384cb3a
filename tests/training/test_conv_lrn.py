"""ConvLRN (AlexNet's LRN) computes exactly what nn.LocalResponseNorm computes, keeps checkpoints
compatible, and exports without the slow 3-D pool / Pow nodes."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from calcsdk.export.onnx_fc7 import export_fc7
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig
from calcsdk.training.models.conv_lrn import ConvLRN


@pytest.mark.parametrize("size,beta,channels", [(5, 0.75, 12), (3, 0.5, 7), (4, 0.75, 5)])
def test_conv_lrn_matches_torch_lrn(size: int, beta: float, channels: int):
    lrn = nn.LocalResponseNorm(size, alpha=0.3, beta=beta, k=1.5)  # large alpha: window matters
    x = torch.rand(2, channels, 6, 5, generator=torch.Generator().manual_seed(0)) * 4
    ours = ConvLRN(channels, size, alpha=0.3, beta=beta, k=1.5)
    torch.testing.assert_close(ours(x), lrn(x), rtol=1e-5, atol=1e-6)


def test_conv_lrn_gradient_matches_torch_lrn():
    lrn = nn.LocalResponseNorm(5, alpha=0.3, beta=0.75, k=2.0)
    x = (torch.rand(2, 9, 4, 4, generator=torch.Generator().manual_seed(1)) * 3).requires_grad_()
    (lrn(x) ** 2).sum().backward()
    expected, x.grad = x.grad.clone(), None
    (ConvLRN(9, 5, alpha=0.3, beta=0.75, k=2.0)(x) ** 2).sum().backward()
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-6)


def test_conv_lrn_has_no_state_and_rejects_bad_sizes():
    assert ConvLRN(6).state_dict() == {}
    with pytest.raises(ValueError, match="channels"):
        ConvLRN(0)


def test_alexnet_with_conv_lrn_equals_torch_lrn_alexnet():
    torch.manual_seed(0)
    net = AlexNet(AlexNetConfig(width=0.125)).eval()
    reference = AlexNet(AlexNetConfig(width=0.125)).eval()
    reference.load_state_dict(net.state_dict())  # same keys: LRN carries no state
    reference.features.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    reference.features.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    x = torch.rand(3, 1, 227, 227)
    with torch.no_grad():
        torch.testing.assert_close(net.features_fc7(x), reference.features_fc7(x))


def test_exported_fc7_has_no_pool3d_or_pow_and_leaves_the_model_alone(tmp_path):
    torch.manual_seed(0)
    net = AlexNet(AlexNetConfig(width=0.125)).train()
    path = export_fc7(net, tmp_path / "fc7.onnx")
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert not ops & {"AveragePool", "Pow", "LRN"}, ops
    assert net.training  # the exporter works on a copy
