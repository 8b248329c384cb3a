"""The shared post-processing, step by step: threshold, empty boxes, class-wise NMS, top-k,
back to original pixels."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.prepare import WorkingImage

NAMES = ("malignant", "benign")


def _working(scale=(0.5, 0.5), original_shape=(400, 300)) -> WorkingImage:
    h, w = round(original_shape[0] * scale[0]), round(original_shape[1] * scale[1])
    return WorkingImage(
        image01=np.zeros((h, w), np.float32),
        mask=np.ones((h, w), bool),
        spacing_mm=0.2,
        scale=scale,
        original_shape=original_shape,
    )


BOXES = np.array(
    [
        [10, 10, 30, 30],  # 0: malignant 0.9
        [11, 11, 31, 31],  # 1: overlaps 0 (IoU ~0.8), malignant 0.8 -> suppressed
        [12, 12, 32, 32],  # 2: overlaps 0 but benign 0.7 -> kept (class-wise NMS)
        [100, 100, 120, 120],  # 3: malignant 0.4 -> below 0.5
        [50, 50, 50.5, 70],  # 4: 0.5 px wide -> removed as empty
    ],
    np.float32,
)
SCORES = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.7], [0.4, 0.1], [0.95, 0.0]], np.float32)


def test_steps_in_order():
    det = postprocess(BOXES, SCORES, NAMES, _working(), PostprocessConfig())
    assert det.label_names == ("malignant", "benign")
    np.testing.assert_allclose(det.scores, [0.9, 0.7])
    # working pixels at scale 0.5 -> original pixels x2
    np.testing.assert_allclose(det.boxes, [[20, 20, 60, 60], [24, 24, 64, 64]])


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(None, 2), (0.0, 3), (0.75, 1), (0.95, 0)],
)
def test_confidence_override(confidence, expected):
    det = postprocess(BOXES, SCORES, NAMES, _working(), PostprocessConfig(), confidence)
    assert len(det) == expected


def test_top_k_and_clipping():
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [140, 190, 170, 230]], np.float32)
    scores = np.array([[0.6, 0], [0.9, 0], [0.8, 0]], np.float32)
    det = postprocess(boxes, scores, NAMES, _working(), PostprocessConfig(max_detections=2))
    np.testing.assert_allclose(det.scores, [0.9, 0.8])
    assert det.boxes[:, 2].max() <= 300 and det.boxes[:, 3].max() <= 400  # clipped


def test_empty():
    det = postprocess(np.zeros((0, 4)), np.zeros((0, 2)), NAMES, _working(), PostprocessConfig())
    assert len(det) == 0 and det.boxes.shape == (0, 4)


def test_box_voting_moves_kept_boxes_to_the_weighted_mean():
    config = PostprocessConfig(vote_iou=0.5)
    det = postprocess(BOXES, SCORES, NAMES, _working(), config)
    np.testing.assert_allclose(det.scores, [0.9, 0.7])  # scores and the kept set unchanged
    # malignant box 0 votes with box 1 (IoU 0.82, w 0.8) and box 2 (IoU 0.68, w 0.2); the
    # 0.4 box far away and the empty box never vote
    malignant = (0.9 * BOXES[0] + 0.8 * BOXES[1] + 0.2 * BOXES[2]) / 1.9
    benign = (0.1 * BOXES[0] + 0.2 * BOXES[1] + 0.7 * BOXES[2]) / 1.0
    np.testing.assert_allclose(det.boxes, 2 * np.stack([malignant, benign]), rtol=1e-5)


def test_box_voting_is_independent_of_the_confidence_threshold():
    config = PostprocessConfig(vote_iou=0.3)
    all_boxes = postprocess(BOXES, SCORES, NAMES, _working(), config, confidence=0.0)
    confident = postprocess(BOXES, SCORES, NAMES, _working(), config)  # 0.5
    kept = all_boxes.scores >= 0.5
    np.testing.assert_allclose(confident.boxes, all_boxes.boxes[kept])
