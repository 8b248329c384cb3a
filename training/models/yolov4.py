"""YOLOv4, the paper's one-stage baseline: CSPDarknet53 + SPP + PANet + three YOLO heads.

Layer for layer as AlexeyAB's ``cfg/yolov4.cfg`` (the neck and heads use leaky ReLU 0.1, the
backbone Mish). With ``in_channels=3``, ``num_classes=80`` and ``width=depth=1`` the network
has the reference's 64,363,101 trainable parameters (conv weights, conv biases of the three
output convs, BN scales and shifts; BN running statistics are buffers, not counted).

Raw output, one tensor per head, strides 8, 16, 32 (pixels of the network input)::

    (N, A * (5 + C), H / s, W / s)     A = 3 anchors per head, C = num_classes

with channel ``a * (5 + C) + k`` holding, for anchor ``a`` of that head, ``k = 0..3`` the box
terms ``tx, ty, tw, th``, ``k = 4`` the objectness logit and ``k = 5..`` the class logits, as
darknet lays them out. :func:`split_anchors` views a head output as ``(N, A, 5 + C, H, W)``.
Anchors, decoding and the loss live elsewhere; this module is ``nn.Module`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from calcsdk.training.models.cspdarknet53 import ConvBNAct, CSPDarknet53, scale_channels

STRIDES = (8, 16, 32)  # pixels of the network input per output cell, one per head
MAX_STRIDE = STRIDES[-1]
SPP_POOL_SIZES = (5, 9, 13)  # pixels, stride-1 max-pools of the SPP block


@dataclass(frozen=True)
class YOLOv4Config:
    num_classes: int = 2  # malignant=0, benign=1 (80 for the COCO reference network)
    in_channels: int = 1  # grayscale mammograms (3 for the reference network)
    width: float = 1.0  # channel multiplier; 1.0 is the reference network
    depth: float = 1.0  # residual-block-count multiplier; 1.0 is 1, 2, 8, 8, 4
    num_anchors: int = 3  # anchors per head

    def __post_init__(self) -> None:
        for name in ("num_classes", "in_channels", "num_anchors"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} should be >= 1, got {getattr(self, name)}")
        for name in ("width", "depth"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} should be > 0, got {getattr(self, name)}")

    @property
    def head_channels(self) -> int:
        """Channels of each raw head output: ``num_anchors * (5 + num_classes)``."""
        return self.num_anchors * (5 + self.num_classes)


def _conv_stack(c_in: int, c: int, num_convs: int) -> nn.Sequential:
    """Alternating 1x1 (``c``) and 3x3 (``2c``) leaky convs, starting and ending with 1x1."""
    layers, channels = [], c_in
    for i in range(num_convs):
        c_out, kernel = (c, 1) if i % 2 == 0 else (2 * c, 3)
        layers.append(ConvBNAct(channels, c_out, kernel, activation="leaky"))
        channels = c_out
    return nn.Sequential(*layers)


class SPP(nn.Module):
    """Spatial pyramid pooling: concat of stride-1 max-pools 13, 9, 5 and the input (cfg order)."""

    def __init__(self):
        super().__init__()
        self.pools = nn.ModuleList(
            nn.MaxPool2d(k, stride=1, padding=k // 2) for k in reversed(SPP_POOL_SIZES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([*(pool(x) for pool in self.pools), x], dim=1)


class PANet(nn.Module):
    """SPP + PANet neck: top-down then bottom-up path over the backbone's c3, c4, c5.

    Returns ``(p3, p4, p5)`` with ``(128w, 256w, 512w)`` channels at strides 8, 16, 32.
    """

    def __init__(self, c3: int, c4: int, c5: int, width: float):
        super().__init__()
        n128, n256, n512 = (scale_channels(c, width) for c in (128, 256, 512))
        # Top of the pyramid: three convs, SPP, three convs (cfg layers 105-116).
        self.pre_spp = _conv_stack(c5, n512, 3)
        self.spp = SPP()
        self.post_spp = _conv_stack(n512 * (len(SPP_POOL_SIZES) + 1), n512, 3)
        # Top-down path (cfg layers 117-136): reduce, upsample, join the lateral, five convs.
        self.reduce5 = ConvBNAct(n512, n256, 1, activation="leaky")
        self.lateral4 = ConvBNAct(c4, n256, 1, activation="leaky")
        self.top_down4 = _conv_stack(2 * n256, n256, 5)
        self.reduce4 = ConvBNAct(n256, n128, 1, activation="leaky")
        self.lateral3 = ConvBNAct(c3, n128, 1, activation="leaky")
        self.top_down3 = _conv_stack(2 * n128, n128, 5)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        # Bottom-up path (cfg layers 140-158): stride-2 conv, join, five convs.
        self.down3 = ConvBNAct(n128, n256, 3, stride=2, activation="leaky")
        self.bottom_up4 = _conv_stack(2 * n256, n256, 5)
        self.down4 = ConvBNAct(n256, n512, 3, stride=2, activation="leaky")
        self.bottom_up5 = _conv_stack(2 * n512, n512, 5)
        self.out_channels = (n128, n256, n512)

    def forward(
        self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n5 = self.post_spp(self.spp(self.pre_spp(c5)))
        # cfg ``route = -1, -3``: the lateral conv first, then the upsampled map.
        n4 = self.top_down4(torch.cat((self.lateral4(c4), self.upsample(self.reduce5(n5))), 1))
        p3 = self.top_down3(torch.cat((self.lateral3(c3), self.upsample(self.reduce4(n4))), 1))
        # cfg ``route = -1, -16`` / ``-1, -37``: the downsampled map first, then the top-down one.
        p4 = self.bottom_up4(torch.cat((self.down3(p3), n4), 1))
        p5 = self.bottom_up5(torch.cat((self.down4(p4), n5), 1))
        return p3, p4, p5


class YOLOHead(nn.Module):
    """3x3 leaky conv doubling the channels, then a 1x1 linear conv (with bias) to the raw output."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = ConvBNAct(c_in, 2 * c_in, 3, activation="leaky")
        self.predict = nn.Conv2d(2 * c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(self.conv(x))


class YOLOv4(nn.Module):
    """The assembled detector. ``forward(x)`` -> list of 3 raw head outputs (see module doc).

    Args:
        config: class count, input channels, width/depth multipliers, anchors per head.
    """

    def __init__(self, config: YOLOv4Config | None = None):
        super().__init__()
        self.config = config or YOLOv4Config()
        cfg = self.config
        self.backbone = CSPDarknet53(cfg.in_channels, cfg.width, cfg.depth)
        self.neck = PANet(*self.backbone.out_channels, width=cfg.width)
        self.heads = nn.ModuleList(YOLOHead(c, cfg.head_channels) for c in self.neck.out_channels)
        self.strides = STRIDES

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args: x float32 ``(N, in_channels, H, W)`` in [0, 1], H and W multiples of 32.

        Returns: ``[(N, A*(5+C), H/8, W/8), (N, A*(5+C), H/16, W/16), (N, A*(5+C), H/32, W/32)]``.
        """
        features = self.neck(*self.backbone(x))
        return [head(f) for head, f in zip(self.heads, features)]


def split_anchors(raw: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """View one raw head output ``(N, A*(5+C), H, W)`` as ``(N, A, 5+C, H, W)`` (no copy)."""
    n, channels, h, w = raw.shape
    if channels % num_anchors:
        raise ValueError(f"{channels} channels do not split into {num_anchors} anchors")
    return raw.view(n, num_anchors, channels // num_anchors, h, w)


def check_yolo_input(x: torch.Tensor, config: YOLOv4Config) -> None:
    """Raise ``ValueError`` unless ``x`` is floating ``(N, in_channels, H, W)``, H, W % 32 == 0.

    Kept out of ``forward`` so that tracing and ONNX export see no Python-side shape checks.
    """
    if not torch.is_floating_point(x):
        raise ValueError(f"YOLOv4 input should be a floating tensor, got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[1] != config.in_channels:
        raise ValueError(
            f"YOLOv4 input should have shape (N, {config.in_channels}, H, W), got {tuple(x.shape)}"
        )
    height, width = x.shape[-2:]
    if height < MAX_STRIDE or width < MAX_STRIDE or height % MAX_STRIDE or width % MAX_STRIDE:
        raise ValueError(
            f"YOLOv4 input height and width should be positive multiples of {MAX_STRIDE} "
            f"pixels, got {height}x{width}"
        )
