"""YOLOv4 (CSPDarknet53 + SPP + PANet + 3 heads): reference size, structure, output shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from calcsdk.training.models import (
    CSPDarknet53,
    YOLOv4,
    YOLOv4Config,
    check_yolo_input,
    split_anchors,
)

TINY = {"width": 1 / 16, "depth": 1 / 8}


@pytest.fixture(scope="module")
def reference_yolov4() -> YOLOv4:
    # AlexeyAB darknet cfg/yolov4.cfg: 608x608, 3 channels, 80 COCO classes.
    return YOLOv4(YOLOv4Config(num_classes=80, in_channels=3))


def test_parameter_count_matches_darknet_reference(reference_yolov4):
    # 64,363,101: the trainable parameters of the reference yolov4 (conv weights, the three
    # output convs' biases, BN scales and shifts); BN running statistics are buffers.
    trainable = sum(p.numel() for p in reference_yolov4.parameters())
    assert trainable == 64_363_101
    running = sum(b.numel() for n, b in reference_yolov4.named_buffers() if "running_" in n)
    assert running == 66_304  # 2 x 33,152 BN channels


def test_layer_counts_match_cfg(reference_yolov4):
    convs = [m for m in reference_yolov4.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 110  # the cfg's [convolutional] sections
    backbone_acts = {type(m) for m in reference_yolov4.backbone.modules() if _is_act(m)}
    neck_acts = {type(m) for m in reference_yolov4.neck.modules() if _is_act(m)}
    assert backbone_acts == {nn.Mish}
    assert neck_acts == {nn.LeakyReLU}
    slopes = {m.negative_slope for m in reference_yolov4.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.1}
    pools = [m.kernel_size for m in reference_yolov4.neck.spp.pools]
    assert sorted(pools) == [5, 9, 13]
    assert [h.predict.out_channels for h in reference_yolov4.heads] == [255, 255, 255]


def _is_act(module: nn.Module) -> bool:
    return isinstance(module, nn.Mish | nn.LeakyReLU | nn.ReLU | nn.SiLU)


@pytest.mark.parametrize(
    ("depth", "blocks"),
    [(1.0, [1, 2, 8, 8, 4]), (0.5, [1, 1, 4, 4, 2]), (1 / 8, [1, 1, 1, 1, 1])],
)
def test_depth_scales_residual_blocks(depth, blocks):
    backbone = CSPDarknet53(width=1 / 16, depth=depth)
    assert [len(stage.blocks) for stage in backbone.stages] == blocks


@pytest.mark.parametrize(
    ("height", "width", "batch"),
    [(608, 608, 1), (416, 416, 2), (320, 256, 1), (32, 32, 1), (64, 64, 0)],
)
def test_tiny_output_shapes(height, width, batch):
    config = YOLOv4Config(num_classes=2, in_channels=1, **TINY)
    model = YOLOv4(config).eval()
    with torch.no_grad():
        outputs = model(torch.rand(batch, 1, height, width))
    assert [tuple(o.shape) for o in outputs] == [
        (batch, 3 * (5 + 2), height // s, width // s) for s in (8, 16, 32)
    ]


def test_full_size_forward_at_256():
    model = YOLOv4(YOLOv4Config(num_classes=2, in_channels=1)).eval()
    with torch.no_grad():
        outputs = model(torch.rand(1, 1, 256, 256))
    assert [tuple(o.shape) for o in outputs] == [(1, 21, 32, 32), (1, 21, 16, 16), (1, 21, 8, 8)]
    assert all(torch.isfinite(o).all() for o in outputs)


def test_split_anchors_follows_darknet_channel_layout():
    num_anchors, num_classes = 3, 2
    per_anchor = 5 + num_classes
    raw = torch.arange(num_anchors * per_anchor, dtype=torch.float32).view(1, -1, 1, 1)
    raw = raw.expand(2, -1, 4, 5).contiguous()
    split = split_anchors(raw, num_anchors)
    assert split.shape == (2, num_anchors, per_anchor, 4, 5)
    for a in range(num_anchors):
        for k in range(per_anchor):  # k: 0-3 box, 4 objectness, 5.. classes
            assert (split[:, a, k] == a * per_anchor + k).all()


def test_split_anchors_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="anchors"):
        split_anchors(torch.zeros(1, 20, 2, 2), 3)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.zeros(1, 1, 64, 64, dtype=torch.int64), "floating"),
        (torch.zeros(1, 64, 64), "shape"),
        (torch.zeros(1, 3, 64, 64), "shape"),
        (torch.zeros(1, 1, 64, 48), "multiples"),
        (torch.zeros(1, 1, 0, 0), "multiples"),
    ],
)
def test_check_input_rejects(x, message):
    with pytest.raises(ValueError, match=message):
        check_yolo_input(x, YOLOv4Config())


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (0, 1, 608, 416)])
def test_check_input_accepts(shape):
    check_yolo_input(torch.zeros(shape), YOLOv4Config())


@pytest.mark.parametrize(
    "kwargs",
    [{"num_classes": 0}, {"in_channels": 0}, {"num_anchors": 0}, {"width": 0.0}, {"depth": -1.0}],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        YOLOv4Config(**kwargs)


def test_head_channels():
    assert YOLOv4Config(num_classes=80).head_channels == 255
    assert YOLOv4Config(num_classes=2, num_anchors=4).head_channels == 28
