"""Tests of calcsdk.preprocess: breast mask on drawn phantoms, artifact removal, resampling,
intensity normalisation. Expectations are hand-computed or drawn, never produced by the code."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from calcsdk.errors import EmptyImageError, ImageDtypeError, InvalidPixelsError
from calcsdk.preprocess import (
    breast_mask,
    normalize_image,
    remove_artifacts,
    resample_to_spacing,
)


# --- phantoms -----------------------------------------------------------------------------------
def draw_phantom(
    height: int = 480,
    width: int = 384,
    *,
    bits: int = 16,
    density: str = "fatty",
    view: str = "cc",
    side: str = "left",
    seed: int = 0,
    dtype: type | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A mammogram-like phantom: (image, breast truth, marker+text truth).

    A half-ellipse breast on the chest-wall side with textured tissue (dense: bright blobs), an
    optional MLO pectoral triangle (brighter, attached), a bright rectangular marker and burned-in
    text away from the breast, Gaussian noise; quantised to ``bits`` in an 8- or 16-bit container
    (or a float dtype scaled to [0, 1]).
    """
    rng = np.random.default_rng(seed)
    full = (1 << bits) - 1
    breast = np.zeros((height, width), np.uint8)
    cv2.ellipse(
        breast, (0, height // 2), (int(width * 0.62), int(height * 0.42)), 0, -90, 90, 1, -1
    )
    pectoral = np.zeros_like(breast)
    if view == "mlo":
        corners = np.array([[0, 0], [int(width * 0.45), 0], [0, int(height * 0.75)]], np.int32)
        cv2.fillPoly(pectoral, [corners], 1)
    truth = (breast | pectoral).astype(bool)

    image = np.full((height, width), 0.04 * full)
    texture = cv2.GaussianBlur(rng.standard_normal((height, width)), (0, 0), 6)
    texture /= texture.std()
    level, contrast = {"fatty": (0.18, 0.02), "dense": (0.3, 0.25)}[density]
    image[truth] = (level + contrast * np.clip(texture[truth], -0.4, 3)) * full
    image[pectoral.astype(bool)] = 0.6 * full

    artifacts = np.zeros((height, width), np.uint8)
    cv2.rectangle(
        artifacts,
        (int(width * 0.82), int(height * 0.05)),
        (int(width * 0.95), int(height * 0.14)),
        1,
        -1,
    )
    cv2.putText(
        artifacts,
        "R MLO",
        (int(width * 0.62), int(height * 0.95)),
        cv2.FONT_HERSHEY_SIMPLEX,
        height / 400,
        1,
        max(1, height // 150),
    )
    artifacts = artifacts.astype(bool)
    image[artifacts] = 0.97 * full
    image = np.clip(image + rng.normal(0, 0.01 * full, image.shape), 0, full)
    if side == "right":
        image, truth, artifacts = image[:, ::-1], truth[:, ::-1], artifacts[:, ::-1]
    if dtype is None:
        dtype = np.uint8 if bits <= 8 else np.uint16
    if np.issubdtype(dtype, np.floating):
        image = image / full
    return np.ascontiguousarray(image.astype(dtype)), truth.copy(), artifacts.copy()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --- breast_mask --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bits", "dtype", "density", "view", "side"),
    [
        (8, None, "fatty", "cc", "left"),
        (8, None, "dense", "mlo", "right"),
        (12, None, "dense", "cc", "left"),
        (12, None, "fatty", "mlo", "right"),
        (14, None, "dense", "mlo", "left"),
        (16, None, "fatty", "cc", "right"),
        (16, None, "dense", "mlo", "left"),
        (16, np.float32, "dense", "cc", "right"),
        (8, np.float64, "fatty", "mlo", "left"),  # float holding 8-bit levels (k / 255)
    ],
)
def test_breast_mask_phantoms(bits, dtype, density, view, side):
    image, truth, artifacts = draw_phantom(
        bits=bits, dtype=dtype, density=density, view=view, side=side, seed=bits
    )
    mask = breast_mask(image)
    assert mask.dtype == np.bool_ and mask.shape == image.shape
    assert iou(mask, truth) > 0.97
    assert not (mask & artifacts).any()  # marker and text are outside the mask


def test_breast_mask_keeps_pectoral_muscle():
    image, _, _ = draw_phantom(view="mlo", density="fatty", bits=12)
    pectoral = np.zeros(image.shape, np.uint8)
    cv2.fillPoly(pectoral, [np.array([[0, 0], [172, 0], [0, 360]], np.int32)], 1)
    mask = breast_mask(image)
    assert mask[pectoral.astype(bool)].mean() > 0.98


def test_breast_mask_large_image_uses_downscaled_copy():
    """A 4000x3000 12-bit image: right answer and fast (the downscaled path)."""
    small, truth_small, artifacts_small = draw_phantom(400, 300, bits=12, density="dense")
    image = cv2.resize(small, (3000, 4000), interpolation=cv2.INTER_NEAREST)
    noise = np.random.default_rng(1).integers(0, 40, image.shape, dtype=np.uint16)
    image += noise  # per-pixel noise at full resolution, 1% of 12-bit range
    truth = cv2.resize(truth_small.astype(np.uint8), (3000, 4000), interpolation=cv2.INTER_NEAREST)
    artifacts = cv2.resize(artifacts_small.astype(np.uint8), (3000, 4000), interpolation=0)
    breast_mask(image)  # warm-up
    start = time.perf_counter()
    mask = breast_mask(image, spacing_mm=0.07)
    elapsed = time.perf_counter() - start
    assert iou(mask, truth.astype(bool)) > 0.97
    assert not (mask & artifacts.astype(bool)).any()
    assert elapsed < 0.5  # measured ~15 ms; generous for a shared machine


@pytest.mark.parametrize("spacing_mm", [None, 0.05, 0.1, 0.2])
def test_breast_mask_spacing_only_changes_the_grid(spacing_mm):
    image, truth, _ = draw_phantom(bits=16, density="fatty")
    assert iou(breast_mask(image, spacing_mm=spacing_mm), truth) > 0.97


def test_breast_mask_fills_dark_holes_inside_the_breast():
    image = np.zeros((60, 60), np.uint16)
    cv2.circle(image, (0, 30), 40, 3000, -1)
    image[25:35, 10:20] = 0  # a dark region fully inside the breast
    image[3:8, 50:57] = 4095  # a marker touching nothing
    mask = breast_mask(image)
    assert mask[25:35, 10:20].all()
    assert not mask[3:8, 50:57].any()


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((8, 9), np.uint8),
        np.full((5, 5), 1234, np.uint16),
        np.full((1, 1), 0.5, np.float32),
    ],
)
def test_breast_mask_constant_image_is_all_true(pixels):
    mask = breast_mask(pixels)
    assert mask.shape == pixels.shape and mask.all()


