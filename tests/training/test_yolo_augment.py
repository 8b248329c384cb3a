"""YOLOv4 sample augmentation: flips, box clipping, mosaic quadrants, intensity jitter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calcsdk.training.yolo.augment import (
    augment_sample,
    clip_to_region,
    flip_sample,
    jitter_intensity,
    mosaic,
)
from calcsdk.training.yolo.config import YoloTrainConfig

BOX = np.array([[2.0, 4.0, 6.0, 12.0]], np.float32)


@pytest.mark.parametrize(
    ("horizontal", "vertical", "expected"),
    [
        (False, False, [2, 4, 6, 12]),
        (True, False, [26, 4, 30, 12]),
        (False, True, [2, 20, 6, 28]),
        (True, True, [26, 20, 30, 28]),
    ],
)
def test_flip_moves_pixels_and_boxes_together(horizontal, vertical, expected):
    image = np.zeros((32, 32), np.float32)
    image[4:12, 2:6] = 1.0
    flipped, boxes = flip_sample(image, BOX, horizontal, vertical)
    np.testing.assert_array_equal(boxes, [expected])
    x1, y1, x2, y2 = (int(v) for v in expected)
    assert flipped[y1:y2, x1:x2].all() and flipped.sum() == 32


def test_flip_of_no_boxes():
    _, boxes = flip_sample(np.zeros((8, 8), np.float32), np.zeros((0, 4)), True, True)
    assert boxes.shape == (0, 4)


@pytest.mark.parametrize(
    ("region", "fraction", "kept"),
    [
        ((0, 0, 32, 32), 0.6, [[2, 4, 6, 12]]),
        ((0, 0, 4, 32), 0.5, [[2, 4, 4, 12]]),  # half visible: kept at 0.5
        ((0, 0, 4, 32), 0.6, []),  # ...dropped at 0.6
        ((10, 0, 32, 32), 0.0, []),  # not visible at all: always dropped
    ],
)
def test_clip_to_region(region, fraction, kept):
    boxes, labels = clip_to_region(BOX, [1], region, fraction)
    np.testing.assert_array_equal(boxes, np.array(kept, np.float32).reshape(-1, 4))
    assert labels.tolist() == [1] * len(kept) and labels.dtype == np.int64


def test_mosaic_takes_each_quadrant_from_its_sample():
    size = 32
    samples = []
    for value in (0.1, 0.2, 0.3, 0.4):
        boxes = np.array([[0, 0, 32, 32], [14, 14, 18, 18]], np.float32)
        samples.append((np.full((size, size), value, np.float32), boxes, np.array([0, 1])))
    rng = np.random.default_rng(0)
    image, boxes, labels = mosaic(samples, rng, 0.0)
    cx, cy = np.random.default_rng(0).integers(8, 25, size=2)
    assert image[0, 0] == pytest.approx(0.1) and image[-1, -1] == pytest.approx(0.4)
    assert image[0, -1] == pytest.approx(0.2) and image[-1, 0] == pytest.approx(0.3)
    assert image[cy - 1, cx - 1] == pytest.approx(0.1) and image[cy, cx] == pytest.approx(0.4)
    # the full-size boxes become the four quadrants
    quadrants = boxes[labels == 0]
    np.testing.assert_array_equal(
        quadrants, [[0, 0, cx, cy], [cx, 0, 32, cy], [0, cy, cx, 32], [cx, cy, 32, 32]]
    )
    assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()


def test_mosaic_needs_four_samples():
    with pytest.raises(ValueError, match="4 samples"):
        mosaic([(np.zeros((8, 8), np.float32), np.zeros((0, 4)), np.zeros(0))] * 3, None, 0.5)


def test_jitter_is_seeded_bounded_and_can_be_identity():
    image = np.random.default_rng(1).random((16, 16), dtype=np.float32)
    config = YoloTrainConfig()
    a = jitter_intensity(image, np.random.default_rng(7), config)
    b = jitter_intensity(image, np.random.default_rng(7), config)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    assert not np.allclose(a, image)
    identity = dataclasses.replace(
        config, gamma_range=(1, 1), contrast_range=(1, 1), brightness_shift=0, noise_std=0
    )
    np.testing.assert_allclose(
        jitter_intensity(image, np.random.default_rng(7), identity), image, atol=1e-6
    )


def test_augment_sample_keeps_labels_and_box_count():
    image = np.zeros((32, 32), np.float32)
    out, boxes, labels = augment_sample(
        (image, BOX, np.array([1])), np.random.default_rng(3), YoloTrainConfig()
    )
    assert out.shape == (32, 32) and boxes.shape == (1, 4) and labels.tolist() == [1]
    w, h = boxes[0, 2] - boxes[0, 0], boxes[0, 3] - boxes[0, 1]
    assert (w, h) == (4, 8)  # flips never rescale
