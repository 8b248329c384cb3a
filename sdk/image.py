"""Mammogram input: PNG, TIFF, PGM, JPEG, DICOM, bytes, numpy arrays -> :class:`Mammogram`
(:mod:`calcsdk.mammogram`, which states the frame and units), and PNG output.

Rasters are decoded by OpenCV (``IMREAD_UNCHANGED``, original bit depth kept); DICOM by
:mod:`calcsdk.dicom` (pydicom, optional).  Each file is read into memory once, its format is
told by its magic bytes (the suffix only matters for a DICOM without preamble), and its header
is checked against ``max_pixels`` before any pixel is decoded.  Every failure raises a
:class:`~calcsdk.errors.ImageError` subclass whose message names the source and the reason.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from calcsdk.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageDtypeError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    InvalidPixelsError,
    UnsupportedFormatError,
)
from calcsdk.mammogram import (  # Mammogram and PIXEL_DTYPES are re-exported
    CONTAINER_BITS,
    PIXEL_DTYPES,
    Mammogram,
    check_bits_stored,
    normalise_spacing,
    require_finite,
)
from calcsdk.raster import decode_raster, detect_raster_format, encode_png, read_raster_header

if TYPE_CHECKING:  # pragma: no cover
    import pydicom

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_FILE_BYTES",
    "PIXEL_DTYPES",
    "SUPPORTED_SUFFIXES",
    "Mammogram",
    "read_mammogram",
    "read_mammogram_bytes",
    "write_png",
]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".pgm", ".jpg", ".jpeg", ".dcm")
DEFAULT_MAX_PIXELS: int = 8192 * 8192  # largest FFDM is ~3300x4100; this leaves room, no more
MAX_FILE_BYTES: int = 1 << 30  # largest file read; an 8192^2 float32 TIFF is 256 MiB
# A lossy JPEG of a gray image may decode to 3 channels that differ by a few levels (chroma
# rounding); up to this many levels per pixel it is still taken as gray.
JPEG_GRAY_TOLERANCE = 8


# --- arrays -------------------------------------------------------------------------------
def _convert_dtype(arr: np.ndarray, source: str) -> np.ndarray:
    """uint8/uint16/float32 as is; other floats -> float32; other integers -> uint8 (1-byte
    types) or uint16 when every value fits.  Float pixels must be finite."""
    if arr.dtype.kind == "f":
        require_finite(arr, source)
        if arr.dtype == np.float32:
            return arr
        with np.errstate(over="ignore"):
            converted = arr.astype(np.float32)
        if not np.isfinite(converted).all():
            raise InvalidPixelsError(f"{arr.dtype} values overflow float32", source)
        return converted
    if arr.dtype in CONTAINER_BITS:
        return arr
    target = np.uint8 if arr.dtype.itemsize == 1 else np.uint16
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high > np.iinfo(target).max:
        raise ImageDtypeError(
            f"{arr.dtype} pixels range {low}..{high}, outside 0..{np.iinfo(target).max}", source
        )
    return arr.astype(target)


def _single_channel(arr: np.ndarray, source: str, tolerance: int) -> np.ndarray:
    """(H, W) | (H, W, 1) | (H, W, 3|4) whose colour channels agree to within ``tolerance``
    levels (alpha ignored) -> (H, W).  ``arr`` is already uint8, uint16 or finite float32."""
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 1:
        return arr[:, :, 0]
    first = arr[:, :, 0]
    spread = 0.0
    for channel in (1, 2):  # max |first - other|, without leaving the dtype
        other = arr[:, :, channel]
        spread = max(spread, float((np.maximum(first, other) - np.minimum(first, other)).max()))
    if spread > tolerance:
        raise UnsupportedFormatError(
            f"colour image (channels differ by up to {spread:g}); calcsdk reads grayscale only",
            source,
        )
    if spread:  # lossy JPEG of a gray image: recover the luma the encoder started from
        return cv2.cvtColor(np.ascontiguousarray(arr[:, :, :3]), cv2.COLOR_BGR2GRAY)
    return first


def check_pixel_count(height: int, width: int, max_pixels: int, source: str) -> None:
    """Raise EmptyImageError for a zero-length axis, ImageTooLargeError above max_pixels."""
    if height <= 0 or width <= 0:
        raise EmptyImageError(f"zero-size image ({height} x {width} pixels)", source)
    if height * width > max_pixels:
        raise ImageTooLargeError(
            f"{height} x {width} = {height * width} pixels exceeds max_pixels={max_pixels}", source
        )


def _pixels_from_array(arr: Any, source: str, max_pixels: int, tolerance: int = 0) -> np.ndarray:
    """Validate and convert a caller's or a decoder's array to (H, W) uint8/uint16/float32.

    Checks, in order: a numpy array of real numbers; (H, W), (H, W, 1), (H, W, 3) or
    (H, W, 4); non-empty and at most ``max_pixels``; dtype conversion; gray channels."""
    if not isinstance(arr, np.ndarray):
        raise ImageDtypeError(f"expected a numpy array, got {type(arr)}", source)
    if arr.dtype.kind not in "uif":
        raise ImageDtypeError(
            f"pixels should be uint8, uint16 or floating point, got dtype {arr.dtype}", source
        )
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (1, 3, 4))):
        raise ImageDtypeError(
            f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, got shape {arr.shape}",
            source,
        )
    check_pixel_count(arr.shape[0], arr.shape[1], max_pixels, source)
    pixels = _single_channel(_convert_dtype(arr, source), source, tolerance)
    return np.ascontiguousarray(pixels)


def _default_bits(pixels: np.ndarray, declared: int | None = None) -> int | None:
    """Container depth, or the file's declared significant bits when the values respect it."""
    container = CONTAINER_BITS.get(pixels.dtype)
    if container is None:
        return None
    if declared is not None and 0 < declared < container:
        if int(pixels.max()) <= (1 << declared) - 1:
            return declared
        logger.info(
            "declared %d significant bits but values exceed them; using %d", declared, container
        )
    return container


