"""Precise BatchNorm: statistics re-estimated for the current weights, nothing else touched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from calcsdk.training.yolo.precise_bn import recalibrate_batchnorm


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, padding=1, bias=False),
        nn.BatchNorm2d(3, momentum=0.03),
    )


def _batches(count: int, seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [3.0 + 2.0 * torch.randn(4, 1, 32, 32, generator=generator) for _ in range(count)]


def test_stale_statistics_are_replaced_so_eval_matches_batch_statistics():
    net = _net().eval()
    for layer in (net[1], net[4]):  # statistics that do not match the weights at all
        layer.running_mean.fill_(100.0)
        layer.running_var.fill_(1e-4)
    (batch,) = _batches(1)
    with torch.no_grad():
        stale = net(batch)
        reference = net.train()(batch)  # batch statistics
    net.eval()
    assert (stale - reference).abs().max() > 100
    weights = [p.clone() for p in net.parameters()]
    assert recalibrate_batchnorm(net, [batch]) == 1
    assert not net.training and net[1].momentum == 0.1 and net[4].momentum == 0.03
    for before, after in zip(weights, net.parameters(), strict=True):
        assert torch.equal(before, after)
    with torch.no_grad():
        # eval mode divides by the unbiased variance (n = 4 * 32 * 32 values): ~1e-4 apart
        torch.testing.assert_close(net(batch), reference, rtol=0, atol=2e-3)


def test_several_batches_weigh_equally_and_the_train_mode_is_restored():
    net = _net().train()
    batches = _batches(3)
    assert recalibrate_batchnorm(net, batches) == 3
    assert net.training
    with torch.no_grad():
        means = [net[0](x).mean((0, 2, 3)) for x in batches]
    torch.testing.assert_close(net[1].running_mean, torch.stack(means).mean(0))
    assert int(net[1].num_batches_tracked) == 3


def test_no_batch_keeps_the_statistics_and_a_nan_batch_restores_them():
    net = _net()
    net[1].running_mean.fill_(7.0)
    assert recalibrate_batchnorm(net, []) == 0
    assert torch.all(net[1].running_mean == 7.0)
    bad = _batches(2)
    bad[1][0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="batch 1 holds NaN"):
        recalibrate_batchnorm(net, bad)
    assert torch.all(net[1].running_mean == 7.0) and net[1].momentum == 0.1
    assert recalibrate_batchnorm(nn.Linear(2, 2), _batches(1)) == 0  # no BatchNorm layer
