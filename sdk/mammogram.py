"""The one image type of calcsdk: :class:`Mammogram`, validated on construction.

Frame and units, once for the whole SDK: ``pixels[row, col]`` with the origin at the top-left
pixel as stored in the file (no EXIF/DICOM orientation is applied); pixel spacing is
``(row, col)`` millimetres per pixel.  Bright means dense (the DICOM MONOCHROME2 sense).
Files and arrays become mammograms in :mod:`calcsdk.image`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from calcsdk.errors import EmptyImageError, ImageDtypeError, InvalidPixelsError

__all__ = [
    "CONTAINER_BITS",
    "PIXEL_DTYPES",
    "Mammogram",
    "check_bits_stored",
    "normalise_spacing",
    "require_finite",
]

PIXEL_DTYPES: tuple[np.dtype, ...] = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))
#: Bits of the integer pixel containers.
CONTAINER_BITS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}


@dataclass(frozen=True, eq=False)  # eq=False: compared (and hashed) by identity, not pixels
class Mammogram:
    """One grayscale mammogram, validated on construction.

    pixels: ``(H, W)`` C-contiguous ``uint8`` | ``uint16`` | ``float32``; bright = dense
        (after DICOM LUTs and MONOCHROME1 inversion).  Integer pixels lie in
        ``[0, 2**bits_stored - 1]``; float pixels are finite, of any range.
    spacing_mm: ``(row, col)`` millimetres per pixel, ``None`` when unknown.
    view: ``"CC"``, ``"MLO"``, ... upper-case, ``None`` when unknown.
    laterality: ``"L"`` | ``"R"`` | ``None``.
    source: file path (or ``ARCHIVE!/MEMBER``), ``"<bytes>"``, ``"<array>"`` or ``"<dataset>"``.
    bits_stored: significant bits of integer pixels (1..8 for uint8, 1..16 for uint16);
        ``None`` for float.  Rasters report their container depth (8/16) unless the file says
        less (PNG sBIT, PGM maxval); arrays report 8 or 16.
    sop_instance_uid: DICOM SOP Instance UID when read from DICOM.
    study_instance_uid: DICOM Study Instance UID (the exam) when read from DICOM.
    photometric_interpretation: the DICOM photometric interpretation before inversion.
    voi_transform: what the DICOM VOI stage did (``"VOI LUT"``, ``"WINDOW ..."``) or ``None``.
    """

    pixels: np.ndarray
    spacing_mm: tuple[float, float] | None
    view: str | None
    laterality: str | None
    source: str
    bits_stored: int | None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    photometric_interpretation: str | None = None
    voi_transform: str | None = None

    def __post_init__(self) -> None:
        source = str(self.source)
        pixels = self.pixels
        if not isinstance(pixels, np.ndarray):
            raise ImageDtypeError(f"pixels should be a numpy array, got {type(pixels)}", source)
        if pixels.ndim != 2:
            raise ImageDtypeError(f"pixels should be 2-D (H, W), got shape {pixels.shape}", source)
        if pixels.dtype not in PIXEL_DTYPES:
            raise ImageDtypeError(
                f"pixels should be uint8, uint16 or float32, got {pixels.dtype}", source
            )
        if pixels.size == 0:
            raise EmptyImageError(f"zero-size image of shape {pixels.shape}", source)
        if pixels.dtype.kind == "f":
            require_finite(pixels, source)
        check_bits_stored(pixels, self.bits_stored, source)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "pixels", np.ascontiguousarray(pixels))
        object.__setattr__(self, "spacing_mm", normalise_spacing(self.spacing_mm, source))
        object.__setattr__(self, "view", _normalise_view(self.view, source))
        object.__setattr__(self, "laterality", _normalise_laterality(self.laterality, source))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.pixels.shape  # type: ignore[return-value]

    @property
    def height(self) -> int:
        """Number of rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Number of columns."""
        return int(self.pixels.shape[1])

    @property
    def max_value(self) -> int | None:
        """``2**bits_stored - 1`` for integer pixels, ``None`` for float pixels."""
        return None if self.bits_stored is None else (1 << self.bits_stored) - 1


# --- field validation ---------------------------------------------------------------------
def require_finite(pixels: np.ndarray, source: str) -> None:
    finite = np.isfinite(pixels)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise InvalidPixelsError(f"{bad} pixel(s) are NaN or infinite", source)


def check_bits_stored(pixels: np.ndarray, bits_stored: Any, source: str) -> None:
    container = CONTAINER_BITS.get(pixels.dtype)
    if container is None:
        if bits_stored is not None:
            raise InvalidPixelsError(
                f"bits_stored must be None for float pixels, got {bits_stored}", source
            )
        return
    valid_int = isinstance(bits_stored, int) and not isinstance(bits_stored, bool)
    if not valid_int or not 1 <= bits_stored <= container:
        raise InvalidPixelsError(
            f"bits_stored should be an int in 1..{container} for {pixels.dtype}, "
            f"got {bits_stored!r}",
            source,
        )
    if bits_stored < container and int(pixels.max()) > (1 << bits_stored) - 1:
        raise InvalidPixelsError(
            f"pixel value {int(pixels.max())} exceeds {(1 << bits_stored) - 1}, "
            f"the maximum of bits_stored={bits_stored}",
            source,
        )


def normalise_spacing(spacing: Any, source: str) -> tuple[float, float] | None:
    """``None``, one number (square pixels) or a (row, col) pair -> (row, col) floats in mm."""
    if spacing is None:
        return None
    values = (spacing, spacing) if isinstance(spacing, (int, float, np.number)) else spacing
    try:
        row, col = (float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise InvalidPixelsError(
            f"spacing_mm should be a number or a (row, col) pair, got {spacing!r}", source
        ) from exc
    if not all(math.isfinite(v) and v > 0 for v in (row, col)):
        raise InvalidPixelsError(
            f"spacing_mm should be positive and finite, got {(row, col)}", source
        )
    return (row, col)


def _normalise_view(view: Any, source: str) -> str | None:
    if view is None:
        return None
    if not isinstance(view, str) or not view.strip():
        raise InvalidPixelsError(
            f"view should be a non-empty string such as 'CC', got {view!r}", source
        )
    return view.strip().upper()


def _normalise_laterality(laterality: Any, source: str) -> str | None:
    if laterality is None:
        return None
    value = laterality.strip().upper() if isinstance(laterality, str) else None
    if value not in ("L", "R"):
        raise InvalidPixelsError(
            f"laterality should be 'L', 'R' or None, got {laterality!r}", source
        )
    return value