@pytest.mark.parametrize("radius", [18, 36])  # breast smaller / larger than the background
def test_breast_mask_two_level_image(radius):
    # Noise-free, two grey levels: the histogram has two occupied bins only.
    image = np.zeros((40, 40), np.uint8)
    cv2.circle(image, (0, 20), radius, 200, -1)
    mask = breast_mask(image)
    assert iou(mask, image > 0) > 0.98  # the 3x3 median may shave a one-pixel tip
    assert not mask[:, -3:].any()


@pytest.mark.parametrize(
    ("pixels", "error"),
    [
        (np.zeros((0, 5), np.uint8), EmptyImageError),
        (np.zeros((4, 5, 3), np.uint8), ImageDtypeError),
        (np.array([[0.0, np.nan], [1.0, 2.0]]), InvalidPixelsError),
        (np.array([["a", "b"]]), ImageDtypeError),
    ],
)
def test_breast_mask_rejects_bad_input(pixels, error):
    with pytest.raises(error):
        breast_mask(pixels)


@pytest.mark.parametrize("spacing_mm", [0.0, -0.1, float("nan")])
def test_breast_mask_rejects_bad_spacing(spacing_mm):
    with pytest.raises(InvalidPixelsError):
        breast_mask(np.arange(20, dtype=np.uint8).reshape(4, 5), spacing_mm=spacing_mm)


