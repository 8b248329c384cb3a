"""read_mammogram on valid inputs: every raster format and array kind round-trips (values,
dtype, spacing, bit depth); the Mammogram contract, overrides and write_png."""

from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from calcsdk.errors import EmptyImageError, ImageDtypeError, InvalidPixelsError
from calcsdk.image import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_SUFFIXES,
    Mammogram,
    read_mammogram,
    write_png,
)
from calcsdk.raster import encode_png

SHAPE = (24, 30)


def gradient(dtype, top: int, shape=SHAPE) -> np.ndarray:
    """Deterministic values from 0 to exactly ``top`` (the full range), in raster order."""
    count = shape[0] * shape[1]
    return (np.arange(count, dtype=np.int64) * top // (count - 1)).reshape(shape).astype(dtype)


def smooth(shape=SHAPE) -> np.ndarray:
    """A smooth uint8 ramp that survives lossy JPEG within a few levels."""
    rows, cols = np.indices(shape)
    return (40 + 4 * rows + 2 * cols).astype(np.uint8)


def tiff_bytes(pixels: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, **kwargs)
    return buffer.getvalue()


def pgm_bytes(pixels: np.ndarray, maxval: int, ascii_: bool = False) -> bytes:
    height, width = pixels.shape
    if ascii_:
        body = " ".join(str(v) for v in pixels.ravel()).encode()
        return f"P2\n# comment\n{width} {height}\n{maxval}\n".encode() + body + b"\n"
    sample = ">u2" if maxval > 255 else "u1"
    return f"P5\n{width} {height}\n{maxval}\n".encode() + pixels.astype(sample).tobytes()


# --- rasters: (name, suffix, file bytes, expected pixels, dtype, spacing, bits) -----------
def _raster_cases():
    png8, png16, png12 = (
        gradient(np.uint8, 255),
        gradient(np.uint16, 65535),
        gradient(np.uint16, 4095),
    )
    f32 = (gradient(np.uint16, 1000) / 7.0 - 3.0).astype(np.float32)
    gray3 = cv2.merge([png8, png8, png8])
    gray4 = cv2.merge([png16, png16, png16, np.full_like(png16, 65535)])
    return [
        ("png8", ".png", encode_png(png8, (0.1, 0.1), None, "x"), png8, np.uint8, (0.1, 0.1), 8),
        ("png16", ".png", encode_png(png16, None, None, "x"), png16, np.uint16, None, 16),
        (
            "png16_sbit12",
            ".png",
            encode_png(png12, (0.07, 0.05), 12, "x"),
            png12,
            np.uint16,
            (0.07, 0.05),
            12,
        ),
        # sBIT says 12 but values use all 16 bits (PNG-spec scaling): the container depth wins
        ("png16_sbit_scaled", ".png", encode_png(png16, None, 12, "x"), png16, np.uint16, None, 16),
        (
            "png_gray_as_bgr",
            ".png",
            cv2.imencode(".png", gray3)[1].tobytes(),
            png8,
            np.uint8,
            None,
            8,
        ),
        (
            "png_gray_as_bgra",
            ".png",
            cv2.imencode(".png", gray4)[1].tobytes(),
            png16,
            np.uint16,
            None,
            16,
        ),
        ("tiff8", ".tif", tiff_bytes(png8), png8, np.uint8, None, 8),
        (
            "tiff16_cm",
            ".tiff",
            tiff_bytes(png16, resolution=(100, 125), resolutionunit="CENTIMETER"),
            png16,
            np.uint16,
            (0.08, 0.1),
            16,
        ),
        (
            "tiff16_inch",
            ".tif",
            tiff_bytes(png16, resolution=(254, 254), resolutionunit="INCH"),
            png16,
            np.uint16,
            (0.1, 0.1),
            16,
        ),
        (
            "tiff16_unit_none",
            ".tif",
            tiff_bytes(png16, resolution=(2, 2), resolutionunit="NONE"),
            png16,
            np.uint16,
            None,
            16,
        ),
        (
            "bigtiff16",
            ".tif",
            tiff_bytes(png16, bigtiff=True, resolution=(200, 200), resolutionunit="CENTIMETER"),
            png16,
            np.uint16,
            (0.05, 0.05),
            16,
        ),
        ("tiff_float32", ".tif", tiff_bytes(f32), f32, np.float32, None, None),
        (
            "tiff_lzw_opencv",
            ".tif",
            cv2.imencode(".tiff", png16)[1].tobytes(),
            png16,
            np.uint16,
            None,
            16,
        ),
        ("pgm8", ".pgm", pgm_bytes(png8, 255), png8, np.uint8, None, 8),
        ("pgm16", ".pgm", pgm_bytes(png16, 65535), png16, np.uint16, None, 16),
        ("pgm12_maxval4095", ".pgm", pgm_bytes(png12, 4095), png12, np.uint16, None, 12),
        ("pgm_ascii", ".pgm", pgm_bytes(png8, 255, ascii_=True), png8, np.uint8, None, 8),
        ("png_named_tif", ".tif", encode_png(png8, None, None, "x"), png8, np.uint8, None, 8),
        ("png_no_suffix", "", encode_png(png16, None, None, "x"), png16, np.uint16, None, 16),
    ]


@pytest.mark.parametrize(
    ("name", "suffix", "data", "expected", "dtype", "spacing", "bits"),
    _raster_cases(),
    ids=[case[0] for case in _raster_cases()],
)
def test_raster_round_trip(tmp_path, name, suffix, data, expected, dtype, spacing, bits):
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(data)
    image = read_mammogram(path)
    assert image.pixels.dtype == dtype
    assert image.pixels.flags.c_contiguous and image.shape == expected.shape
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.bits_stored == bits
    assert image.source == str(path)
    if spacing is None:
        assert image.spacing_mm is None
    else:
        assert image.spacing_mm == pytest.approx(spacing, rel=1e-4)
    in_memory = read_mammogram(bytearray(data))  # the same file's bytes
    np.testing.assert_array_equal(in_memory.pixels, image.pixels)
    assert (in_memory.source, in_memory.spacing_mm, in_memory.bits_stored) == (
        "<bytes>",
        image.spacing_mm,
        bits,
    )


@pytest.mark.parametrize(
    ("name", "pixels", "channels"),
    [
        ("gray", smooth(), 1),
        ("gray_as_bgr", smooth(), 3),
    ],
)
def test_jpeg_gray_within_lossy_tolerance(tmp_path, name, pixels, channels):
    source = pixels if channels == 1 else cv2.merge([pixels] * 3)
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(cv2.imencode(".jpg", source, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes())
    image = read_mammogram(path)
    assert image.pixels.dtype == np.uint8 and image.shape == pixels.shape
    assert np.abs(image.pixels.astype(int) - pixels).max() <= 3
    assert image.bits_stored == 8 and image.spacing_mm is None


@pytest.mark.parametrize(
    ("units", "density", "spacing"), [(1, 254, (0.1, 0.1)), (2, 20, (0.5, 0.5)), (0, 1, None)]
)
def test_jpeg_jfif_density_gives_spacing(tmp_path, units, density, spacing):
    data = bytearray(cv2.imencode(".jpg", smooth())[1].tobytes())
    assert data[6:11] == b"JFIF\x00"
    data[13] = units  # APP0: units, X density, Y density
    data[14:18] = density.to_bytes(2, "big") * 2
    path = tmp_path / "density.jpeg"
    path.write_bytes(bytes(data))
    image = read_mammogram(path)
    assert image.spacing_mm == (pytest.approx(spacing) if spacing else None)


# --- arrays -------------------------------------------------------------------------------
U16 = gradient(np.uint16, 65535)
U8 = gradient(np.uint8, 255)


@pytest.mark.parametrize(
    ("name", "array", "expected", "dtype", "bits"),
    [
        ("uint8", U8, U8, np.uint8, 8),
        ("uint16", U16, U16, np.uint16, 16),
        ("float32", U16.astype(np.float32) / 3, U16.astype(np.float32) / 3, np.float32, None),
        ("float64", U16 / 3.0, (U16 / 3.0).astype(np.float32), np.float32, None),
        ("float16", U8.astype(np.float16), U8.astype(np.float32), np.float32, None),
        ("int64_in_range", U16.astype(np.int64), U16, np.uint16, 16),
        ("int8_nonnegative", (U8 // 2).astype(np.int8), U8 // 2, np.uint8, 8),
        ("uint32_in_range", U16.astype(np.uint32), U16, np.uint16, 16),
        ("h_w_1", U16[:, :, None], U16, np.uint16, 16),
        ("h_w_3_equal", np.dstack([U8, U8, U8]), U8, np.uint8, 8),
        ("h_w_4_equal_alpha_ignored", np.dstack([U8, U8, U8, U8 // 2]), U8, np.uint8, 8),
        ("fortran_order", np.asfortranarray(U16), U16, np.uint16, 16),
        ("one_pixel", np.array([[7]], np.uint8), np.array([[7]], np.uint8), np.uint8, 8),
        ("constant_float", np.zeros((3, 4)), np.zeros((3, 4), np.float32), np.float32, None),
    ],
)
def test_array_input(name, array, expected, dtype, bits):
    image = read_mammogram(array)
    assert image.pixels.dtype == dtype and image.pixels.ndim == 2
    assert image.pixels.flags.c_contiguous
    np.testing.assert_array_equal(image.pixels, expected)
    assert image.bits_stored == bits and image.source == "<array>"
    assert image.spacing_mm is None and image.view is None and image.laterality is None


def test_array_needing_no_conversion_is_shared_not_copied():
    image = read_mammogram(U16)
    assert np.shares_memory(image.pixels, U16)


# --- overrides and the Mammogram itself ---------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, (None, None, None)),
        ({"spacing_mm": 0.1}, ((0.1, 0.1), None, None)),
        ({"spacing_mm": (0.07, 0.05)}, ((0.07, 0.05), None, None)),
        ({"spacing_mm": np.float32(0.5)}, ((0.5, 0.5), None, None)),
        ({"view": " mlo ", "laterality": "r"}, (None, "MLO", "R")),
        ({"laterality": "L"}, (None, None, "L")),
    ],
)
def test_overrides(overrides, expected):
    image = read_mammogram(U8, **overrides)
    assert (image.spacing_mm, image.view, image.laterality) == expected


def test_mammogram_input_returned_as_is_or_replaced():
    first = read_mammogram(U8, spacing_mm=0.1, view="CC", laterality="L")
    assert read_mammogram(first) is first
    second = read_mammogram(first, laterality="R")
    assert second is not first and second.laterality == "R"
    assert second.spacing_mm == (0.1, 0.1) and second.view == "CC"
    assert second.pixels is first.pixels
    assert first == first and first != second and len({first, second}) == 2  # by identity


@pytest.mark.parametrize(
    ("pixels", "bits", "shape", "max_value"),
    [
        (np.zeros((3, 5), np.uint8), 8, (3, 5), 255),
        (np.full((2, 7), 4095, np.uint16), 12, (2, 7), 4095),
        (np.zeros((1, 1), np.uint16), 16, (1, 1), 65535),
        (np.ones((4, 2), np.float32), None, (4, 2), None),
    ],
)
def test_mammogram_properties(pixels, bits, shape, max_value):
    image = Mammogram(pixels, (0.1, 0.2), "cc", "l", Path("a.png"), bits)
    assert image.shape == shape and (image.height, image.width) == shape
    assert image.max_value == max_value
    assert (image.view, image.laterality, image.source) == ("CC", "L", "a.png")
    assert image.spacing_mm == (0.1, 0.2)


def test_supported_suffixes_and_default_limit():
    assert set(SUPPORTED_SUFFIXES) == {".png", ".tif", ".tiff", ".pgm", ".jpg", ".jpeg", ".dcm"}
    assert DEFAULT_MAX_PIXELS >= 4100 * 3300


# --- write_png ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spacing", [(0.05, 0.05), (0.07, 0.07), (0.1, 0.085), (0.2, 0.3), (0.0123, 0.5)]
)
def test_write_png_spacing_round_trip(tmp_path, spacing):
    path = tmp_path / "spacing.png"
    write_png(path, U16, spacing)
    image = read_mammogram(path)
    for written, read in zip(spacing, image.spacing_mm):
        pixels_per_metre = round(1000 / written)
        assert math.isclose(read, written, rel_tol=0.5 / pixels_per_metre + 1e-12)
    np.testing.assert_array_equal(image.pixels, U16)


@pytest.mark.parametrize(
    ("pixels", "bits", "expected_bits"),
    [
        (U8, None, 8),
        (U16, None, 16),
        (gradient(np.uint16, 1023), 10, 10),
        (gradient(np.uint8, 15), 4, 4),
    ],
)
def test_write_png_bit_depth_round_trip(tmp_path, pixels, bits, expected_bits):
    path = tmp_path / "bits.png"
    write_png(str(path), pixels, bits_stored=bits)
    image = read_mammogram(path)
    assert image.bits_stored == expected_bits and image.pixels.dtype == pixels.dtype
    np.testing.assert_array_equal(image.pixels, pixels)


@pytest.mark.parametrize(
    ("pixels", "kwargs", "error", "message"),
    [
        (U16.astype(np.float32), {}, ImageDtypeError, "uint8 or uint16"),
        (np.dstack([U8, U8, U8]), {}, ImageDtypeError, "uint8 or uint16"),
        ([[1, 2]], {}, ImageDtypeError, "uint8 or uint16"),
        (np.zeros((0, 4), np.uint8), {}, EmptyImageError, "zero-size"),
        (U8, {"spacing_mm": (0.1, -0.1)}, InvalidPixelsError, "positive and finite"),
        (U8, {"spacing_mm": "wide"}, InvalidPixelsError, "a number or a"),
        (U16, {"bits_stored": 12}, InvalidPixelsError, "exceeds 4095"),
        (U8, {"bits_stored": 9}, InvalidPixelsError, "1..8"),
    ],
)
def test_write_png_refuses(tmp_path, pixels, kwargs, error, message):
    path = tmp_path / "refused.png"
    with pytest.raises(error, match=message) as caught:
        write_png(path, pixels, **kwargs)
    assert str(path) in str(caught.value)
    assert not path.exists()
