"""EMA of the weights: ramped decay, float buffers averaged, integer buffers copied, resumable."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from calcsdk.training.yolo.ema import ModelEMA


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))


@pytest.mark.parametrize(("updates", "ramp"), [(1, 2000.0), (2000, 2000.0), (10, 1.0)])
def test_decay_ramps_up(updates, ramp):
    ema = ModelEMA(_model(), decay=0.9, ramp=ramp, updates=updates)
    assert ema.current_decay() == pytest.approx(0.9 * (1 - math.exp(-updates / ramp)))


def test_update_averages_floats_and_copies_integers():
    model = _model()
    ema = ModelEMA(model, decay=0.5, ramp=1e-9)  # d = 0.5 from the first update
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(2.0)
    model[1].num_batches_tracked += 7
    ema.update(model)
    torch.testing.assert_close(ema.module[0].weight, start + 1.0)
    assert int(ema.module[1].num_batches_tracked) == 7
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert not ema.module.training


def test_state_round_trip():
    model = _model()
    ema = ModelEMA(model, decay=0.9)
    ema.update(model)
    other = ModelEMA(_model(), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1
    for a, b in zip(other.module.state_dict().values(), ema.module.state_dict().values()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_bad_decay_raises(decay):
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(_model(), decay=decay)
