"""Raster files at the byte level: magic, headers, OpenCV decoding, PNG encoding.

PNG chunks (IHDR, pHYs, sBIT) are read and written here; it also reads the
few header fields calcsdk needs from TIFF, JPEG and PGM files, so that
:func:`calcsdk.image.read_mammogram` can refuse a decompression bomb from its declared size
before any pixel is decoded, and can recover the pixel spacing stored in the file.  It holds
the only calls to ``cv2.imdecode``/``cv2.imencode`` of the SDK's image input.

Conventions: ``width`` is the number of columns, ``height`` the number of rows; spacing is
``(row, col)`` in millimetres per pixel, i.e. ``(y, x)``.  Every malformed header raises
:class:`~calcsdk.errors.CorruptImageError` naming the source.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from calcsdk.errors import CorruptImageError, UnsupportedFormatError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MM_PER_INCH = 25.4
_MM_PER_CM = 10.0
_MM_PER_METRE = 1000.0


@dataclass(frozen=True)
class RasterHeader:
    """What a raster file declares about itself.

    ``spacing_mm`` is ``(row, col)`` millimetres per pixel, ``None`` when the file has no
    physical resolution.  ``significant_bits`` is the number of meaningful bits per sample
    when the file states it (PNG sBIT, PGM maxval), else ``None``.
    """

    format: str  # "png" | "tiff" | "jpeg" | "pgm"
    width: int
    height: int
    spacing_mm: tuple[float, float] | None = None
    significant_bits: int | None = None


def detect_raster_format(data: bytes) -> str | None:
    """Name the raster format of ``data`` from its magic bytes, or ``None`` if not a raster."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:2] in (b"P2", b"P5"):
        return "pgm"
    return None


def read_raster_header(data: bytes, fmt: str, source: str) -> RasterHeader:
    """Parse the header of ``data`` (a whole file held in memory) as format ``fmt``."""
    readers = {"png": _png_header, "tiff": _tiff_header, "jpeg": _jpeg_header, "pgm": _pgm_header}
    try:
        return readers[fmt](data, source)
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        raise CorruptImageError(f"malformed {fmt.upper()} header ({exc})", source) from exc


def decode_raster(data: bytes, header: RasterHeader, source: str) -> np.ndarray:
    """Decode ``data`` with OpenCV (``IMREAD_UNCHANGED``: bit depth and channels as stored)
    into ``(H, W)`` or ``(H, W, C)`` (BGR[A]) and check it against ``header``."""
    name = header.format.upper()
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise CorruptImageError(f"OpenCV cannot decode this {name} ({exc.err})", source) from exc
    if decoded is None:
        raise CorruptImageError(f"OpenCV cannot decode this {name} (truncated or damaged)", source)
    if decoded.shape[:2] != (header.height, header.width):
        raise CorruptImageError(
            f"decoded {decoded.shape[:2]} pixels but the header declares "
            f"{(header.height, header.width)}",
            source,
        )
    return decoded


def _spacing_from_density(
    per_unit_x: float, per_unit_y: float, mm_per_unit: float
) -> tuple[float, float] | None:
    """(row, col) spacing in mm from pixels-per-unit densities; None if either is unusable."""
    if not (per_unit_x > 0 and per_unit_y > 0):
        return None
    spacing = (mm_per_unit / per_unit_y, mm_per_unit / per_unit_x)
    return spacing if all(math.isfinite(s) and s > 0 for s in spacing) else None


# --- PNG ----------------------------------------------------------------------------------
def _png_header(data: bytes, source: str) -> RasterHeader:
    """IHDR, plus pHYs and sBIT before IDAT.  Every chunk length is checked against the bytes
    that remain: OpenCV allocates what a chunk declares (up to 4 GiB for a 100-byte file)."""
    if len(data) < len(PNG_SIGNATURE) + 25:
        raise CorruptImageError("truncated PNG: no complete IHDR chunk", source)
    length, kind = struct.unpack_from(">I4s", data, len(PNG_SIGNATURE))
    if kind != b"IHDR" or length != 13:
        raise CorruptImageError("malformed PNG: the first chunk is not a 13-byte IHDR", source)
    width, height, bit_depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    spacing, significant, before_idat = None, None, True
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data) and kind != b"IEND":
        length, kind = struct.unpack_from(">I4s", data, offset)
        if offset + 12 + length > len(data):
            raise CorruptImageError(
                f"truncated or damaged PNG: chunk {kind!r} at byte {offset} declares {length} "
                f"bytes, {max(len(data) - offset - 12, 0)} remain",
                source,
            )
        payload = data[offset + 8 : offset + 8 + length]
        before_idat = before_idat and kind != b"IDAT"
        if before_idat and kind == b"pHYs" and length == 9:
            ppu_x, ppu_y, unit = struct.unpack(">IIB", payload)
            if unit == 1:  # 1 = pixels per metre; 0 = aspect ratio only
                spacing = _spacing_from_density(ppu_x, ppu_y, _MM_PER_METRE)
        elif before_idat and kind == b"sBIT" and payload and 0 < payload[0] <= bit_depth:
            if colour_type in (0, 4) or len(set(payload[:3])) == 1:
                significant = payload[0]
        offset += 12 + length
    return RasterHeader("png", width, height, spacing, significant)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(
    pixels: np.ndarray,
    spacing_mm: tuple[float, float] | None,
    significant_bits: int | None,
    source: str,
) -> bytes:
    """Encode an (H, W) uint8/uint16 array as a grayscale PNG, with pHYs (``spacing_mm``,
    (row, col) mm -> integer pixels per metre) and sBIT (significant bits) after IHDR."""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:  # pragma: no cover - OpenCV encodes any (H, W) uint8/uint16 array
        raise CorruptImageError("OpenCV could not encode the PNG", source)
    png = encoded.tobytes()
    extra = b""
    if spacing_mm is not None:
        ppm_y, ppm_x = (round(_MM_PER_METRE / s) for s in spacing_mm)
        extra += _png_chunk(b"pHYs", struct.pack(">IIB", ppm_x, ppm_y, 1))
    if significant_bits is not None:
        extra += _png_chunk(b"sBIT", bytes([significant_bits]))
    ihdr_end = len(PNG_SIGNATURE) + 12 + 13
    return png[:ihdr_end] + extra + png[ihdr_end:]


