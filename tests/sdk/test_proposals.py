"""EdgeBoxes proposals on hand-made edge maps: configuration, filtering, and finding a cluster."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calcsdk.boxes import box_iou
from calcsdk.proposals import (
    ProposalConfig,
    edge_map,
    filter_proposals,
    mask_fraction,
    propose,
    speck_image,
)


def _breast_with_cluster(seed=0, spacing=0.1, size=(600, 500)):
    """Smooth tissue, noise and one 8 mm cluster of 0.3 mm specks; returns image01, mask, box."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = cv2.GaussianBlur(rng.random(size).astype(np.float32), (0, 0), 12) * 0.3 + 0.3
    img += rng.normal(0, 0.01, size).astype(np.float32)
    mask = np.zeros(size, np.uint8)
    cv2.ellipse(mask, (0, h // 2), (int(w * 0.9), int(h * 0.45)), 0, -90, 90, 1, -1)
    cx, cy, r = 220, 300, int(4 / spacing)
    pts = rng.integers(-r, r, size=(14, 2))
    for dx, dy in pts:
        cv2.circle(img, (cx + int(dx), cy + int(dy)), 2, 1.0, -1)
    box = np.array(
        [
            cx + pts[:, 0].min() - 4,
            cy + pts[:, 1].min() - 4,
            cx + pts[:, 0].max() + 5,
            cy + pts[:, 1].max() + 5,
        ],
        np.float32,
    )
    img = np.clip(img * mask, 0, 1).astype(np.float32)
    return img, mask.astype(bool), box


def test_config_round_trip_and_unknown_keys():
    cfg = ProposalConfig(max_boxes=10, speck_sigmas_mm=None)
    assert ProposalConfig.from_dict(cfg.to_dict()) == cfg
    assert ProposalConfig.from_dict(None) == ProposalConfig()
    with pytest.raises(ValueError, match=r"unknown proposal parameter\(s\) \['max_box'\]"):
        ProposalConfig.from_dict({"max_box": 3})


def test_edge_map_is_thin_normalised_and_oriented():
    img = np.zeros((64, 64), np.float32)
    img[:, 32:] = 1.0  # one vertical step edge
    edges, orientation = edge_map(img, sigma_px=1.0)
    assert edges.dtype == np.float32 and edges.max() == pytest.approx(1.0)
    assert 0 <= orientation.min() and orientation.max() < np.pi
    row = edges[32]
    assert np.count_nonzero(row > 0.5) <= 2  # non-maximum suppression leaves a thin line
    assert abs(int(np.argmax(row)) - 31.5) <= 1.5
    assert np.allclose(orientation[32, 30:34][row[30:34] > 0.5], 0, atol=0.2)  # gradient along x


def test_mask_fraction_by_integral_image():
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    boxes = np.array([[0, 0, 5, 10], [5, 0, 10, 10], [2.5, 0, 7.5, 10], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(mask_fraction(boxes, mask), [1.0, 0.0, 0.5, 0.0], atol=0.11)


@pytest.mark.parametrize(
    ("box", "kept"),
    [
        ([10, 10, 110, 110], True),  # 10 mm inside the breast
        ([10, 10, 20, 20], False),  # 1 mm: below min_size_mm
        ([0, 0, 400, 400], False),  # 40 mm: above max_size_mm
        ([300, 10, 400, 110], False),  # outside the mask
    ],
)
def test_filter_by_size_in_mm_and_mask(box, kept):
    mask = np.zeros((500, 500), bool)
    mask[:, :250] = True
    boxes, _ = filter_proposals(
        np.array([box], np.float32), np.ones(1, np.float32), mask, 0.1, ProposalConfig()
    )
    assert len(boxes) == int(kept)


def test_speck_image_keeps_specks_and_drops_tissue():
    img, mask, box = _breast_with_cluster()
    specks = speck_image(img, mask, (1.0, 4.0), 99.5)
    inside = specks[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])]
    assert inside.max() == 1.0
    assert specks[50:150, 50:150].mean() < 0.05  # smooth tissue away from the cluster


PLAIN_EDGES = {
    "speck_sigmas_mm": None,
    "density_sigma_mm": None,
    "spacing_mm": 0.2,
    "edge_sigma_px": 1.5,
}
SPECK_EDGES = {"density_sigma_mm": None, "spacing_mm": 0.2, "edge_sigma_px": 1.5}


@pytest.mark.parametrize(
    "overrides", [{}, SPECK_EDGES, PLAIN_EDGES], ids=["density", "specks", "plain"]
)
def test_propose_finds_the_cluster(overrides):
    img, mask, box = _breast_with_cluster()
    speck = overrides.get("speck_sigmas_mm", (0.1, 0.4))
    boxes, scores = propose(img, mask, 0.1, ProposalConfig(**overrides))
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and len(boxes) == len(scores)
    assert np.all(np.diff(scores) <= 0)  # sorted by score
    assert box_iou(box[None], boxes).max() >= (0.5 if speck else 0.3)
    sides = (boxes[:, 2:] - boxes[:, :2]) * 0.1
    assert sides.min() >= 3.0 - 1e-3 and sides.max() <= 25.0 + 1e-3


def test_propose_on_a_blank_image_returns_nothing():
    boxes, scores = propose(np.zeros((200, 200), np.float32), None, 0.1, ProposalConfig())
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_max_proposals_keeps_the_best_scoring():
    img, mask, _ = _breast_with_cluster()
    every, every_scores = propose(img, mask, 0.1, ProposalConfig(max_proposals=None))
    assert len(every) > 3
    few, few_scores = propose(img, mask, 0.1, ProposalConfig(max_proposals=3))
    np.testing.assert_array_equal(few, every[:3])
    np.testing.assert_array_equal(few_scores, every_scores[:3])
