"""Foreground-biased epoch order (R-CNN fine-tuning batches)."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.classifier.sampling import epoch_order

BACKGROUND = 2


def _labels(foreground: int, background: int) -> np.ndarray:
    return np.array([0] * (foreground // 2) + [1] * (foreground - foreground // 2)
                    + [BACKGROUND] * background)  # fmt: skip


def test_foreground_share_and_length():
    labels = _labels(40, 560)  # 1 in 15 foreground, like the R-CNN samples
    order = epoch_order(labels, 0.25, BACKGROUND, np.random.default_rng(0))
    assert order.shape == (600,) and order.dtype == np.int64
    assert np.mean(labels[order] != BACKGROUND) == pytest.approx(0.25)
    # few foreground rows: each is repeated evenly (3 or 4 times for 150 draws of 40)
    counts = np.bincount(order, minlength=600)[:40]
    assert counts.min() >= 3 and counts.max() <= 4
    # background rows fill the rest without repeats
    assert np.bincount(order, minlength=600)[40:].max() == 1


def test_same_seed_same_order_and_epochs_differ():
    labels = _labels(30, 270)
    a = epoch_order(labels, 0.25, BACKGROUND, np.random.default_rng(7))
    b = epoch_order(labels, 0.25, BACKGROUND, np.random.default_rng(7))
    c = epoch_order(labels, 0.25, BACKGROUND, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_one_class_only_is_a_plain_permutation():
    labels = np.full(50, BACKGROUND)
    order = epoch_order(labels, 0.25, BACKGROUND, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(order), np.arange(50))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_fraction_outside_open_interval_raises(fraction):
    with pytest.raises(ValueError, match="foreground_fraction"):
        epoch_order(_labels(4, 4), fraction, BACKGROUND, np.random.default_rng(0))