# --- files --------------------------------------------------------------------------------
def _read_file(path: str) -> bytes:
    if not os.path.exists(path):
        raise ImageNotFoundError("no such file", path)
    if not os.path.isfile(path):
        raise ImageNotFoundError("not a regular file (a directory?)", path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:  # before reading: a huge file must not fill the memory
                raise ImageTooLargeError(f"file of {size} bytes, over {MAX_FILE_BYTES}", path)
            return handle.read()
    except OSError as exc:
        raise ImageError(f"cannot read the file ({exc.strerror or exc})", path) from exc


def _mammogram_from_raster(data: bytes, source: str, fmt: str, max_pixels: int) -> Mammogram:
    header = read_raster_header(data, fmt, source)
    check_pixel_count(header.height, header.width, max_pixels, source)  # before decoding: bombs
    tolerance = JPEG_GRAY_TOLERANCE if fmt == "jpeg" else 0
    pixels = _pixels_from_array(decode_raster(data, header, source), source, max_pixels, tolerance)
    bits = _default_bits(pixels, header.significant_bits)
    return Mammogram(pixels, header.spacing_mm, None, None, source, bits)


def read_mammogram_bytes(
    data: bytes, source: str, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Mammogram:
    """:func:`read_mammogram` of a whole file held in memory (an archive member, a network
    payload). ``source`` is the name errors and ``Mammogram.source`` show; as for a path, its
    suffix matters only for a DICOM without preamble (``.dcm``). Raises the same errors."""
    if not data:
        raise CorruptImageError("empty file (0 bytes)", source)
    suffix = os.path.splitext(source)[1].lower()
    is_dicom = data[128:132] == b"DICM"  # the preamble's magic, whatever the suffix
    fmt = None if is_dicom else detect_raster_format(data)
    if fmt is not None:
        return _mammogram_from_raster(data, source, fmt, max_pixels)
    if is_dicom or suffix == ".dcm":  # without preamble, only a .dcm name says DICOM
        from calcsdk.dicom import read_dicom_bytes

        return read_dicom_bytes(data, source, max_pixels=max_pixels)
    if suffix in SUPPORTED_SUFFIXES:
        raise CorruptImageError(
            f"content does not start like a {suffix} file (bad magic bytes)", source
        )
    raise UnsupportedFormatError(
        f"unknown image format (suffix {suffix or 'none'!r}); supported: "
        f"{', '.join(SUPPORTED_SUFFIXES)} and DICOM with a 'DICM' preamble",
        source,
    )


def _is_pydicom_dataset(obj: Any) -> bool:
    dataset_module = sys.modules.get("pydicom.dataset")  # no Dataset exists without it
    return dataset_module is not None and isinstance(obj, dataset_module.Dataset)


def read_mammogram(
    src: str | os.PathLike | bytes | np.ndarray | Mammogram | pydicom.Dataset,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    spacing_mm: float | tuple[float, float] | None = None,
    view: str | None = None,
    laterality: str | None = None,
) -> Mammogram:
    """Read one grayscale mammogram.

    Args:
        src: a path (PNG 8/16-bit, TIFF, PGM, JPEG, DICOM), the bytes of such a file (told by
            their magic; a DICOM needs its ``DICM`` preamble), an array (``(H, W)``,
            ``(H, W, 1)`` or gray-as-colour ``(H, W, 3|4)``; uint8, uint16, any float, or
            integers within 0..65535), a ``pydicom.Dataset``, or a :class:`Mammogram`
            (re-validated; returned unchanged when nothing is overridden).
        max_pixels: refuse images with more than this many pixels (``H * W``), checked from
            the header before decoding where the format allows (PNG, TIFF, JPEG, PGM, DICOM).
        spacing_mm: overrides/assigns the pixel spacing, in mm (one number = square pixels,
            or ``(row, col)``).
        view, laterality: override/assign the view (upper-cased) and laterality (``L``/``R``).

    Returns:
        A :class:`Mammogram` in the file's pixel frame and original bit depth.  An array
        that needs no conversion is shared, not copied.

    Raises:
        ImageNotFoundError, CorruptImageError, UnsupportedFormatError, EmptyImageError,
        InvalidPixelsError, ImageDtypeError, ImageTooLargeError (all ``CalcSdkError``).
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ValueError(f"max_pixels should be a positive int, got {max_pixels!r}")
    if isinstance(src, Mammogram):
        dataclasses.replace(src)  # re-runs the validation: its array may have been mutated
        check_pixel_count(src.height, src.width, max_pixels, src.source)
        image = src
    elif isinstance(src, np.ndarray):
        pixels = _pixels_from_array(src, "<array>", max_pixels)
        image = Mammogram(pixels, None, None, None, "<array>", _default_bits(pixels))
    elif isinstance(src, (bytes, bytearray, memoryview)):
        image = read_mammogram_bytes(bytes(src), "<bytes>", max_pixels=max_pixels)
    elif isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        image = read_mammogram_bytes(_read_file(path), path, max_pixels=max_pixels)
    elif _is_pydicom_dataset(src):
        from calcsdk.dicom import mammogram_from_dataset

        image = mammogram_from_dataset(src, max_pixels=max_pixels)
    else:
        raise ImageDtypeError(
            f"expected a path, bytes, numpy array, Mammogram or pydicom Dataset, got {type(src)}",
            "<input>",
        )
    overrides = {
        name: value
        for name, value in (("spacing_mm", spacing_mm), ("view", view), ("laterality", laterality))
        if value is not None
    }
    return dataclasses.replace(image, **overrides) if overrides else image


def write_png(
    path: str | os.PathLike,
    pixels: np.ndarray,
    spacing_mm: tuple[float, float] | None = None,
    *,
    bits_stored: int | None = None,
) -> None:
    """Write an (H, W) uint8 or uint16 image as an 8- or 16-bit grayscale PNG.

    ``spacing_mm`` ((row, col) mm per pixel, or one number) goes into the standard pHYs chunk
    as integer pixels per metre, so :func:`read_mammogram` recovers it to within that
    rounding (relative error <= 0.5 / pixels-per-metre, e.g. 5e-5 at 0.1 mm).
    ``bits_stored`` (e.g. 12 for 12-bit data in uint16) goes into the sBIT chunk and comes
    back as ``Mammogram.bits_stored``; every value must fit in it.  Values are written as they
    are, not scaled.  OS errors (missing folder, permissions) propagate as ``OSError``.
    """
    source = os.fspath(path)
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 2 or pixels.dtype not in CONTAINER_BITS:
        raise ImageDtypeError(
            "write_png takes an (H, W) uint8 or uint16 array, got "
            f"{getattr(pixels, 'dtype', type(pixels))} of shape {getattr(pixels, 'shape', None)}",
            source,
        )
    if pixels.size == 0:
        raise EmptyImageError(f"zero-size image of shape {pixels.shape}", source)
    spacing = normalise_spacing(spacing_mm, source)
    if bits_stored is not None:
        check_bits_stored(pixels, bits_stored, source)
    encoded = encode_png(pixels, spacing, bits_stored, source)
    with open(source, "wb") as handle:
        handle.write(encoded)
