"""Tests of calcsdk.warp.warp_boxes: exact crops, analytic values on linear ramps, context
padding, border fill, anti-aliasing, out-buffer reuse and the degenerate cases."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.errors import ImageDtypeError, InvalidPixelsError
from calcsdk.warp import context_scale, warp_boxes

# OpenCV 4 quantises warp coordinates to 1/32 pixel; on ramps of slope <= 1 that is <= 1/64.
RAMP_ATOL = 0.02


def ramp_image(height: int = 400, width: int = 500) -> np.ndarray:
    """value(x, y) = 0.3 x + 0.7 y at pixel centres (OpenCV's pixel-centre coordinates)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return (0.3 * xs + 0.7 * ys).astype(np.float32)


def expected_ramp_crop(box, size: int, context_pad: int) -> np.ndarray:
    """By hand: the box dilated about its centre by size / (size - 2 pad); output pixel u samples
    the continuous x = X1 + (u + 0.5) * width / size, i.e. pixel-centre coordinate x - 0.5."""
    x1, y1, x2, y2 = box
    dilation = size / (size - 2 * context_pad)
    width, height = (x2 - x1) * dilation, (y2 - y1) * dilation
    left, top = (x1 + x2) / 2 - width / 2, (y1 + y2) / 2 - height / 2
    u = np.arange(size)
    xs = left + (u + 0.5) * width / size - 0.5
    ys = top + (u + 0.5) * height / size - 0.5
    return 0.3 * xs[None, :] + 0.7 * ys[:, None]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.uint16])
def test_identity_box_reproduces_the_crop(dtype):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 250, (60, 70)).astype(dtype)
    crops = warp_boxes(image, np.array([[13.0, 7.0, 45.0, 39.0]]), size=32, context_pad=0)
    assert crops.dtype == np.float32 and crops.shape == (1, 32, 32)
    np.testing.assert_array_equal(crops[0], image[7:39, 13:45].astype(np.float32))


@pytest.mark.parametrize(
    ("box", "size", "context_pad"),
    [
        ((100.0, 80.0, 160.0, 120.0), 64, 0),  # enlarged ~1x
        ((200.3, 100.7, 230.9, 140.2), 227, 16),  # small box, enlarged ~7x, fractional corners
        ((120.0, 90.0, 380.0, 300.0), 64, 8),  # shrunk ~4.6x: pyramid level 2
        ((60.0, 60.0, 440.0, 140.0), 32, 0),  # anisotropic: x shrunk 12x, y 2.5x
        ((250.0, 200.0, 251.0, 201.0), 16, 4),  # a one-pixel box
    ],
)
def test_warp_of_a_linear_ramp_is_analytic(box, size, context_pad):
    crops = warp_boxes(ramp_image(), np.array([box]), size=size, context_pad=context_pad)
    np.testing.assert_allclose(crops[0], expected_ramp_crop(box, size, context_pad), atol=RAMP_ATOL)


def test_context_padding_surrounds_the_box_with_pad_pixels():
    # A box of exactly size - 2 pad = 195 pixels: the dilated box is 227 pixels, step 1, so
    # the box lands on output pixels 16..210 and 16 pixels of context surround it.
    image = np.zeros((300, 320), np.float32)
    image[40:235, 50:245] = 1.0
    crop = warp_boxes(image, np.array([[50.0, 40.0, 245.0, 235.0]]))[0]
    expected = np.zeros((227, 227), np.float32)
    expected[16:211, 16:211] = 1.0
    np.testing.assert_array_equal(crop, expected)


@pytest.mark.parametrize(("size", "context_pad"), [(227, 16), (64, 8), (32, 0)])
def test_context_padding_widens_the_sampled_region(size, context_pad):
    box = (150.0, 120.0, 250.0, 180.0)
    crop = warp_boxes(ramp_image(), np.array([box]), size=size, context_pad=context_pad)[0]
    dilation = size / (size - 2 * context_pad)
    step_x = (box[2] - box[0]) * dilation / size  # source pixels per output pixel along x
    # along a row the ramp grows by 0.3 per source pixel: first-to-last = (size - 1) steps
    np.testing.assert_allclose(crop[0, -1] - crop[0, 0], 0.3 * (size - 1) * step_x, atol=0.05)
    assert context_scale(size, context_pad) == pytest.approx(dilation)


@pytest.mark.parametrize(
    ("fill", "expected_left_column"),
    [("replicate", 5.0), ("zero", 0.0)],
)
def test_outside_the_image(fill, expected_left_column):
    image = np.full((20, 20), 5.0, np.float32)
    # box x1 = -8: output columns 0..7 sample x < 0 (outside), the rest the image
    crops = warp_boxes(image, np.array([[-8.0, 4.0, 8.0, 12.0]]), size=16, context_pad=0, fill=fill)
    np.testing.assert_array_equal(crops[0][:, :7], expected_left_column)
    np.testing.assert_array_equal(crops[0][:, 9:], 5.0)


