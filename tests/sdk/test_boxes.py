"""Box operations: hand-computed tables, plain-Python references on random boxes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.boxes import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes,
    nms,
    remove_small_boxes,
    scale_boxes,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def random_boxes(seed: int, n: int, span: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, span, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, span / 3, (n, 2))], axis=1).astype(np.float32)


def plain_iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def plain_nms(boxes, scores, threshold) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    keep = []
    for i in order:
        if all(plain_iou(boxes[i].tolist(), boxes[k].tolist()) <= threshold for k in keep):
            keep.append(i)
    return keep


# --- area and IoU ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        (np.zeros((0, 4)), []),
        ([[0, 0, 10, 5]], [50.0]),  # ints promoted
        ([[1.5, 2.0, 4.0, 3.0]], [2.5]),
        ([[5, 5, 5, 9], [5, 5, 3, 9]], [0.0, 0.0]),  # zero width; reversed corners
    ],
)
def test_box_area(boxes, expected):
    area = box_area(np.asarray(boxes))
    assert area.dtype == np.float32 and area.shape == (len(expected),)
    np.testing.assert_allclose(area, expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], 1.0),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], 0.0),
        ([[0, 0, 10, 10]], [[10, 0, 20, 10]], 0.0),  # touching: x2 is exclusive
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], 50 / 150),
        ([[0, 0, 10, 10]], [[0, 0, 5, 5]], 0.25),  # contained
        ([[3, 3, 3, 3]], [[3, 3, 3, 3]], 0.0),  # zero union
    ],
)
def test_box_iou_by_hand(a, b, expected):
    iou = box_iou(np.array(a), np.array(b))
    assert iou.dtype == np.float32 and iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize(("n", "m"), [(0, 0), (0, 3), (3, 0), (7, 5)])
def test_box_iou_matches_plain_reference(n, m):
    a, b = random_boxes(n, n), random_boxes(100 + m, m)
    iou = box_iou(a, b)
    assert iou.shape == (n, m)
    expected = [[plain_iou(x.tolist(), y.tolist()) for y in b] for x in a]
    np.testing.assert_allclose(iou, np.asarray(expected).reshape(n, m), atol=1e-6)
    assert box_iou(a, b, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    ("boxes", "error"),
    [
        (np.zeros((3, 5)), ValueError),
        (np.zeros(4), ValueError),  # one box must still be (1, 4)
        (np.array([[0, 0, np.nan, 1]]), ValueError),
        (np.array([[0, 0, np.inf, 1]]), ValueError),
        (np.array([["0", "0", "1", "1"]]), TypeError),
        (np.ones((1, 4), bool), TypeError),
    ],
)
def test_box_ops_reject_bad_arrays(boxes, error):
    with pytest.raises(error):
        box_iou(boxes, np.zeros((0, 4)))
    with pytest.raises(error):
        box_area(boxes)


# --- clip, filter, scale, convert --------------------------------------------------------
@pytest.mark.parametrize(
    ("boxes", "height", "width", "expected"),
    [
        (np.zeros((0, 4)), 10, 20, np.zeros((0, 4))),
        ([[-5, -1, 25, 8]], 10, 20, [[0, 0, 20, 8]]),
        ([[2, 3, 4, 5]], 10, 20, [[2, 3, 4, 5]]),
        ([[30, 12, 40, 15]], 10, 20, [[20, 10, 20, 10]]),  # outside: degenerate
    ],
)
def test_clip_boxes(boxes, height, width, expected):
    clipped = clip_boxes(np.asarray(boxes, float), height, width)
    assert clipped.dtype == np.float32
    np.testing.assert_array_equal(clipped, np.asarray(expected, np.float32).reshape(-1, 4))


@pytest.mark.parametrize(("height", "width"), [(0, 10), (10, -1), (np.nan, 10)])
def test_clip_boxes_rejects_bad_image_size(height, width):
    with pytest.raises(ValueError):
        clip_boxes(np.zeros((1, 4)), height, width)


@pytest.mark.parametrize(
    ("boxes", "min_size", "expected"),
    [
        (np.zeros((0, 4)), 1.0, []),
        ([[0, 0, 10, 10], [0, 0, 0.5, 10], [0, 0, 10, 0.5], [0, 0, 1, 1]], 1.0, [0, 3]),
        ([[0, 0, 0, 0], [5, 5, 4, 6]], 0.0, [0]),  # min_size 0 drops only negative sizes
    ],
)
def test_remove_small_boxes(boxes, min_size, expected):
    keep = remove_small_boxes(np.asarray(boxes, float), min_size)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, expected)


def test_remove_small_boxes_rejects_negative_size():
    with pytest.raises(ValueError):
        remove_small_boxes(np.zeros((1, 4)), -1)


@pytest.mark.parametrize(
    ("boxes", "sx", "sy", "expected"),
    [
        (np.zeros((0, 4)), 2.0, 3.0, np.zeros((0, 4))),
        ([[1, 2, 3, 4]], 2.0, 3.0, [[2, 6, 6, 12]]),
        ([[10, 20, 30, 40]], 0.5, 0.25, [[5, 5, 15, 10]]),
    ],
)
def test_scale_boxes(boxes, sx, sy, expected):
    scaled = scale_boxes(np.asarray(boxes, float), sx, sy)
    np.testing.assert_allclose(scaled, np.asarray(expected).reshape(-1, 4))
    np.testing.assert_allclose(
        scale_boxes(scaled, 1 / sx, 1 / sy), np.asarray(boxes).reshape(-1, 4), rtol=1e-6
    )


@pytest.mark.parametrize(("sx", "sy"), [(0, 1), (1, -2), (np.inf, 1)])
def test_scale_boxes_rejects_bad_factors(sx, sy):
    with pytest.raises(ValueError):
        scale_boxes(np.ones((1, 4)), sx, sy)


@pytest.mark.parametrize(
    ("xyxy", "xywh"),
    [
        (np.zeros((0, 4)), np.zeros((0, 4))),
        ([[1, 2, 4, 8]], [[1, 2, 3, 6]]),
        ([[0.5, 0.25, 10.5, 3.25], [7, 7, 8, 8]], [[0.5, 0.25, 10, 3], [7, 7, 1, 1]]),
    ],
)
def test_xywh_conversions(xyxy, xywh):
    np.testing.assert_allclose(
        xyxy_to_xywh(np.asarray(xyxy, float)), np.asarray(xywh).reshape(-1, 4)
    )
    np.testing.assert_allclose(
        xywh_to_xyxy(np.asarray(xywh, float)), np.asarray(xyxy).reshape(-1, 4)
    )
    assert xywh_to_xyxy(np.asarray(xywh, float)).dtype == np.float32


# --- NMS ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("boxes", "scores", "threshold", "expected"),
    [
        (np.zeros((0, 4)), [], 0.5, []),
        ([[0, 0, 10, 10]], [0.3], 0.5, [0]),
        # sorted by decreasing score; the overlapping lower box goes
        ([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], [0.8, 0.9, 0.7], 0.5, [1, 2]),
        # equal scores: the lower index wins and is listed first
        ([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], [0.5, 0.5, 0.5], 0.5, [0, 2]),
        # IoU exactly at the threshold is kept (only IoU > threshold suppresses)
        ([[0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.8], 1 / 3, [0, 1]),
        ([[0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.8], 0.3, [0]),
        # a suppressed box does not suppress others (chain)
        ([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], [0.9, 0.8, 0.7], 0.4, [0, 2]),
    ],
)
def test_nms_by_hand(boxes, scores, threshold, expected):
    keep = nms(np.asarray(boxes, float), np.asarray(scores), threshold)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, expected)


@pytest.mark.parametrize(("seed", "threshold"), [(0, 0.3), (1, 0.5), (2, 0.7), (3, 0.0), (4, 1.0)])
def test_nms_matches_plain_reference(seed, threshold):
    boxes = random_boxes(seed, 60, span=60)
    scores = np.round(np.random.default_rng(seed).random(60), 1)  # many ties
    np.testing.assert_array_equal(
        nms(boxes, scores, threshold), plain_nms(boxes, scores, threshold)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_nms_is_nms_per_class(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(seed, 50, span=60) - 10  # negative coordinates too
    scores, labels = np.round(rng.random(50), 1), rng.integers(3, 6, 50)
    expected = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        expected += members[plain_nms(boxes[members], scores[members], 0.5)].tolist()
    expected = sorted(expected, key=lambda i: (-scores[i], i))
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, 0.5), expected)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([0, 0], [0]), ([0, 1], [0, 1]), ([7, 2], [0, 1])],
)
def test_batched_nms_classes_do_not_suppress_each_other(labels, expected):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    np.testing.assert_array_equal(
        batched_nms(boxes, np.array([0.9, 0.8]), np.array(labels), 0.5), expected
    )


@pytest.mark.parametrize(
    ("scores", "labels", "threshold", "error"),
    [
        ([0.9], [0], 0.5, ValueError),  # wrong length
        ([0.9, np.nan], [0, 0], 0.5, ValueError),
        ([0.9, 0.8], [0.0, 1.0], 0.5, TypeError),
        ([0.9, 0.8], [0, 1], 1.5, ValueError),
    ],
)
def test_nms_rejects(scores, labels, threshold, error):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    with pytest.raises(error):
        batched_nms(boxes, np.asarray(scores), np.asarray(labels), threshold)


def test_empty_batched_nms():
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5).shape == (0,)


def test_containment_suppresses_nested_boxes_of_one_class_only():
    boxes = np.array(
        [[0, 0, 100, 100], [10, 10, 40, 40], [60, 60, 110, 110], [10, 10, 40, 40]], np.float32
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    labels = np.array([0, 0, 0, 1])
    # IoU only: the small box inside the big one (IoU 0.09) survives
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, 0.3), [0, 1, 2, 3])
    # containment 0.7: box 1 lies wholly inside box 0 (same class) and goes; box 2 is 16% inside
    # box 0 and stays; box 3 is nested too but of another class
    np.testing.assert_array_equal(batched_nms(boxes, scores, labels, 0.3, 0.7), [0, 2, 3])
    with pytest.raises(ValueError):
        batched_nms(boxes, scores, labels, 0.3, 1.5)


def test_vote_boxes_weighted_mean_threshold_and_fallback():
    from calcsdk.boxes import vote_boxes

    kept = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [30, 30, 40, 40]], np.float32)
    scores = np.array([[0.6, 0.0], [0.2, 0.0], [0.9, 0.0]], np.float32)
    out = vote_boxes(kept, np.array([0, 1]), boxes, scores, 0.5)
    # box 1 overlaps kept[0] at IoU 8/12 >= 0.5; box 2 overlaps nothing; kept[1] has no
    # positive-weight voter (class 1 scores are 0) and stays put
    np.testing.assert_allclose(out[0], (0.6 * boxes[0] + 0.2 * boxes[1]) / 0.8)
    np.testing.assert_allclose(out[1], kept[1])
    assert out.dtype == np.float32
    out = vote_boxes(kept, np.array([0, 1]), boxes, scores, 0.7)  # 0.67 < 0.7: alone
    np.testing.assert_allclose(out[0], boxes[0])
    assert vote_boxes(kept[:0], np.zeros(0, int), boxes, scores, 0.5).shape == (0, 4)
    with pytest.raises(ValueError, match="class_scores"):
        vote_boxes(kept, np.array([0, 1]), boxes, scores[:2], 0.5)
    with pytest.raises(ValueError, match="kept_labels"):
        vote_boxes(kept, np.array([0]), boxes, scores, 0.5)
