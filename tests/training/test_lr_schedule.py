"""The classifier's learning-rate schedules: pure functions of the global step."""

from __future__ import annotations

import itertools
import math

import pytest

from calcsdk.training.classifier.lr_schedule import LR_SCHEDULES, lr_factor


def test_constant_is_one_after_warmup():
    assert [lr_factor("constant", s, 10) for s in range(10)] == [1.0] * 10
    assert [lr_factor("constant", s, 10, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1, 1, 1]


def test_cosine_falls_from_one_to_near_zero():
    factors = [lr_factor("cosine", s, 100) for s in range(100)]
    assert factors[0] == 1.0
    assert all(a > b for a, b in itertools.pairwise(factors))
    assert factors[50] == pytest.approx(0.5)
    assert factors[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert lr_factor("cosine", 150, 100) == 0.0  # past the end: stays at the floor


def test_cosine_after_warmup_starts_at_the_base_rate():
    assert lr_factor("cosine", 4, 20, 5) == 1.0
    assert lr_factor("cosine", 5, 20, 5) == 1.0
    assert lr_factor("cosine", 5 + 15 // 2, 20, 5) < 0.6


@pytest.mark.parametrize(
    "args",
    [("linear", 0, 10, 0), ("cosine", -1, 10, 0), ("cosine", 0, 0, 0), ("constant", 0, 10, -1)],
)
def test_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        lr_factor(*args)


def test_every_schedule_is_named():
    assert set(LR_SCHEDULES) == {"constant", "cosine"}
