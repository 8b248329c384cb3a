"""Overlays: DICOM window vs breast percentile window, class colours, scaling, degenerate images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from calcsdk.benchmarks.phantom import BREAST_LEVEL, NOISE_SIGMA, draw_phantom
from calcsdk.detections import Detections, GroundTruth
from calcsdk.image import Mammogram
from calcsdk.overlay import (
    CLASS_COLOURS_BGR,
    TRUTH_COLOUR_BGR,
    display_window,
    render_overlay,
    windowed_uint8,
    write_overlay,
)


def mammogram(pixels: np.ndarray, voi: str | None = None, spacing=(0.1, 0.1)) -> Mammogram:
    bits = 12 if pixels.dtype == np.uint16 else None if pixels.dtype == np.float32 else 8
    return Mammogram(pixels, spacing, None, None, "<test>", bits, voi_transform=voi)


PHANTOM, _ = draw_phantom(0, (300, 240))


@pytest.mark.parametrize(
    ("voi", "spacing", "check"),
    [
        ("WINDOW LINEAR center=2048 width=4096", (0.1, 0.1), lambda lo, hi: (lo, hi) == (0, 4095)),
        ("VOI LUT", None, lambda lo, hi: (lo, hi) == (0, 4095)),
        # percentile window of the breast: background (0) and the skin band are left out
        (None, (0.1, 0.1), lambda lo, hi: BREAST_LEVEL - 4 * NOISE_SIGMA < lo < BREAST_LEVEL < hi),
        (None, None, lambda lo, hi: BREAST_LEVEL - 4 * NOISE_SIGMA < lo < BREAST_LEVEL < hi),
    ],
)
def test_display_window(voi, spacing, check):
    image = mammogram(PHANTOM, voi, spacing)
    low, high = display_window(PHANTOM.astype(np.float32), image, spacing and spacing[0])
    assert check(low, high), (low, high)


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        (
            np.full((40, 50), 7, np.uint16),
            (7.0, 8.0),
        ),  # constant: a 1-level window, no division by 0
        (np.zeros((40, 50), np.float32), (0.0, 1.0)),
    ],
)
def test_display_window_degenerate(pixels, expected):
    image = mammogram(pixels)
    assert display_window(pixels.astype(np.float32), image, 0.1) == expected


def test_windowed_uint8_spans_the_breast_contrast():
    gray, scale = windowed_uint8(mammogram(PHANTOM))
    assert gray.dtype == np.uint8 and gray.shape == PHANTOM.shape and scale == 1.0
    inside = gray[100:200, 20:60]  # breast tissue
    assert 60 < inside.mean() < 200 and inside.std() > 10  # not flattened to white or black
    assert gray[5, 230] == 0  # background


def detections(boxes, labels, scores) -> Detections:
    return Detections(
        np.array(boxes, np.float32).reshape(-1, 4), np.array(scores), np.array(labels, np.int64)
    )


@pytest.mark.parametrize(
    ("label", "colour"),
    [(0, CLASS_COLOURS_BGR["malignant"]), (1, CLASS_COLOURS_BGR["benign"])],
)
def test_boxes_are_class_coloured(label, colour):
    canvas = render_overlay(mammogram(PHANTOM), detections([[60, 120, 120, 200]], [label], [0.8]))
    assert canvas.shape == (*PHANTOM.shape, 3) and canvas.dtype == np.uint8
    assert tuple(int(v) for v in canvas[160, 60]) == colour  # left edge of the box
    assert tuple(int(v) for v in canvas[199, 90]) == colour  # bottom edge (y2 exclusive)
    assert len(set(canvas[150, 90].tolist())) == 1  # inside the box: untouched gray


def test_overlay_is_downscaled_with_its_boxes():
    canvas = render_overlay(
        mammogram(PHANTOM), detections([[120, 150, 240, 300]], [0], [0.9]), max_side=100
    )
    assert canvas.shape == (100, 80, 3)
    assert tuple(int(v) for v in canvas[70, 40]) == CLASS_COLOURS_BGR["malignant"]  # x1*s = 40


def test_no_detections_gives_the_gray_image():
    canvas = render_overlay(mammogram(PHANTOM), Detections.empty())
    gray, _ = windowed_uint8(mammogram(PHANTOM))
    assert all(np.array_equal(canvas[..., c], gray) for c in range(3))


def test_max_side_must_be_positive():
    with pytest.raises(ValueError, match="max_side"):
        render_overlay(mammogram(PHANTOM), Detections.empty(), max_side=0)


def test_write_overlay_png(tmp_path: Path):
    path = tmp_path / "o.png"
    write_overlay(path, mammogram(PHANTOM), detections([[1, 1, 30, 30]], [1], [0.55]))
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image.shape == (*PHANTOM.shape, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]  # no temp file left


def test_ground_truth_is_white_and_under_the_detections():
    truths = GroundTruth(np.array([[60, 120, 120, 200], [10, 20, 40, 50]], np.float32), [1, 0])
    canvas = render_overlay(
        mammogram(PHANTOM), detections([[60, 120, 100, 180]], [0], [0.8]), truths=truths
    )
    assert tuple(int(v) for v in canvas[199, 90]) == TRUTH_COLOUR_BGR  # GT bottom edge only
    assert tuple(int(v) for v in canvas[30, 10]) == TRUTH_COLOUR_BGR  # second GT, left edge
    # where the detection and the first GT share the left edge, the detection is drawn on top
    assert tuple(int(v) for v in canvas[160, 60]) == CLASS_COLOURS_BGR["malignant"]


def test_write_overlay_with_ground_truth(tmp_path: Path):
    path = tmp_path / "o.png"
    truths = GroundTruth(np.array([[5, 5, 50, 60]], np.float32), [0])
    write_overlay(path, mammogram(PHANTOM), Detections.empty(), truths=truths)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert tuple(int(v) for v in image[30, 5]) == TRUTH_COLOUR_BGR
