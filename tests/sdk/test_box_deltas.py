"""R-CNN box-regression deltas: encoding and decoding invert each other, with clamped scales."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.boxes import MAX_LOG_SCALE, apply_box_deltas, encode_box_deltas


def test_encode_then_apply_recovers_the_targets():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 500, (50, 2))
    proposals = np.concatenate([corners, corners + rng.uniform(20, 100, (50, 2))], axis=1)
    targets = proposals + rng.normal(0, 4, (50, 4))
    deltas = encode_box_deltas(proposals, targets)
    assert deltas.shape == (50, 4) and deltas.dtype == np.float32
    np.testing.assert_allclose(apply_box_deltas(proposals, deltas), targets, atol=1e-3)


def test_known_deltas():
    box = np.array([[10, 20, 30, 60]], np.float32)  # centre (20, 40), size (20, 40)
    target = np.array([[20, 20, 60, 100]], np.float32)  # centre (40, 60), size (40, 80)
    np.testing.assert_allclose(
        encode_box_deltas(box, target), [[1.0, 0.5, np.log(2), np.log(2)]], rtol=1e-6
    )
    np.testing.assert_array_equal(apply_box_deltas(box, np.zeros((1, 4))), box)


def test_scales_are_clamped():
    box = np.array([[0, 0, 10, 10]], np.float32)
    grown = apply_box_deltas(box, [[0, 0, 50.0, -50.0]])
    side = np.exp(MAX_LOG_SCALE) * 10
    small = 10 / np.exp(MAX_LOG_SCALE)
    np.testing.assert_allclose(grown, [[5 - side / 2, 5 - small / 2, 5 + side / 2, 5 + small / 2]])


@pytest.mark.parametrize(
    ("boxes", "deltas", "match"),
    [
        (np.zeros((2, 4)), np.zeros((3, 4)), "shape"),
        (np.zeros((1, 4)), [[np.nan, 0, 0, 0]], "finite"),
    ],
)
def test_bad_deltas(boxes, deltas, match):
    with pytest.raises(ValueError, match=match):
        apply_box_deltas(boxes, deltas)


def test_encode_rejects_empty_boxes_and_length_mismatch():
    with pytest.raises(ValueError, match="positive width"):
        encode_box_deltas([[0, 0, 0, 5]], [[0, 0, 5, 5]])
    with pytest.raises(ValueError, match="1 proposals but 2 targets"):
        encode_box_deltas([[0, 0, 5, 5]], [[0, 0, 5, 5], [1, 1, 4, 4]])
