"""k-means anchors with the IoU distance, box sizes in mm, conversion to network pixels."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.datasets import ImageRecord
from calcsdk.training.yolo.anchors import (
    anchors_to_network,
    box_sizes_mm,
    kmeans_anchors,
    mean_best_iou,
    wh_iou,
)

CENTRES = np.array([[w, w * r] for w, r in zip((2, 3, 4, 6, 8, 11, 15, 20, 28), (1, 2, 0.5) * 3)])


def _clustered_sizes(seed: int = 0, per_cluster: int = 30) -> np.ndarray:
    rng = np.random.default_rng(seed)
    jitter = rng.uniform(0.95, 1.05, size=(len(CENTRES) * per_cluster, 2))
    return np.repeat(CENTRES, per_cluster, axis=0) * jitter


def test_recovers_well_separated_sizes_sorted_by_area():
    anchors = kmeans_anchors(_clustered_sizes(), 9, seed=1)
    area = anchors[:, 0] * anchors[:, 1]
    assert np.all(np.diff(area) > 0)
    expected = CENTRES[np.argsort(CENTRES[:, 0] * CENTRES[:, 1])]
    np.testing.assert_allclose(anchors, expected, rtol=0.05)
    assert mean_best_iou(_clustered_sizes(), anchors) > 0.9


def test_seeded_and_deterministic():
    sizes = np.random.default_rng(5).uniform(1, 30, size=(200, 2))
    np.testing.assert_array_equal(kmeans_anchors(sizes, seed=3), kmeans_anchors(sizes, seed=3))
    assert mean_best_iou(sizes, kmeans_anchors(sizes)) > mean_best_iou(sizes, CENTRES[[0]])


@pytest.mark.parametrize(
    ("sizes", "k", "message"),
    [
        (np.ones((20, 2)), 9, "distinct"),  # one distinct size
        (np.zeros((0, 2)), 9, "distinct"),
        (np.ones((20, 3)), 9, "shape"),
        (np.r_[np.ones((10, 2)), [[0.0, 1.0]]], 2, "> 0"),
        (np.r_[np.ones((10, 2)), [[np.inf, 1.0]]], 2, "> 0"),
    ],
)
def test_bad_sizes_raise(sizes, k, message):
    with pytest.raises(ValueError, match=message):
        kmeans_anchors(sizes, k)


def test_wh_iou_table():
    iou = wh_iou(np.array([[2.0, 2.0], [4.0, 1.0]]), np.array([[2.0, 2.0], [1.0, 4.0]]))
    np.testing.assert_allclose(iou, [[1.0, 2 / 6], [2 / 6, 1 / 7]])


def test_box_sizes_use_column_spacing_for_width():
    records = [
        ImageRecord("a.png", [[0, 0, 10, 20]], [0], spacing_mm=(0.05, 0.1)),
        ImageRecord("b.png", np.zeros((0, 4)), [], spacing_mm=(0.1, 0.1)),
        ImageRecord("c.png", [[5, 5, 9, 7]], [1], spacing_mm=None),
    ]
    sizes = box_sizes_mm(records, fallback_spacing_mm=0.2)
    np.testing.assert_allclose(sizes, [[1.0, 1.0], [0.8, 0.4]])
    with pytest.raises(ValueError, match=r"c\.png"):
        box_sizes_mm(records)
    assert box_sizes_mm([]).shape == (0, 2)


@pytest.mark.parametrize(
    ("spacing", "scale", "expected"), [(0.2, 1.0, [[5.0, 10.0]]), (0.1, 0.25, [[2.5, 5.0]])]
)
def test_anchors_to_network(spacing, scale, expected):
    result = anchors_to_network(np.array([[1.0, 2.0]]), spacing, scale)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected)


def test_anchors_to_network_rejects_bad_spacing():
    with pytest.raises(ValueError):
        anchors_to_network(np.ones((9, 2)), 0.0)
    assert np.isnan(mean_best_iou(np.zeros((0, 2)), CENTRES))
