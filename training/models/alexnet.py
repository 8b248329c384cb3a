"""AlexNet as the paper uses it: the R-CNN's ROI classifier and fc7 feature extractor.

The layer stack is Krizhevsky et al. (2012) as shipped in Caffe's ``bvlc_alexnet`` and MATLAB's
``alexnet`` (the paper's tool, R2022a), with two changes the paper makes or implies:

* ONE input channel. Mammograms are grayscale; the paper's 3-channel ImageNet AlexNet saw the
  same gray plane replicated three times, which is exactly a 1-channel conv1 whose kernel is the
  sum of the three colour kernels. Input: float32 ``(N, 1, 227, 227)``, intensities in [0, 1],
  pixel frame of the warped 227x227 ROI crop.
* ``num_classes`` outputs (3: malignant=0, benign=1, normal=2) in the new last layer ``fc8``.

Layers (``groups=2`` on conv2, conv4 and conv5, as in Krizhevsky's two-GPU net and in Caffe and
MATLAB; this is what makes the paper's net 56.9 M parameters rather than 58.3 M)::

    conv1  96 11x11 /4          -> ReLU -> LRN -> max-pool 3/2     (N,  96, 27, 27)
    conv2 256  5x5 pad 2 g2     -> ReLU -> LRN -> max-pool 3/2     (N, 256, 13, 13)
    conv3 384  3x3 pad 1        -> ReLU
    conv4 384  3x3 pad 1 g2     -> ReLU
    conv5 256  3x3 pad 1 g2     -> ReLU -> max-pool 3/2            (N, 256,  6,  6)
    fc6 4096 -> ReLU -> dropout -> fc7 4096 -> ReLU -> dropout -> fc8 num_classes

LRN is size 5, alpha 1e-4, beta 0.75, k 2, with alpha divided by the window size exactly as
``nn.LocalResponseNorm``, Caffe's and MATLAB's ``crossChannelNormalizationLayer`` and ONNX's
``LRN`` do. It is computed by :class:`~calcsdk.training.models.conv_lrn.ConvLRN` (a 1x1 conv
form of the same function, faster to train and to run in ONNX; no parameters).

With ``width=1``, 1 input channel and 3 classes the net has 56,857,283 parameters. ``width``
scales every conv and fc width (conv widths rounded to a multiple of 2 for the groups); it exists
for fast tests and small shipped models only. The forward pass has no data-dependent control
flow and exports to ONNX as is.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from calcsdk.training.models.conv_lrn import ConvLRN

INPUT_SIZE = 227  # pixels, height = width of the warped ROI crop
_CONV_WIDTHS = (96, 256, 384, 384, 256)  # conv1..conv5 at width=1
_FC_WIDTH = 4096  # fc6 and fc7 at width=1
_GROUPS = (1, 2, 1, 2, 2)  # conv1..conv5: Krizhevsky's two-GPU split
_POOLED_SIZE = 6  # pixels: conv5 feature map after its max-pool, for a 227x227 input


@dataclass(frozen=True)
class AlexNetConfig:
    width: float = 1.0  # multiplier on every conv and fc width; 1.0 is the paper's net
    num_classes: int = 3  # malignant=0, benign=1, normal=2
    in_channels: int = 1  # grayscale mammograms (see the module docstring)
    dropout: float = 0.5  # on the outputs of fc6 and fc7 during training, as in Krizhevsky

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"width should be > 0, got {self.width}")
        if self.num_classes < 1:
            raise ValueError(f"num_classes should be >= 1, got {self.num_classes}")
        if self.in_channels < 1:
            raise ValueError(f"in_channels should be >= 1, got {self.in_channels}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout should be in [0, 1), got {self.dropout}")

    @property
    def conv_widths(self) -> tuple[int, ...]:
        """Output channels of conv1..conv5 (each a multiple of 2, at least 2)."""
        return tuple(max(2, 2 * round(c * self.width / 2)) for c in _CONV_WIDTHS)

    @property
    def fc_width(self) -> int:
        """Width of fc6 and fc7, i.e. the fc7 feature dimension."""
        return max(1, round(_FC_WIDTH * self.width))


class AlexNet(nn.Module):
    """The paper's AlexNet. ``forward(x)`` -> logits; ``features_fc7(x)`` -> the SVM's input.

    Args:
        config: widths, class count, input channels and dropout; default is the paper's net.
    """

    def __init__(self, config: AlexNetConfig | None = None):
        super().__init__()
        self.config = config or AlexNetConfig()
        c1, c2, c3, c4, c5 = self.config.conv_widths
        g1, g2, g3, g4, g5 = _GROUPS
        in_ch = self.config.in_channels

        def lrn(channels: int) -> ConvLRN:
            return ConvLRN(channels, size=5, alpha=1e-4, beta=0.75, k=2.0)

        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_ch, c1, 11, stride=4, groups=g1),
                relu1=nn.ReLU(inplace=True),
                norm1=lrn(c1),
                pool1=nn.MaxPool2d(3, stride=2),
                conv2=nn.Conv2d(c1, c2, 5, padding=2, groups=g2),
                relu2=nn.ReLU(inplace=True),
                norm2=lrn(c2),
                pool2=nn.MaxPool2d(3, stride=2),
                conv3=nn.Conv2d(c2, c3, 3, padding=1, groups=g3),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(c3, c4, 3, padding=1, groups=g4),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(c4, c5, 3, padding=1, groups=g5),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(3, stride=2),
            )
        )
        fc = self.config.fc_width
        drop = self.config.dropout
        self.fc6_to_fc7 = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(c5 * _POOLED_SIZE * _POOLED_SIZE, fc),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(drop),
                fc7=nn.Linear(fc, fc),
                relu7=nn.ReLU(inplace=True),
            )
        )
        self.drop7 = nn.Dropout(drop)
        self.fc8 = nn.Linear(fc, self.config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He-normal for the ReLU layers, so that the net also trains from scratch (no ImageNet
        # weights ship with calcsdk); a small normal for the new classifier layer fc8.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.fc8.weight, std=0.01)

    @property
    def last_layer(self) -> nn.Linear:
        """The new, task-specific classifier layer ``fc8`` (gets the higher learning rate)."""
        return self.fc8

    @property
    def fc7_dim(self) -> int:
        """Length D of the fc7 feature vector."""
        return self.config.fc_width

    def features_fc7(self, x: torch.Tensor) -> torch.Tensor:
        """fc7 activations after its ReLU: the R-CNN's SVM input.

        Args:
            x: float32 ``(N, in_channels, 227, 227)``, intensities in [0, 1].
        Returns:
            float32 ``(N, fc7_dim)``, non-negative.
        """
        return self.fc6_to_fc7(torch.flatten(self.features(x), 1))

    def logits_and_fc7(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs of one pass: logits ``(N, num_classes)`` and fc7 ``(N, fc7_dim)``."""
        fc7 = self.features_fc7(x)
        return self.fc8(self.drop7(fc7)), fc7

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            x: float32 ``(N, in_channels, 227, 227)``, intensities in [0, 1].
        Returns:
            float32 ``(N, num_classes)`` unnormalised scores (softmax gives probabilities).
        """
        return self.logits_and_fc7(x)[0]


def check_alexnet_input(x: torch.Tensor, config: AlexNetConfig) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating ``(N, in_channels, 227, 227)`` tensor.

    Kept out of ``forward`` so that tracing and ONNX export see no Python-side shape checks.
    """
    if not torch.is_floating_point(x):
        raise ValueError(f"AlexNet input should be a floating tensor, got dtype {x.dtype}")
    expected = (config.in_channels, INPUT_SIZE, INPUT_SIZE)
    if x.dim() != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"AlexNet input should have shape (N, {', '.join(map(str, expected))}), "
            f"got {tuple(x.shape)}"
        )