def test_box_entirely_outside_replicates_the_nearest_pixel():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    crops = warp_boxes(image, np.array([[10.0, 10.0, 14.0, 14.0]]), size=4, context_pad=0)
    np.testing.assert_array_equal(crops[0], np.full((4, 4), 11.0))  # bottom-right pixel


def test_shrinking_is_anti_aliased():
    # A 1-pixel checkerboard shrunk 8x. The box is offset by half a pixel so that output
    # pixel u samples x = 8 u + 4 exactly (a pixel centre): plain bilinear sampling would return
    # one colour of the board (all zeros); the pyramid returns its mean, 0.5.
    ys, xs = np.mgrid[0:512, 0:512]
    board = ((xs + ys) % 2).astype(np.float32)
    box = np.array([[0.5, 0.5, 512.5, 512.5]])
    crop = warp_boxes(board, box, size=64, context_pad=0)[0]
    inner = crop[4:-4, 4:-4]  # away from the replicated border
    np.testing.assert_allclose(inner, 0.5, atol=0.02)


def test_out_buffer_is_filled_and_reused():
    image = ramp_image(100, 120)
    boxes = np.array([[10.0, 10.0, 50.0, 40.0], [0.0, 0.0, 120.0, 100.0], [30.5, 20.5, 31.5, 22.5]])
    out = np.full((5, 32, 32), -7.0, np.float32)
    result = warp_boxes(image, boxes, size=32, context_pad=4, out=out)
    assert result.shape == (3, 32, 32)
    assert np.shares_memory(result, out)
    np.testing.assert_array_equal(result, warp_boxes(image, boxes, size=32, context_pad=4))
    np.testing.assert_array_equal(out[3:], -7.0)  # beyond N: untouched
    again = warp_boxes(
        image, boxes[::-1], size=32, context_pad=4, out=out
    )  # reuse with other boxes
    np.testing.assert_array_equal(again, warp_boxes(image, boxes[::-1], size=32, context_pad=4))


@pytest.mark.parametrize(
    "out",
    [
        np.zeros((2, 32, 32), np.float32),  # too few
        np.zeros((3, 32, 31), np.float32),  # wrong size
        np.zeros((3, 32, 32), np.float64),  # wrong dtype
        np.zeros((3, 32, 64), np.float32)[:, :, ::2],  # not contiguous
    ],
)
def test_bad_out_buffer(out):
    with pytest.raises(ValueError):
        warp_boxes(
            np.zeros((10, 10)), np.array([[0, 0, 5, 5]] * 3), size=32, context_pad=4, out=out
        )


@pytest.mark.parametrize("boxes", [np.zeros((0, 4), np.float32), [], np.zeros((0,))])
def test_no_boxes(boxes):
    crops = warp_boxes(np.zeros((10, 10), np.float32), boxes, size=227)
    assert crops.shape == (0, 227, 227) and crops.dtype == np.float32


@pytest.mark.parametrize(
    "boxes",
    [
        [[0.0, 0.0, np.nan, 5.0]],
        [[0.0, 0.0, np.inf, 5.0]],
        [[5.0, 0.0, 5.0, 5.0]],  # x2 == x1
        [[5.0, 0.0, 4.0, 5.0]],  # x2 < x1
        [[0.0, 3.0, 5.0, 2.0]],  # y2 < y1
        [[0.0, 0.0, 5.0]],  # not (N, 4)
        [[[0.0, 0.0, 5.0, 5.0]]],
    ],
)
def test_invalid_boxes(boxes):
    with pytest.raises(ValueError):
        warp_boxes(np.zeros((10, 10)), np.array(boxes, dtype=np.float64))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"size": 0}, ValueError),
        ({"size": 32, "context_pad": 16}, ValueError),  # nothing left for the box
        ({"context_pad": -1}, ValueError),
        ({"fill": "reflect"}, ValueError),
    ],
)
def test_bad_parameters(kwargs, error):
    with pytest.raises(error):
        warp_boxes(np.zeros((10, 10)), np.array([[0.0, 0.0, 5.0, 5.0]]), **kwargs)


@pytest.mark.parametrize(
    ("image", "error"),
    [(np.zeros((4, 4, 3)), ImageDtypeError), (np.full((4, 4), np.nan), InvalidPixelsError)],
)
def test_bad_images(image, error):
    with pytest.raises(error):
        warp_boxes(image, np.array([[0.0, 0.0, 2.0, 2.0]]))


@pytest.mark.parametrize("view", ["flipped", "strided", "transposed"])
def test_non_contiguous_image_views(view):
    image = np.arange(60 * 80, dtype=np.float32).reshape(60, 80)
    image = {"flipped": image[:, ::-1], "strided": image[::2, ::3], "transposed": image.T}[view]
    crops = warp_boxes(image, np.array([[1.0, 2.0, 17.0, 18.0]]), size=16, context_pad=0)
    np.testing.assert_array_equal(crops[0], image[2:18, 1:17])
