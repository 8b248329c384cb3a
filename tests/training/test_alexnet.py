"""The paper's AlexNet: layer stack, parameter count, fc7 features, width scaling, validation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from calcsdk.training.models import AlexNet, AlexNetConfig, check_alexnet_input
from calcsdk.training.models.conv_lrn import ConvLRN

TINY = AlexNetConfig(width=1 / 16)


@pytest.fixture(scope="module")
def paper_net() -> AlexNet:
    return AlexNet().eval()


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # The paper's net: 1 gray channel, 3 classes, groups=2 on conv2/4/5.
        (AlexNetConfig(), 56_857_283),
        # Caffe's bvlc_alexnet (3 colour channels, 1000 ImageNet classes) is 60,965,224.
        (AlexNetConfig(in_channels=3, num_classes=1000), 60_965_224),
    ],
)
def test_parameter_count_matches_reference(config, expected):
    assert _n_params(AlexNet(config)) == expected


def test_layer_stack_is_krizhevsky(paper_net):
    features = paper_net.features
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.kernel_size for c in convs] == [(11, 11), (5, 5), (3, 3), (3, 3), (3, 3)]
    assert [c.stride for c in convs] == [(4, 4), (1, 1), (1, 1), (1, 1), (1, 1)]
    assert [c.padding for c in convs] == [(0, 0), (2, 2), (1, 1), (1, 1), (1, 1)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert convs[0].in_channels == 1
    norms = [m for m in features if isinstance(m, ConvLRN)]
    assert [(n.size, n.alpha, n.beta, n.k) for n in norms] == [(5, 1e-4, 0.75, 2.0)] * 2
    assert [n.weight.shape[0] for n in norms] == [96, 256]
    names = [name for name, _ in features.named_children()]
    # LRN after the first two ReLUs, then max-pool; pool after conv1, conv2 and conv5 only.
    assert names.index("norm1") < names.index("pool1") < names.index("conv2")
    assert names.index("norm2") < names.index("pool2") < names.index("conv3")
    assert [n for n in names if n.startswith("pool")] == ["pool1", "pool2", "pool5"]
    model = paper_net
    assert [model.fc6_to_fc7.fc6.in_features, model.fc6_to_fc7.fc6.out_features] == [9216, 4096]
    assert model.last_layer is model.fc8 and model.fc8.out_features == 3


@pytest.mark.parametrize("batch", [0, 1, 3])
def test_full_width_shapes(paper_net, batch):
    model = paper_net
    x = torch.rand(batch, 1, 227, 227)
    with torch.no_grad():
        assert model(x).shape == (batch, 3)
        assert model.features_fc7(x).shape == (batch, 4096)


@pytest.mark.parametrize(
    ("width", "conv_widths", "fc7_dim"),
    [
        (1.0, (96, 256, 384, 384, 256), 4096),
        (0.5, (48, 128, 192, 192, 128), 2048),
        (1 / 16, (6, 16, 24, 24, 16), 256),
        (1e-3, (2, 2, 2, 2, 2), 4),  # degenerate: every conv keeps 2 channels for its groups
    ],
)
def test_width_scales_every_layer(width, conv_widths, fc7_dim):
    config = AlexNetConfig(width=width)
    model = AlexNet(config).eval()
    assert config.conv_widths == conv_widths
    assert model.fc7_dim == fc7_dim
    with torch.no_grad():
        assert model.features_fc7(torch.rand(2, 1, 227, 227)).shape == (2, fc7_dim)


def test_fc7_is_the_input_of_the_last_layer():
    torch.manual_seed(0)
    model = AlexNet(TINY).eval()
    x = torch.rand(4, 1, 227, 227)
    with torch.no_grad():
        fc7 = model.features_fc7(x)
        assert (fc7 >= 0).all()  # taken after fc7's ReLU
        torch.testing.assert_close(model(x), model.fc8(fc7))


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = AlexNet(TINY)
    x = torch.rand(2, 1, 227, 227)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        assert torch.equal(model(x), model(x))


def test_three_channel_variant():
    model = AlexNet(AlexNetConfig(width=1 / 16, in_channels=3, num_classes=5)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 227, 227)).shape == (2, 5)


@pytest.mark.parametrize(
    "kwargs",
    [{"width": 0.0}, {"width": -1.0}, {"num_classes": 0}, {"in_channels": 0}, {"dropout": 1.0}],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        AlexNetConfig(**kwargs)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.zeros(2, 1, 227, 227, dtype=torch.uint8), "floating"),
        (torch.zeros(2, 227, 227), "shape"),
        (torch.zeros(2, 3, 227, 227), "shape"),
        (torch.zeros(2, 1, 224, 224), "shape"),
    ],
)
def test_check_input_rejects(x, message):
    with pytest.raises(ValueError, match=message):
        check_alexnet_input(x, AlexNetConfig())


@pytest.mark.parametrize("batch", [0, 2])
def test_check_input_accepts(batch):
    check_alexnet_input(torch.zeros(batch, 1, 227, 227), AlexNetConfig())


def test_exports_with_a_dynamic_batch():
    # torch.export is what the ONNX exporter (dynamo=True) traces with: no data-dependent
    # control flow, and the batch stays symbolic, so a graph traced at N=2 runs at N=5.
    model = AlexNet(TINY).eval()
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        model, (torch.rand(2, 1, 227, 227),), dynamic_shapes={"x": {0: batch}}
    )
    x = torch.rand(5, 1, 227, 227)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))
