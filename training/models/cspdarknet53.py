"""CSPDarknet53: the YOLOv4 backbone, layer for layer as AlexeyAB's ``cfg/yolov4.cfg``.

Stem conv 32 3x3, then five CSP stages. Each stage downsamples with a 3x3 stride-2 conv, splits
into two 1x1 branches, runs residual blocks (1x1 then 3x3, plus the identity) on one, joins them
with a 1x1 conv, concatenates and fuses with a final 1x1 conv. Residual blocks per stage:
1, 2, 8, 8, 4. Every conv is conv (no bias) -> BatchNorm -> Mish. Stage 1 is the cfg's special
case: its branches keep all 64 channels and its residual block narrows to 32 inside.

Outputs for an input ``(N, C, H, W)`` with H, W multiples of 32 (pixels of the network input):
the stage-3, stage-4 and stage-5 maps, shapes ``(N, 256w, H/8, W/8)``, ``(N, 512w, H/16, W/16)``,
``(N, 1024w, H/32, W/32)``, where ``w`` is the width multiplier (channel counts rounded to a
multiple of 8). ``depth`` scales the residual block counts (at least 1 each).
"""

from __future__ import annotations

import torch
from torch import nn

STAGE_BLOCKS = (1, 2, 8, 8, 4)  # residual blocks per CSP stage at depth=1
STAGE_WIDTHS = (64, 128, 256, 512, 1024)  # output channels per CSP stage at width=1
STEM_WIDTH = 32
CHANNEL_DIVISOR = 8


def scale_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8 (at least 8)."""
    return max(CHANNEL_DIVISOR, CHANNEL_DIVISOR * round(channels * width / CHANNEL_DIVISOR))


def scale_depth(blocks: int, depth: float) -> int:
    """``blocks * depth`` rounded, at least 1."""
    return max(1, round(blocks * depth))


class ConvBNAct(nn.Module):
    """Darknet's ``[convolutional]`` with ``batch_normalize=1``: conv (no bias) -> BN -> act.

    ``activation`` is ``"mish"`` (backbone), ``"leaky"`` (slope 0.1; neck) or ``"linear"``.
    Padding is ``kernel_size // 2`` (darknet's ``pad=1``).
    """

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, activation: str = "mish"
    ):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=False)
        # torch's BN defaults (eps 1e-5, momentum 0.1); darknet's differ only in the epsilon.
        self.bn = nn.BatchNorm2d(c_out)
        if activation == "mish":
            self.act: nn.Module = nn.Mish(inplace=True)
        elif activation == "leaky":
            self.act = nn.LeakyReLU(0.1, inplace=True)
        elif activation == "linear":
            self.act = nn.Identity()
        else:
            raise ValueError(
                f"activation should be 'mish', 'leaky' or 'linear', got {activation!r}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ResidualBlock(nn.Module):
    """1x1 conv to ``hidden`` channels, 3x3 conv back to ``channels``, plus the input."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv1 = ConvBNAct(channels, hidden, 1)
        self.conv2 = ConvBNAct(hidden, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class CSPStage(nn.Module):
    """One CSP stage: downsample, split, residual blocks on one branch, concat, fuse.

    Args:
        c_in: input channels.
        c_out: output channels; the input is halved in H and W.
        num_blocks: residual blocks.
        first: stage 1 of the cfg (branches of ``c_out`` channels, blocks narrowed to half).
    """

    def __init__(self, c_in: int, c_out: int, num_blocks: int, first: bool = False):
        super().__init__()
        branch = c_out if first else c_out // 2
        hidden = c_out // 2 if first else branch
        self.downsample = ConvBNAct(c_in, c_out, 3, stride=2)
        self.split_shortcut = ConvBNAct(c_out, branch, 1)  # cfg: the branch routed around
        self.split_main = ConvBNAct(c_out, branch, 1)
        self.blocks = nn.Sequential(*(ResidualBlock(branch, hidden) for _ in range(num_blocks)))
        self.transition = ConvBNAct(branch, branch, 1)
        self.fuse = ConvBNAct(2 * branch, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        main = self.transition(self.blocks(self.split_main(x)))
        # cfg ``route = -1,-7`` (or -10, ...): the main branch first, then the shortcut.
        return self.fuse(torch.cat((main, self.split_shortcut(x)), dim=1))


class CSPDarknet53(nn.Module):
    """The backbone. ``forward(x)`` -> ``(c3, c4, c5)`` at strides 8, 16, 32.

    Args:
        in_channels: 1 for mammograms, 3 for the reference (ImageNet/COCO) network.
        width: channel multiplier (1.0 = the reference network).
        depth: residual-block-count multiplier (1.0 = 1, 2, 8, 8, 4).
    """

    def __init__(self, in_channels: int = 1, width: float = 1.0, depth: float = 1.0):
        super().__init__()
        widths = [scale_channels(c, width) for c in STAGE_WIDTHS]
        stem = scale_channels(STEM_WIDTH, width)
        self.stem = ConvBNAct(in_channels, stem, 3)
        c_ins = [stem, *widths[:-1]]
        self.stages = nn.ModuleList(
            CSPStage(c_in, c_out, scale_depth(n, depth), first=(i == 0))
            for i, (c_in, c_out, n) in enumerate(zip(c_ins, widths, STAGE_BLOCKS))
        )
        self.out_channels = tuple(widths[2:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args: x float32 ``(N, in_channels, H, W)``, H and W multiples of 32.

        Returns: stage-3, -4, -5 feature maps (strides 8, 16, 32), float32.
        """
        x = self.stem(x)
        x = self.stages[1](self.stages[0](x))
        c3 = self.stages[2](x)
        c4 = self.stages[3](c3)
        c5 = self.stages[4](c4)
        return c3, c4, c5