# --- remove_artifacts ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pixels", "mask", "expected"),
    [
        (  # outside: 9, 7 and 8 -> their minimum 7
            np.array([[5, 9, 1], [7, 8, 2]], np.uint16),
            np.array([[True, False, True], [False, False, True]]),
            np.array([[5, 7, 1], [7, 7, 2]], np.uint16),
        ),
        (  # all inside: unchanged
            np.array([[0.5, -1.0]], np.float32),
            np.array([[True, True]]),
            np.array([[0.5, -1.0]], np.float32),
        ),
        (  # all outside: the image minimum everywhere
            np.array([[3, 4], [2, 6]], np.uint8),
            np.zeros((2, 2), bool),
            np.full((2, 2), 2, np.uint8),
        ),
    ],
)
def test_remove_artifacts(pixels, mask, expected):
    result = remove_artifacts(pixels, mask)
    assert result.dtype == pixels.dtype
    np.testing.assert_array_equal(result, expected)
    assert result is not pixels


@pytest.mark.parametrize(
    "mask", [np.ones((2, 3), np.uint8), np.ones((3, 2), bool), np.ones((2, 3, 1), bool)]
)
def test_remove_artifacts_rejects_bad_mask(mask):
    with pytest.raises(ValueError):
        remove_artifacts(np.zeros((2, 3), np.uint8), mask)


# --- resample_to_spacing ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "spacing", "target", "out_shape", "scales"),
    [
        ((100, 80), 0.1, 0.2, (50, 40), (0.5, 0.5)),
        ((100, 80), (0.1, 0.05), 0.1, (100, 40), (1.0, 0.5)),
        ((10, 10), 0.07, 0.1, (7, 7), (0.7, 0.7)),
        ((4, 4), 0.2, 0.1, (8, 8), (2.0, 2.0)),
        ((3, 3), 0.1, 0.1, (3, 3), (1.0, 1.0)),
        ((3, 5), 0.01, 1.0, (1, 1), (1 / 3, 1 / 5)),  # never below one pixel
        ((7, 10), (0.2, 0.05), 0.1, (14, 5), (2.0, 0.5)),  # mixed: y enlarged, x shrunk
    ],
)
def test_resample_shapes_and_scales(shape, spacing, target, out_shape, scales):
    resampled, got_scales = resample_to_spacing(np.ones(shape, np.float32), spacing, target)
    assert resampled.shape == out_shape
    np.testing.assert_allclose(got_scales, scales)
    np.testing.assert_allclose(resampled, 1.0)  # constant stays constant


def test_resample_area_shrink_is_block_mean():
    pixels = np.arange(16, dtype=np.float32).reshape(4, 4)
    resampled, _ = resample_to_spacing(pixels, 0.1, 0.2)
    np.testing.assert_allclose(resampled, [[2.5, 4.5], [10.5, 12.5]])


def test_resample_linear_enlarge_is_pixel_centre_consistent():
    # Ramp value = x (pixel-centre coordinate). Enlarged 2x, output pixel u has its centre at
    # input coordinate (u + 0.5) / 2 - 0.5, clamped to [0, 3] at the borders.
    pixels = np.tile(np.arange(4, dtype=np.float32), (2, 1))
    resampled, _ = resample_to_spacing(pixels, 0.2, 0.1)
    expected = [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]
    np.testing.assert_allclose(resampled[0], expected, atol=1e-6)


def test_resample_maps_a_box_by_the_returned_scales():
    pixels = np.zeros((40, 60), np.float32)
    pixels[10:20, 30:42] = 1.0  # box x1=30, y1=10, x2=42, y2=20 (exclusive)
    resampled, (sy, sx) = resample_to_spacing(pixels, (0.1, 0.1), 0.2)
    ys, xs = np.nonzero(resampled > 0.5)
    assert (xs.min(), xs.max() + 1) == (30 * sx, 42 * sx)
    assert (ys.min(), ys.max() + 1) == (10 * sy, 20 * sy)


@pytest.mark.parametrize(
    ("dtype", "out_dtype"),
    [
        (np.uint8, np.uint8),
        (np.uint16, np.uint16),
        (np.float32, np.float32),
        (np.float64, np.float32),
        (np.int32, np.float32),
        (np.bool_, np.bool_),
    ],
)
@pytest.mark.parametrize("target", [0.05, 0.1, 0.2])
def test_resample_dtypes(dtype, out_dtype, target):
    pixels = (np.arange(24).reshape(4, 6) % 2).astype(dtype)
    resampled, _ = resample_to_spacing(pixels, 0.1, target)
    assert resampled.dtype == out_dtype


