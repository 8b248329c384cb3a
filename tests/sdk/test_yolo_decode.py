"""The numpy decoding of YOLOv4 head outputs: formula, order, clamping, shapes and errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from calcsdk.yolo_decode import (
    MAX_LOG_SCALE,
    anchors_by_head,
    decode_head,
    decode_yolo,
    num_predictions,
    sigmoid,
)

NUM_CLASSES = 2
ANCHORS9 = np.array([[w, w * 1.5] for w in (4, 6, 8, 12, 16, 24, 32, 48, 64)], np.float32)


def _raw(n: int, height: int, width: int, fill: float = 0.0, anchors: int = 3) -> np.ndarray:
    return np.full((n, anchors * (5 + NUM_CLASSES), height, width), fill, np.float32)


def _set(raw: np.ndarray, anchor: int, k: int, row: int, col: int, value: float) -> None:
    raw[:, anchor * (5 + NUM_CLASSES) + k, row, col] = value


@pytest.mark.parametrize(
    ("tx", "k", "stride", "col", "expected_cx"),
    [
        (0.0, 1.2, 8, 0, 4.0),  # sigmoid 0.5: the cell centre, whatever k
        (0.0, 1.05, 32, 3, 3.5 * 32),
        (50.0, 1.0, 8, 2, 3 * 8.0),  # plain YOLOv3: at most the cell's right edge
        (50.0, 1.2, 8, 2, (2 + 1.1) * 8.0),  # grid sensitivity reaches 0.1 cell beyond
        (-50.0, 1.2, 16, 1, (1 - 0.1) * 16.0),
    ],
)
def test_centre_follows_darknet_scale_x_y(tx, k, stride, col, expected_cx):
    raw = _raw(1, 4, 4)
    _set(raw, 0, 0, 1, col, tx)
    anchors = np.array([[10, 20], [30, 40], [50, 60]], np.float32)
    boxes, _ = decode_head(raw, anchors, stride, k)
    index = (0 * 4 + 1) * 4 + col  # anchor 0, row 1
    cx = (boxes[0, index, 0] + boxes[0, index, 2]) / 2
    cy = (boxes[0, index, 1] + boxes[0, index, 3]) / 2
    assert cx == pytest.approx(expected_cx, abs=1e-4)
    assert cy == pytest.approx(1.5 * stride, abs=1e-4)


@pytest.mark.parametrize(
    ("tw", "th", "factor_w", "factor_h"),
    [
        (0.0, 0.0, 1.0, 1.0),
        (math.log(2.0), -math.log(4.0), 2.0, 0.25),
        (1e4, 30.0, math.exp(MAX_LOG_SCALE), math.exp(MAX_LOG_SCALE)),  # clamped, finite
    ],
)
def test_size_is_anchor_times_exp_clamped(tw, th, factor_w, factor_h):
    raw = _raw(1, 2, 2)
    _set(raw, 2, 2, 0, 0, tw)
    _set(raw, 2, 3, 0, 0, th)
    anchors = np.array([[1, 1], [2, 2], [12, 20]], np.float32)
    boxes, _ = decode_head(raw, anchors, 8, 1.1)
    box = boxes[0, 2 * 4]  # anchor 2, row 0, column 0
    assert box[2] - box[0] == pytest.approx(12 * factor_w, rel=1e-5)
    assert box[3] - box[1] == pytest.approx(20 * factor_h, rel=1e-5)
    assert np.isfinite(boxes).all()


def test_scores_are_objectness_times_class_probability():
    raw = _raw(2, 1, 3, fill=-3.0)
    _set(raw, 1, 4, 0, 2, 2.0)  # objectness
    _set(raw, 1, 5, 0, 2, 1.0)  # class 0
    _set(raw, 1, 6, 0, 2, -1.0)  # class 1
    _, scores = decode_head(raw, np.ones((3, 2), np.float32), 8, 1.0)
    s = 1 / (1 + np.exp(-np.array([2.0, 1.0, -1.0, -3.0])))
    assert scores.shape == (2, 9, 2)
    np.testing.assert_allclose(scores[:, 1 * 3 + 2], [[s[0] * s[1], s[0] * s[2]]] * 2, rtol=1e-5)
    np.testing.assert_allclose(scores[0, 0], [s[3] * s[3]] * 2, rtol=1e-5)


def test_prediction_order_is_head_anchor_row_column():
    height, width = 64, 96
    raws = [_raw(1, height // s, width // s, fill=-10.0) for s in (8, 16, 32)]
    # the only confident prediction: head 1 (stride 16), anchor 2, row 3, column 4
    for k, value in ((0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0), (4, 10.0), (5, 10.0)):
        _set(raws[1], 2, k, 3, 4, value)
    boxes, scores = decode_yolo(raws, ANCHORS9)
    assert boxes.shape == (1, num_predictions(height, width), 4)
    offset = 3 * (height // 8) * (width // 8)
    expected = offset + (2 * (height // 16) + 3) * (width // 16) + 4
    assert int(scores[0, :, 0].argmax()) == expected
    cx, cy = (boxes[0, expected, :2] + boxes[0, expected, 2:]) / 2
    assert (cx, cy) == (pytest.approx(4.5 * 16), pytest.approx(3.5 * 16))
    w, h = boxes[0, expected, 2:] - boxes[0, expected, :2]
    assert (w, h) == (pytest.approx(24.0), pytest.approx(36.0))  # ANCHORS9[5]


@pytest.mark.parametrize(("batch", "height", "width"), [(0, 32, 32), (1, 32, 64), (3, 96, 32)])
def test_shapes_and_dtypes(batch, height, width):
    raws = [_raw(batch, height // s, width // s) for s in (8, 16, 32)]
    boxes, scores = decode_yolo(raws, ANCHORS9)
    total = num_predictions(height, width)
    assert boxes.shape == (batch, total, 4) and boxes.dtype == np.float32
    assert scores.shape == (batch, total, NUM_CLASSES) and scores.dtype == np.float32


def test_extreme_logits_stay_finite_without_warnings():
    raws = [_raw(1, 4 // (s // 8), 4 // (s // 8), fill=v) for s, v in ((8, 1e30), (16, -1e30))]
    raws.append(_raw(1, 1, 1, fill=88.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes, scores = decode_yolo(raws, ANCHORS9)
        assert sigmoid(np.array([-1e4, 1e4], np.float32)).tolist() == [0.0, 1.0]
    assert np.isfinite(boxes).all() and np.isfinite(scores).all()
    assert scores.min() >= 0 and scores.max() <= 1


@pytest.mark.parametrize(
    ("anchors", "message"),
    [
        (np.ones((6, 2)), "shape"),
        (np.ones((9, 3)), "shape"),
        (np.r_[np.ones((8, 2)), [[0.0, 1.0]]], "> 0"),
        (np.r_[np.ones((8, 2)), [[np.nan, 1.0]]], "> 0"),
    ],
)
def test_bad_anchors_raise(anchors, message):
    with pytest.raises(ValueError, match=message):
        anchors_by_head(anchors)


def test_anchors_by_head_groups_smallest_first():
    grouped = anchors_by_head(ANCHORS9)
    assert grouped.shape == (3, 3, 2)
    np.testing.assert_array_equal(grouped[0, 0], ANCHORS9[0])
    np.testing.assert_array_equal(grouped[2, 2], ANCHORS9[8])


@pytest.mark.parametrize(
    ("raws", "message"),
    [
        ([np.zeros((1, 20, 4, 4), np.float32)] * 3, "channels"),  # 20 is not 3 x (5 + C)
        ([np.zeros((1, 15, 4, 4), np.float32)] * 3, "channels"),  # C = 0
        ([np.zeros((1, 21, 4), np.float32)] * 3, "shape"),
        ([np.zeros((1, 21, 4, 4), np.float32)] * 2, "one raw output"),
        ([_raw(1, 4, 4), _raw(2, 2, 2), _raw(1, 1, 1)], "disagree"),
    ],
)
def test_malformed_outputs_raise(raws, message):
    with pytest.raises(ValueError, match=message):
        decode_yolo(raws, ANCHORS9)