# --- TIFF (classic and BigTIFF, first image file directory only) -------------------------
_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 5: "II", 16: "Q"}  # BYTE SHORT LONG RATIONAL LONG8


def _tiff_header(data: bytes, source: str) -> RasterHeader:
    endian = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(endian + "H", data, 2)[0] == 43
    if big:
        first_ifd = struct.unpack_from(endian + "Q", data, 8)[0]
        count_fmt, entry_size, inline, offset_fmt = "Q", 20, 8, "Q"
    else:
        first_ifd = struct.unpack_from(endian + "I", data, 4)[0]
        count_fmt, entry_size, inline, offset_fmt = "H", 12, 4, "I"
    entries = struct.unpack_from(endian + count_fmt, data, first_ifd)[0]
    start = first_ifd + struct.calcsize(count_fmt)
    if start + entries * entry_size > len(data):
        raise CorruptImageError("truncated TIFF: the first directory runs past the end", source)
    tags: dict[int, tuple] = {}
    for i in range(entries):
        pos = start + i * entry_size
        tag, kind = struct.unpack_from(endian + "HH", data, pos)
        count = struct.unpack_from(endian + offset_fmt, data, pos + 4)[0]
        if tag not in (256, 257, 282, 283, 296) or kind not in _TIFF_TYPES or count != 1:
            continue
        fmt = endian + _TIFF_TYPES[kind]
        value_pos = pos + 4 + struct.calcsize(offset_fmt)
        if struct.calcsize(fmt) > inline:
            value_pos = struct.unpack_from(endian + offset_fmt, data, value_pos)[0]
        tags[tag] = struct.unpack_from(fmt, data, value_pos)
    if 256 not in tags or 257 not in tags:
        raise CorruptImageError("malformed TIFF: no ImageWidth/ImageLength tag", source)
    return RasterHeader("tiff", tags[256][0], tags[257][0], _tiff_spacing(tags))


def _tiff_spacing(tags: dict[int, tuple]) -> tuple[float, float] | None:
    """XResolution/YResolution are pixels per ResolutionUnit (1 none, 2 inch (default), 3 cm)."""
    if 282 not in tags or 283 not in tags:
        return None
    unit = tags.get(296, (2,))[0]
    mm_per_unit = {2: _MM_PER_INCH, 3: _MM_PER_CM}.get(unit)
    if mm_per_unit is None:
        return None

    def rational(value: tuple) -> float:
        return value[0] / value[1] if value[1] else 0.0

    return _spacing_from_density(rational(tags[282]), rational(tags[283]), mm_per_unit)


# --- JPEG ---------------------------------------------------------------------------------
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_header(data: bytes, source: str) -> RasterHeader:
    offset, spacing = 2, None
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise CorruptImageError(f"malformed JPEG: no marker at byte {offset}", source)
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack_from(">H", data, offset + 2)
        segment = data[offset + 4 : offset + 2 + length]
        if marker == 0xE0 and segment[:5] == b"JFIF\x00" and len(segment) >= 12:
            unit, density_x, density_y = struct.unpack_from(">BHH", segment, 7)
            mm_per_unit = {1: _MM_PER_INCH, 2: _MM_PER_CM}.get(unit)
            if mm_per_unit is not None:
                spacing = _spacing_from_density(density_x, density_y, mm_per_unit)
        elif marker in _SOF_MARKERS:
            _precision, height, width = struct.unpack_from(">BHH", segment, 0)
            return RasterHeader("jpeg", width, height, spacing)
        elif marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            break
        offset += 2 + length
    raise CorruptImageError("malformed or truncated JPEG: no frame header (SOF)", source)


# --- PGM (binary P5 and ASCII P2) ---------------------------------------------------------
def _pgm_header(data: bytes, source: str) -> RasterHeader:
    tokens: list[int] = []
    pos = 2
    while len(tokens) < 3:
        while pos < len(data) and (data[pos : pos + 1].isspace() or data[pos] == ord("#")):
            if data[pos] == ord("#"):  # comment to end of line
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end
            pos += 1
        start = pos
        while pos < len(data) and data[pos : pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise CorruptImageError("malformed PGM header: expected width height maxval", source)
        tokens.append(int(data[start:pos]))
    width, height, maxval = tokens
    if not 0 < maxval < 65536:
        raise UnsupportedFormatError(f"PGM maxval {maxval} is outside 1..65535", source)
    return RasterHeader("pgm", width, height, None, maxval.bit_length())