def test_resample_bool_mask_uses_nearest_neighbour():
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[3, 2] = True
    enlarged, _ = resample_to_spacing(mask, 0.1, 0.05)
    expected = np.zeros((8, 8), bool)
    expected[0:2, 0:2] = expected[6:8, 4:6] = True
    np.testing.assert_array_equal(enlarged, expected)


@pytest.mark.parametrize(
    ("spacing", "target", "interpolation", "error"),
    [
        (None, 0.1, "area", ValueError),
        (0.1, None, "area", ValueError),
        (-0.1, 0.1, "area", InvalidPixelsError),
        ((0.1, 0.0), 0.1, "area", InvalidPixelsError),
        ((0.1, 0.1, 0.1), 0.1, "area", InvalidPixelsError),
        (0.1, float("inf"), "area", InvalidPixelsError),
        (0.1, (0.1, 0.1), "area", InvalidPixelsError),
        (0.1, 0.2, "bicubic", ValueError),
    ],
)
def test_resample_rejects_bad_arguments(spacing, target, interpolation, error):
    with pytest.raises(error):
        resample_to_spacing(np.ones((4, 4)), spacing, target, interpolation=interpolation)


# --- normalize_image ----------------------------------------------------------------------------
def test_normalize_full_range_is_exact():
    pixels = np.arange(101, dtype=np.uint16).reshape(1, 101)
    result = normalize_image(pixels, low_pct=0.0, high_pct=100.0)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result[0], np.arange(101) / 100, atol=1e-7)


def test_normalize_clips_outliers_at_the_percentiles():
    # 0..999 plus two outliers; the 0.5/99.5 percentiles of 1002 values (linear interpolation)
    pixels = np.concatenate([np.arange(1000.0), [-5000.0, 9000.0]]).reshape(2, 501)
    low, high = np.percentile(pixels, [0.5, 99.5])  # numpy's definition, stated in the docstring
    result = normalize_image(pixels)
    assert result.min() == 0.0 and result.max() == 1.0
    np.testing.assert_allclose(result.ravel()[500], (500 - low) / (high - low), rtol=1e-6)


def test_normalize_window_comes_from_inside_the_mask():
    pixels = np.array([[10, 20, 30, 1000]], np.uint16)
    mask = np.array([[True, True, True, False]])
    result = normalize_image(pixels, mask, low_pct=0.0, high_pct=100.0)
    np.testing.assert_allclose(result, [[0.0, 0.5, 1.0, 1.0]])


def test_normalize_is_bit_depth_independent():
    image8, _, _ = draw_phantom(120, 96, bits=8)
    image16 = image8.astype(np.uint16) * 257  # the same picture in 16 bits
    np.testing.assert_allclose(normalize_image(image8), normalize_image(image16), atol=1e-6)


@pytest.mark.parametrize(
    "pixels", [np.zeros((3, 4), np.uint8), np.full((2, 2), 7.5), np.ones((1, 1), np.uint16)]
)
def test_normalize_constant_image_is_zeros(pixels):
    result = normalize_image(pixels)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.zeros(pixels.shape, np.float32))


def test_normalize_equal_percentiles_fall_back_to_min_max():
    pixels = np.zeros((1, 1000), np.float32)
    pixels[0, 0] = 4.0  # the 0.5 and 99.5 percentiles are both 0
    result = normalize_image(pixels)
    assert result[0, 0] == 1.0 and not result[0, 1:].any()


def test_normalize_subsamples_large_images():
    pixels = np.tile(np.arange(1100, dtype=np.float32), (1000, 1))  # 1.1 M pixels
    result = normalize_image(pixels, low_pct=0.0, high_pct=100.0)
    np.testing.assert_allclose(result[0, [0, 550, 1099]], [0.0, 0.5, 1.0], atol=1e-3)


@pytest.mark.parametrize(
    ("mask", "low_pct", "high_pct"),
    [
        (np.zeros((2, 2), bool), 0.5, 99.5),  # selects nothing
        (np.ones((2, 2), np.uint8), 0.5, 99.5),  # not bool
        (None, 50.0, 50.0),
        (None, -1.0, 99.0),
        (None, 1.0, 101.0),
    ],
)
def test_normalize_rejects_bad_arguments(mask, low_pct, high_pct):
    with pytest.raises(ValueError):
        normalize_image(np.arange(4.0).reshape(2, 2), mask, low_pct=low_pct, high_pct=high_pct)
