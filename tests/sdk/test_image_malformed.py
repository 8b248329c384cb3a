"""read_mammogram on malformed input: each failure mode is its own case, raises its own
CalcSdkError subclass, and says what went wrong and where (the file's path)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile

import calcsdk.image
import calcsdk.raster
from calcsdk.errors import (
    CalcSdkError,
    CorruptImageError,
    EmptyImageError,
    ImageDtypeError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidPixelsError,
    UnsupportedFormatError,
)
from calcsdk.image import Mammogram, read_mammogram, write_png

GRAY = (np.arange(20 * 16, dtype=np.uint16).reshape(20, 16) * 200).astype(np.uint16)
PNG = cv2.imencode(".png", GRAY)[1].tobytes()
IHDR_END = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC


def png_with_ihdr(width: int, height: int) -> bytes:
    """The valid PNG above with its IHDR dimensions replaced (CRC recomputed)."""
    ihdr = struct.pack(">II", width, height) + PNG[24:29]
    chunk = b"IHDR" + ihdr
    return (
        PNG[:8]
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + PNG[IHDR_END:]
    )


def png_with_idat_length(length: int) -> bytes:
    """The valid PNG above whose IDAT declares ``length`` bytes (OpenCV would allocate them)."""
    assert PNG[IHDR_END + 4 : IHDR_END + 8] == b"IDAT"
    return PNG[:IHDR_END] + struct.pack(">I", length) + PNG[IHDR_END + 4 :]


def tiff_with_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, GRAY)
    data = bytearray(buffer.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tiff:
        tags = tiff.pages[0].tags
        for code, value in ((256, width), (257, height)):
            offset = tags[code].valueoffset
            data[offset : offset + 4] = struct.pack("<I", value)
    return bytes(data)


def flip_byte(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0xFF
    return bytes(changed)


JPEG = cv2.imencode(".jpg", (GRAY // 256).astype(np.uint8))[1].tobytes()
TIFF = cv2.imencode(".tiff", GRAY)[1].tobytes()
COLOUR = np.dstack([GRAY // 256, GRAY // 512, 255 - GRAY // 256]).astype(np.uint8)

# (case id, file name, bytes, error class, message fragment)
FILE_CASES = [
    ("empty_file", "empty.png", b"", CorruptImageError, "empty file"),
    (
        "png_truncated_in_idat",
        "cut.png",
        PNG[: len(PNG) // 2 + IHDR_END // 2],
        CorruptImageError,
        "chunk b'IDAT' at byte 33 declares",
    ),
    (
        "png_chunk_length_bomb",
        "huge_chunk.png",
        png_with_idat_length(0xFFFFFFFF),
        CorruptImageError,
        "declares 4294967295 bytes",
    ),
    (
        "png_truncated_after_idat",
        "no_iend.png",
        PNG[:-12],
        CorruptImageError,
        "cannot decode this PNG",
    ),
    ("png_truncated_in_ihdr", "cut.png", PNG[:20], CorruptImageError, "no complete IHDR"),
    (
        "png_first_chunk_not_ihdr",
        "bad.png",
        PNG[:12] + b"IHDX" + PNG[16:],
        CorruptImageError,
        "not a 13-byte IHDR",
    ),
    (
        "png_idat_bytes_damaged",
        "crc.png",
        flip_byte(PNG, len(PNG) - 20),
        CorruptImageError,
        "cannot decode this PNG",
    ),
    (
        "png_bomb_header",
        "bomb.png",
        png_with_ihdr(100_000, 100_000),
        ImageTooLargeError,
        "exceeds max_pixels",
    ),
    ("png_zero_width_header", "zero.png", png_with_ihdr(0, 20), EmptyImageError, "zero-size"),
    (
        "png_header_disagrees_with_data",
        "lie.png",
        png_with_ihdr(16, 21),
        CorruptImageError,
        "cannot decode|header declares",
    ),
    (
        "garbage_named_png",
        "noise.png",
        bytes(range(256)) * 4,
        CorruptImageError,
        "does not start like a .png",
    ),
    (
        "unknown_format_bmp",
        "image.bmp",
        cv2.imencode(".bmp", COLOUR)[1].tobytes(),
        UnsupportedFormatError,
        "unknown image format",
    ),
    (
        "colour_png",
        "colour.png",
        cv2.imencode(".png", COLOUR)[1].tobytes(),
        UnsupportedFormatError,
        "colour image",
    ),
    (
        "colour_jpeg",
        "colour.jpg",
        cv2.imencode(".jpg", COLOUR)[1].tobytes(),
        UnsupportedFormatError,
        "colour image",
    ),
    ("tiff_truncated", "cut.tif", TIFF[:60], CorruptImageError, "TIFF"),
    (
        "tiff_bomb_header",
        "bomb.tif",
        tiff_with_size(70_000, 70_000),
        ImageTooLargeError,
        "exceeds max_pixels",
    ),
    (
        "tiff_no_directory",
        "empty.tif",
        b"II*\x00\x08\x00\x00\x00\x00\x00",
        CorruptImageError,
        "no ImageWidth",
    ),
    (
        "jpeg_truncated",
        "cut.jpg",
        JPEG[: len(JPEG) * 2 // 3],
        CorruptImageError,
        "cannot decode this JPEG",
    ),
    (
        "jpeg_without_frame_header",
        "nosof.jpg",
        JPEG[:2] + b"\xff\xd9",
        CorruptImageError,
        "no frame header",
    ),
    (
        "pgm_bad_header",
        "bad.pgm",
        b"P5\n16 x\n255\n" + bytes(320),
        CorruptImageError,
        "malformed PGM header",
    ),
    (
        "pgm_maxval_too_large",
        "deep.pgm",
        b"P5\n16 20\n70000\n" + bytes(1280),
        UnsupportedFormatError,
        "maxval 70000",
    ),
    (
        "pgm_truncated",
        "cut.pgm",
        b"P5\n16 20\n255\n" + bytes(100),
        CorruptImageError,
        "cannot decode this PGM",
    ),
    ("dicom_suffix_but_garbage", "noise.dcm", bytes(range(256)) * 2, CorruptImageError, "DICOM"),
]


@pytest.mark.parametrize(
    ("name", "data", "error", "message"),
    [case[1:] for case in FILE_CASES],
    ids=[case[0] for case in FILE_CASES],
)
def test_malformed_file(tmp_path, name, data, error, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error, match=message) as caught:
        read_mammogram(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda tmp: tmp / "missing.png", ImageNotFoundError, "no such file"),
        (lambda tmp: tmp, ImageNotFoundError, "not a regular file"),
    ],
    ids=["missing_path", "directory"],
)
def test_path_that_is_not_a_file(tmp_path, make, error, message):
    path = make(tmp_path)
    with pytest.raises(error, match=message) as caught:
        read_mammogram(path)
    assert caught.value.source == str(path)
    assert isinstance(caught.value, FileNotFoundError)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (png_with_ihdr(100_000, 100_000), ImageTooLargeError),
        (tiff_with_size(70_000, 70_000), ImageTooLargeError),
        (png_with_idat_length(0x7FFFFFFF), CorruptImageError),
    ],
    ids=["png_dimensions", "tiff_dimensions", "png_chunk_length"],
)
def test_bomb_refused_from_header_before_decoding(tmp_path, monkeypatch, data, error):
    def never(*args, **kwargs):
        raise AssertionError("the decoder must not be reached")

    monkeypatch.setattr(calcsdk.raster.cv2, "imdecode", never)
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(error):
        read_mammogram(path)


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    write_png(path, np.zeros((20, 16), np.uint8))
    monkeypatch.setattr(calcsdk.image, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(ImageTooLargeError, match=r"big\.png: file of \d+ bytes, over"):
        read_mammogram(path)


def test_max_pixels_is_configurable(tmp_path):
    path = tmp_path / "small.png"
    path.write_bytes(PNG)
    assert read_mammogram(path, max_pixels=20 * 16).shape == (20, 16)
    with pytest.raises(ImageTooLargeError, match="320 pixels exceeds max_pixels=319"):
        read_mammogram(path, max_pixels=319)


# --- arrays: (case id, array, error, message) ---------------------------------------------
NAN = np.ones((4, 4), np.float32)
NAN[1, 2] = np.nan
INF = np.zeros((4, 4))
INF[0, 0] = -np.inf
ARRAY_CASES = [
    ("nan", NAN, InvalidPixelsError, "1 pixel\\(s\\) are NaN or infinite"),
    ("inf_float64", INF, InvalidPixelsError, "NaN or infinite"),
    ("float64_overflows_float32", np.full((2, 2), 1e300), InvalidPixelsError, "overflow float32"),
    ("bool", np.ones((4, 4), bool), ImageDtypeError, "dtype bool"),
    ("complex", np.ones((4, 4), np.complex64), ImageDtypeError, "dtype complex64"),
    ("object", np.array([[1, None]], dtype=object), ImageDtypeError, "dtype object"),
    ("strings", np.array([["a", "b"]]), ImageDtypeError, "dtype <U1"),
    (
        "int64_negative",
        np.array([[-1, 5]], np.int64),
        ImageDtypeError,
        "range -1..5, outside 0..65535",
    ),
    ("int64_too_large", np.array([[0, 70_000]], np.int64), ImageDtypeError, "outside 0..65535"),
    ("int8_negative", np.array([[-3, 5]], np.int8), ImageDtypeError, "outside 0..255"),
    ("one_dimensional", np.arange(5, dtype=np.uint8), ImageDtypeError, "got shape \\(5,\\)"),
    (
        "four_dimensional",
        np.zeros((1, 2, 3, 1), np.uint8),
        ImageDtypeError,
        "got shape \\(1, 2, 3, 1\\)",
    ),
    ("two_channels", np.zeros((3, 3, 2), np.uint8), ImageDtypeError, "got shape \\(3, 3, 2\\)"),
    ("scalar", np.array(3, np.uint8), ImageDtypeError, "got shape \\(\\)"),
    ("zero_rows", np.zeros((0, 5), np.uint16), EmptyImageError, "zero-size"),
    ("zero_cols_3_channels", np.zeros((5, 0, 3), np.uint8), EmptyImageError, "zero-size"),
    ("colour_array", COLOUR, UnsupportedFormatError, "colour image"),
    ("list_not_array", [[1, 2], [3, 4]], ImageDtypeError, "got <class 'list'>"),
    ("bytes_of_no_format", b"\x89PNG", UnsupportedFormatError, "unknown image format"),
    ("empty_bytes", b"", CorruptImageError, "empty file"),
]


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [case[1:] for case in ARRAY_CASES],
    ids=[case[0] for case in ARRAY_CASES],
)
def test_malformed_array(array, error, message):
    with pytest.raises(error, match=message) as caught:
        read_mammogram(array)
    assert isinstance(caught.value, CalcSdkError)


def test_array_above_max_pixels():
    with pytest.raises(ImageTooLargeError, match="4 x 4 = 16 pixels exceeds max_pixels=15"):
        read_mammogram(np.zeros((4, 4), np.uint8), max_pixels=15)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"spacing_mm": -0.1}, InvalidPixelsError, "positive and finite"),
        ({"spacing_mm": (0.1, float("nan"))}, InvalidPixelsError, "positive and finite"),
        ({"spacing_mm": (0.1, 0.1, 0.1)}, InvalidPixelsError, "a number or a \\(row, col\\) pair"),
        ({"laterality": "X"}, InvalidPixelsError, "laterality should be 'L', 'R'"),
        ({"view": "  "}, InvalidPixelsError, "view should be a non-empty string"),
        ({"max_pixels": 0}, ValueError, "max_pixels should be a positive int"),
    ],
    ids=[
        "negative_spacing",
        "nan_spacing",
        "three_spacings",
        "bad_laterality",
        "blank_view",
        "max_pixels_0",
    ],
)
def test_invalid_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        read_mammogram(np.zeros((4, 4), np.uint8), **kwargs)


def test_mammogram_mutated_after_construction_is_revalidated():
    image = Mammogram(np.zeros((3, 3), np.float32), None, None, None, "mutated.png", None)
    image.pixels[1, 1] = np.inf
    with pytest.raises(InvalidPixelsError, match=r"mutated\.png: 1 pixel"):
        read_mammogram(image)


@pytest.mark.parametrize(
    ("pixels", "bits", "error", "message"),
    [
        (np.zeros((2, 2), np.int32), 16, ImageDtypeError, "uint8, uint16 or float32"),
        (np.zeros((2, 2, 1), np.uint8), 8, ImageDtypeError, "2-D"),
        (
            np.zeros((2, 2), np.uint8),
            None,
            InvalidPixelsError,
            "bits_stored should be an int in 1..8",
        ),
        (np.zeros((2, 2), np.float32), 8, InvalidPixelsError, "None for float"),
        (np.full((2, 2), 4096, np.uint16), 12, InvalidPixelsError, "4096 exceeds 4095"),
        (np.zeros((2, 0), np.uint16), 16, EmptyImageError, "zero-size"),
    ],
)
def test_mammogram_constructor_validates(pixels, bits, error, message):
    with pytest.raises(error, match=message):
        Mammogram(pixels, None, None, None, "<array>", bits)
