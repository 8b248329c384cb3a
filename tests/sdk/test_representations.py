"""Tests of calcsdk.representations against hand-computed MATLAB semantics (mat2gray,
adaptthresh 'mean' with replicate padding, imbinarize) and the paper's three representations."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.errors import EmptyImageError, ImageDtypeError, InvalidPixelsError
from calcsdk.representations import (
    REPRESENTATIONS,
    adaptthresh,
    default_neighborhood,
    grayscale_roi,
    imbinarize,
    roi_representation,
    roi_representations,
)

# A 5x6 ramp A[y, x] = 6 y + x, scaled to [0, 1] by its maximum 29.
RAMP = np.arange(30, dtype=np.float64).reshape(5, 6)
# Its 3x3 local mean with replicate padding, by hand. A is a sum f(y) + g(x), so the mean is
# 6 * mean_y + mean_x with the replicated neighbours: mean_y = 1/3, 1, 2, 3, 11/3 (rows 0..4:
# row 0 sees rows 0, 0, 1; row 4 sees 3, 4, 4) and mean_x = 1/3, 1, 2, 3, 4, 14/3.
RAMP_LOCAL_MEAN_3x3 = np.array(
    [
        [7 / 3, 3, 4, 5, 6, 20 / 3],
        [19 / 3, 7, 8, 9, 10, 32 / 3],
        [37 / 3, 13, 14, 15, 16, 50 / 3],
        [55 / 3, 19, 20, 21, 22, 68 / 3],
        [67 / 3, 23, 24, 25, 26, 80 / 3],
    ]
)
# 1x5 neighbourhood (one row, five columns): only x is averaged; mean_x with two replicated
# columns each side: x=0 sees 0,0,0,1,2 -> 3/5; x=1: 0,0,1,2,3 -> 6/5; x=2..3: x; x=4: 2,3,4,5,5
# -> 19/5; x=5: 3,4,5,5,5 -> 22/5.
RAMP_LOCAL_MEAN_1x5 = 6 * np.arange(5.0)[:, None] + np.array([3 / 5, 6 / 5, 2, 3, 19 / 5, 22 / 5])


# --- grayscale_roi (mat2gray) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("roi", "expected"),
    [
        (np.array([[2, 4], [6, 10]], np.uint8), [[0.0, 0.25], [0.5, 1.0]]),
        (np.array([[-3.0, 1.0], [5.0, -3.0]]), [[0.0, 0.5], [1.0, 0.0]]),
        (np.array([[1000, 65535]], np.uint16), [[0.0, 1.0]]),
        (np.array([[7, 7], [7, 7]], np.int32), [[0.0, 0.0], [0.0, 0.0]]),  # constant -> zeros
        (np.array([[True, False]]), [[1.0, 0.0]]),
        (np.array([[0.25]], np.float32), [[0.0]]),  # 1x1 is constant
    ],
)
def test_grayscale_roi(roi, expected):
    gray = grayscale_roi(roi)
    assert gray.dtype == np.float32 and gray.shape == roi.shape
    np.testing.assert_allclose(gray, expected, atol=1e-7)


def test_grayscale_roi_batch_normalises_each_roi_alone():
    batch = np.stack([np.array([[0, 10], [5, 10]]), np.array([[100, 100], [100, 100]])])
    gray = grayscale_roi(batch)
    np.testing.assert_allclose(gray[0], [[0.0, 1.0], [0.5, 1.0]])
    np.testing.assert_array_equal(gray[1], np.zeros((2, 2)))


def test_float32_roi_path_matches_the_float64_formula_and_writes_in_place():
    rng = np.random.default_rng(3)
    rois = rng.normal(40.0, 25.0, (6, 9, 7)).astype(np.float32)
    rois[2] = 1.5  # constant
    expected = rois.astype(np.float64) - rois.min(axis=(1, 2), keepdims=True)
    spread = rois.max(axis=(1, 2), keepdims=True) - rois.min(axis=(1, 2), keepdims=True)
    expected /= np.where(spread > 0, spread, 1)
    gray = grayscale_roi(rois)
    np.testing.assert_allclose(gray, expected, atol=2e-7)
    assert gray.min() == 0.0 and gray.max() == 1.0 and not gray[2].any()
    out = np.full_like(rois, np.nan)
    assert grayscale_roi(rois, out=out) is out and np.array_equal(out, gray)
    in_place = rois.copy()
    grayscale_roi(in_place, out=in_place)
    assert np.array_equal(in_place, gray)
    np.testing.assert_array_equal(grayscale_roi(rois[4]), gray[4])  # 2-D as in a batch


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float32_roi_path_refuses_non_finite_pixels(bad):
    rois = np.ones((3, 5, 5), np.float32)
    rois[1, 2, 3] = bad
    with pytest.raises(InvalidPixelsError, match="NaN or infinite"):
        grayscale_roi(rois)


@pytest.mark.parametrize("kind", REPRESENTATIONS)
def test_representation_out_buffer(kind):
    rois = np.random.default_rng(4).random((2, 40, 40)).astype(np.float32)
    expected = roi_representation(rois, kind)
    out = np.empty_like(rois)
    assert roi_representation(rois, kind, out=out) is out
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="float32"):
        roi_representation(rois, kind, out=np.empty(rois.shape, np.float64))
    with pytest.raises(ValueError, match="shape"):
        roi_representation(rois, kind, out=np.empty((2, 40, 41), np.float32))


# --- adaptthresh --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "expected"),
    [((5, 6), (1, 1)), ((16, 16), (3, 3)), ((31, 47), (3, 5)), ((227, 227), (29, 29))],
)
def test_default_neighborhood(shape, expected):
    assert default_neighborhood(shape) == expected


@pytest.mark.parametrize(
    ("neighborhood", "local_mean"),
    [((3, 3), RAMP_LOCAL_MEAN_3x3), ((1, 5), RAMP_LOCAL_MEAN_1x5), ((1, 1), RAMP)],
)
@pytest.mark.parametrize(
    ("sensitivity", "polarity", "factor"),
    [
        (0.5, "bright", 1.1),  # the paper: 0.6 + (1 - 0.5)
        (1.0, "bright", 0.6),
        (0.0, "bright", 1.6),
        (0.5, "dark", 0.9),  # 0.4 + 0.5
        (0.2, "dark", 0.6),
    ],
)
def test_adaptthresh_ramp_by_hand(neighborhood, local_mean, sensitivity, polarity, factor):
    threshold = adaptthresh(RAMP / 29, sensitivity, neighborhood=neighborhood, polarity=polarity)
    assert threshold.dtype == np.float32 and threshold.shape == RAMP.shape
    expected = np.minimum(local_mean * factor / 29, 1.0)  # clipped to [0, 1]
    np.testing.assert_allclose(threshold, expected, atol=1e-6)


def test_adaptthresh_clips_to_one():
    # corner (4, 5) of the 3x3 ramp: 1.1 * (80/3) / 29 = 1.0115 -> 1
    threshold = adaptthresh(RAMP / 29, 0.5, neighborhood=(3, 3))
    assert threshold[4, 5] == 1.0 and threshold[4, 4] < 1.0


def test_adaptthresh_default_neighbourhood_on_a_small_image_is_pointwise():
    # 5x6 -> default neighbourhood 1x1: T = 1.1 * I, clipped
    threshold = adaptthresh(RAMP / 29)
    np.testing.assert_allclose(threshold, np.minimum(1.1 * RAMP / 29, 1.0), atol=1e-6)


def test_adaptthresh_default_neighbourhood_on_an_roi():
    # 32x32 -> 5x5 neighbourhood; one bright pixel at (10, 10) on zeros: the local mean is
    # 1/25 on the 5x5 square around it and 0 elsewhere.
    image = np.zeros((32, 32))
    image[10, 10] = 1.0
    expected = np.zeros((32, 32))
    expected[8:13, 8:13] = 1.1 / 25
    np.testing.assert_allclose(adaptthresh(image), expected, atol=1e-7)


@pytest.mark.parametrize("neighborhood", [(3, 3), (9, 11), (21, 21)])  # 21 > image size
def test_adaptthresh_matches_explicit_replicate_padding(neighborhood):
    rng = np.random.default_rng(3)
    image = rng.random((7, 9))
    rows, cols = neighborhood
    padded = np.pad(image, ((rows // 2, rows // 2), (cols // 2, cols // 2)), mode="edge")
    local_mean = np.array(
        [[padded[y : y + rows, x : x + cols].mean() for x in range(9)] for y in range(7)]
    )
    threshold = adaptthresh(image, 0.5, neighborhood=neighborhood)
    np.testing.assert_allclose(threshold, np.clip(1.1 * local_mean, 0, 1), atol=1e-6)


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_adaptthresh_constant_image(value):
    threshold = adaptthresh(np.full((20, 24), value), 0.5)
    np.testing.assert_allclose(threshold, min(1.1 * value, 1.0), atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sensitivity": 1.5}, ValueError),
        ({"sensitivity": -0.1}, ValueError),
        ({"neighborhood": (4, 3)}, ValueError),
        ({"neighborhood": (3, 0)}, ValueError),
        ({"neighborhood": (2.5, 3)}, ValueError),
        ({"polarity": "grey"}, ValueError),
    ],
)
def test_adaptthresh_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        adaptthresh(RAMP / 29, **kwargs)


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((2, 3, 4)), ImageDtypeError),
        (np.zeros((0, 3)), EmptyImageError),
        (np.array([[0.1, np.nan]]), InvalidPixelsError),
    ],
)
def test_adaptthresh_rejects_bad_images(image, error):
    with pytest.raises(error):
        adaptthresh(image)


# --- imbinarize ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image", "threshold", "expected"),
    [
        ([[0.2, 0.5, 0.8]], 0.5, [[False, False, True]]),  # a tie (0.5 == 0.5) is background
        ([[0.2, 0.5, 0.8]], [[0.1, 0.6, 0.8]], [[True, False, False]]),
        ([[0.0, 1.0]], 1.0, [[False, False]]),
        ([[0.0, 1.0]], 0.0, [[False, True]]),
    ],
)
def test_imbinarize(image, threshold, expected):
    binary = imbinarize(np.array(image), threshold)
    assert binary.dtype == np.bool_
    np.testing.assert_array_equal(binary, expected)


def test_imbinarize_threshold_equal_to_image_is_all_background():
    # sensitivity 0.6 makes the factor exactly 1: on a constant image T == I everywhere.
    image = np.full((16, 16), 0.4)
    assert not imbinarize(image, adaptthresh(image, 0.6)).any()


@pytest.mark.parametrize("threshold", [np.zeros((2, 2)), np.zeros(3), np.nan])
def test_imbinarize_rejects_bad_thresholds(threshold):
    with pytest.raises(ValueError):
        imbinarize(np.zeros((1, 3)), threshold)


# --- the three representations ------------------------------------------------------------------
def square_and_dot_roi() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """32x32 uint8 ROI: background 10, a 3x3 square of 50 at rows/cols 10..12, a dot of 30 at
    (20, 20). mat2gray: background 0, square 1, dot 0.5. With the default 5x5 neighbourhood the
    threshold is 1.1 * local mean: every square pixel sees 9 square pixels in its 5x5 window
    (mean <= 9/25, T <= 0.396 < 1), the dot sees itself (T = 0.022 < 0.5), background pixels
    (0) are never above a threshold >= 0. So binary = square + dot, filtered = gray there."""
    roi = np.full((32, 32), 10, np.uint8)
    roi[10:13, 10:13] = 50
    roi[20, 20] = 30
    gray = np.zeros((32, 32), np.float32)
    gray[10:13, 10:13] = 1.0
    gray[20, 20] = 0.5
    binary = (gray > 0).astype(np.float32)
    return roi, gray, binary


@pytest.mark.parametrize("kind", REPRESENTATIONS)
def test_roi_representation_by_hand(kind):
    roi, gray, binary = square_and_dot_roi()
    expected = {"grayscale": gray, "binary": binary, "filtered": gray * binary}[kind]
    result = roi_representation(roi, kind)
    assert result.dtype == np.float32 and result.shape == roi.shape
    np.testing.assert_allclose(result, expected, atol=1e-7)


def test_binary_is_zero_one_and_filtered_is_gray_and_binary():
    rng = np.random.default_rng(7)
    roi = rng.integers(0, 4096, (227, 227)).astype(np.uint16)
    result = roi_representations(roi)
    assert set(result) == set(REPRESENTATIONS)
    assert set(np.unique(result["binary"])) <= {0.0, 1.0}
    assert 0 < result["binary"].mean() < 1  # random texture: some pixels above 1.1 * mean
    np.testing.assert_array_equal(result["filtered"], result["grayscale"] * result["binary"])
    np.testing.assert_array_equal(result["grayscale"], roi_representation(roi, "grayscale"))
    np.testing.assert_array_equal(result["binary"], roi_representation(roi, "binary"))


def test_constant_roi_gives_zeros_everywhere():
    result = roi_representations(np.full((8, 8), 3, np.uint8))
    for kind in REPRESENTATIONS:
        np.testing.assert_array_equal(result[kind], np.zeros((8, 8), np.float32))


def test_batch_equals_roi_by_roi():
    roi, _, _ = square_and_dot_roi()
    batch = np.stack([roi, roi.T, np.full_like(roi, 9)])
    for kind in REPRESENTATIONS:
        stacked = roi_representation(batch, kind)
        assert stacked.shape == batch.shape
        for one, expected_roi in zip(stacked, batch):
            np.testing.assert_array_equal(one, roi_representation(expected_roi, kind))


@pytest.mark.parametrize("kind", REPRESENTATIONS)
def test_empty_batch(kind):
    result = roi_representation(np.zeros((0, 227, 227), np.float32), kind)
    assert result.shape == (0, 227, 227) and result.dtype == np.float32


@pytest.mark.parametrize("kind", ["gray", "", "Binary"])
def test_unknown_representation(kind):
    with pytest.raises(ValueError):
        roi_representation(np.zeros((4, 4)), kind)
