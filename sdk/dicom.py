"""DICOM input -> :class:`~calcsdk.image.Mammogram` (pydicom >= 3, the optional ``[dicom]`` extra).

pydicom is imported inside the functions, so ``import calcsdk`` works without it; a DICOM
given to an environment without it raises :class:`UnsupportedFormatError` that says
``pip install calcsdk[dicom]``.

What happens to the pixels, in this order (PS3.3 C.11 and PS3.4 N.2):

1. Refused before decoding: no *Pixel Data* (float pixel data included), *Number of Frames*
   > 1, *Samples per Pixel* > 1 or a photometric interpretation other than MONOCHROME1/2,
   *Bits Stored* outside 1..16, *Rows* x *Columns* above ``max_pixels``, and a transfer
   syntax for which pydicom has no installed decoder (the message names the syntax).
   Also refused: an image meant FOR PROCESSING (*Presentation Intent Type*, or a "For
   Processing" SOP class): raw detector data, not the processed view the models learnt from;
   and a *Modality* that is not a projection radiograph (:data:`MODALITIES`: CT, MR, US, ...
   are refused; a missing Modality is accepted).
2. Decoded by pydicom (compressed syntaxes through pylibjpeg and friends when installed).
3. Modality stage, ``pydicom.pixels.apply_modality_lut``: *Modality LUT Sequence*, else
   *Rescale Slope/Intercept*.
4. VOI stage, the choice ``apply_voi_lut(prefer_lut=True)`` makes: the first item of the
   *VOI LUT Sequence* (``apply_voi``; modality values are first rounded and clamped to the
   LUT's input range), else the first *Window Center/Width* (``apply_windowing``, with the
   *VOI LUT Function* LINEAR, LINEAR_EXACT or SIGMOID), else nothing.
5. Back to integers of the stored bit depth ``B`` = *Bits Stored*: the stage output range
   ``[lo, hi]`` is mapped linearly onto ``[0, 2**B - 1]``, rounded half to even, clipped:
   ``out = clip(rint((v - lo) * (2**B - 1) / (hi - lo)), 0, 2**B - 1)``, where ``[lo, hi]`` is
   ``[0, 2**n - 1]`` after a VOI LUT with ``n`` bits per entry (its *LUT Descriptor*), and
   otherwise the modality output range that ``apply_windowing`` uses (stored range from
   *Bits Stored*/*Pixel Representation*, or ``[0, 2**n - 1]`` of a Modality LUT, through
   *Rescale Slope/Intercept* when present).  With no VOI stage and an identity modality
   stage, unsigned values are therefore kept exactly; signed ones are shifted by
   ``2**(B-1)``.  The result is ``uint8`` for ``B <= 8``, else ``uint16``.
6. MONOCHROME1 is inverted last: ``out = 2**B - 1 - out`` (so bright = dense).  The
   *Presentation LUT Shape* is not applied again: for DX/MG it only restates the inversion.

Metadata: spacing from *Pixel Spacing*, else *Imager Pixel Spacing* (mm, (row, col); an
unusable value is logged and ignored); view from *View Position*; laterality from
*Image Laterality*, else *Laterality* (values other than L/R give ``None``); *SOP Instance UID*
and *Study Instance UID*.
"""

from __future__ import annotations

import io
import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from calcsdk.errors import (
    CalcSdkError,
    CorruptImageError,
    UnsupportedFormatError,
)
from calcsdk.image import DEFAULT_MAX_PIXELS, Mammogram, check_pixel_count

if TYPE_CHECKING:  # pragma: no cover
    import pydicom

__all__ = ["mammogram_from_dataset", "read_dicom_bytes"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install calcsdk[dicom]"
_GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
#: Modalities read: mammography, and the projection radiographs and captures mammograms are
#: also stored as (digital radiography, computed radiography, digitised film, other).
MODALITIES = ("MG", "DX", "CR", "SC", "OT")
_FOR_PROCESSING_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.2.1": "Digital Mammography X-Ray Image - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image - For Processing",
    "1.2.840.10008.5.1.4.1.1.1.3.1": "Digital Intra-Oral X-Ray Image - For Processing",
}


def _import_pydicom(source: str):
    try:
        import pydicom
        import pydicom.pixels  # pydicom >= 3
    except ImportError as exc:
        raise UnsupportedFormatError(
            f"reading DICOM needs pydicom >= 3 and its decoders: {INSTALL_HINT}", source
        ) from exc
    return pydicom


def read_dicom_bytes(
    data: bytes, source: str, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Mammogram:
    """Parse a whole DICOM file held in memory (with or without the 128-byte preamble)."""
    pydicom = _import_pydicom(source)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        file_meta = ds.file_meta
        if "TransferSyntaxUID" not in file_meta and ds.original_encoding[0] is not None:
            # A bare dataset without file meta: its encoding was detected while parsing.
            file_meta.TransferSyntaxUID = {
                (True, True): pydicom.uid.ImplicitVRLittleEndian,
                (False, True): pydicom.uid.ExplicitVRLittleEndian,
                (False, False): pydicom.uid.ExplicitVRBigEndian,
            }.get(tuple(ds.original_encoding), pydicom.uid.ImplicitVRLittleEndian)
    except Exception as exc:  # pydicom raises many types on damaged input
        raise CorruptImageError(
            f"cannot parse DICOM ({type(exc).__name__}: {exc})", source
        ) from exc
    return mammogram_from_dataset(ds, source, max_pixels=max_pixels)


def mammogram_from_dataset(
    ds: pydicom.Dataset, source: str | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Mammogram:
    """Convert a single-frame grayscale ``pydicom.Dataset`` (see the module docstring for
    exactly what is done to the pixels).  ``source`` defaults to ``ds.filename`` or
    ``"<dataset>"``.  Every failure is a :class:`~calcsdk.errors.ImageError`."""
    if source is None:
        filename = getattr(ds, "filename", None)
        source = filename if isinstance(filename, str) and filename else "<dataset>"
    _import_pydicom(source)
    try:
        return _convert(ds, source, max_pixels)
    except CalcSdkError:
        raise
    except NotImplementedError as exc:  # pydicom: a feature it does not support
        raise UnsupportedFormatError(f"unsupported DICOM feature ({exc})", source) from exc
    except Exception as exc:  # lazily parsed elements fail on first access, with any type
        raise CorruptImageError(
            f"cannot decode DICOM ({type(exc).__name__}: {exc})", source
        ) from exc


def _convert(ds: pydicom.Dataset, source: str, max_pixels: int) -> Mammogram:
    rows, columns, bits, photometric = _check_image_module(ds, source, max_pixels)
    _check_decoder(ds, source)
    stored = _decode_pixels(ds, source)
    if stored.shape != (rows, columns):
        raise CorruptImageError(
            f"decoded pixels of shape {stored.shape}, expected ({rows}, {columns})", source
        )
    pixels, voi_transform = _presentation_values(stored, ds, bits, source)
    if photometric == "MONOCHROME1":
        pixels = np.subtract((1 << bits) - 1, pixels, dtype=pixels.dtype)
    uid, study = ds.get("SOPInstanceUID"), ds.get("StudyInstanceUID")
    return Mammogram(
        pixels=pixels,
        spacing_mm=_pixel_spacing(ds, source),
        view=_text(ds, "ViewPosition"),
        laterality=_laterality(ds),
        source=source,
        bits_stored=bits,
        sop_instance_uid=str(uid) if uid else None,
        study_instance_uid=str(study) if study else None,
        photometric_interpretation=photometric,
        voi_transform=voi_transform,
    )


def _decode_pixels(ds: pydicom.Dataset, source: str) -> np.ndarray:
    """``ds.pixel_array``, with decoder panics turned into CorruptImageError: the Rust
    plugins (pylibjpeg-rle) raise ``pyo3_runtime.PanicException``, a ``BaseException``."""
    try:
        return ds.pixel_array
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except Exception:
        raise  # handled, with the rest, by mammogram_from_dataset
    except BaseException as exc:
        raise CorruptImageError(
            f"the pixel data decoder failed ({type(exc).__name__}: {exc})", source
        ) from exc


def _check_intent(ds: pydicom.Dataset, source: str) -> None:
    """Refuse FOR PROCESSING images and modalities that are not projection radiographs."""
    sop_class = _FOR_PROCESSING_CLASSES.get(str(ds.get("SOPClassUID") or ""))
    intent = str(ds.get("PresentationIntentType") or "").strip().upper()
    if sop_class or intent == "FOR PROCESSING":
        raise UnsupportedFormatError(
            f"a FOR PROCESSING image ({sop_class or 'Presentation Intent Type'}): raw detector "
            "data; calcsdk reads the FOR PRESENTATION image a workstation displays",
            source,
        )
    modality = str(ds.get("Modality") or "").strip().upper()
    if modality and modality not in MODALITIES:
        raise UnsupportedFormatError(
            f"Modality {modality} is not a mammogram; calcsdk reads {', '.join(MODALITIES)}",
            source,
        )


def _check_image_module(ds: pydicom.Dataset, source: str, max_pixels: int):
    """Refuse what calcsdk does not read, from the header alone; -> rows, columns, bits, PI."""
    _check_intent(ds, source)
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        raise UnsupportedFormatError("float pixel data is not supported", source)
    if "PixelData" not in ds:  # pydicom silently drops elements cut short by truncation
        if "Rows" in ds or "Columns" in ds:
            raise CorruptImageError("no Pixel Data although Rows/Columns exist: truncated?", source)
        if "SOPClassUID" not in ds:
            raise CorruptImageError("no DICOM image elements could be parsed", source)
        raise UnsupportedFormatError(
            f"not an image object (SOP Class {ds.SOPClassUID}, no Pixel Data)", source
        )
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > 1:
        raise UnsupportedFormatError(
            f"multi-frame DICOM ({frames} frames); calcsdk reads one single-frame image", source
        )
    samples = int(ds.get("SamplesPerPixel") or 1)
    photometric = str(ds.get("PhotometricInterpretation") or "").strip().upper()
    if samples > 1 or photometric not in _GRAYSCALE:
        raise UnsupportedFormatError(
            f"colour DICOM (Samples per Pixel {samples}, Photometric Interpretation "
            f"{photometric or 'missing'!r}); calcsdk reads MONOCHROME1/MONOCHROME2 only",
            source,
        )
    for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored"):
        if ds.get(keyword) is None:
            raise CorruptImageError(f"required element {keyword} is missing", source)
    rows, columns = int(ds.Rows), int(ds.Columns)
    check_pixel_count(rows, columns, max_pixels, source)
    bits = int(ds.BitsStored)
    if not 1 <= bits <= min(16, int(ds.BitsAllocated)):
        raise UnsupportedFormatError(
            f"Bits Stored {bits} (Bits Allocated {ds.BitsAllocated}) is outside 1..16", source
        )
    return rows, columns, bits, photometric


def _check_decoder(ds: pydicom.Dataset, source: str) -> None:
    from pydicom.pixels import get_decoder

    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if not syntax:
        raise UnsupportedFormatError(
            "the dataset has no file_meta.TransferSyntaxUID, so its pixels cannot be decoded",
            source,
        )
    if not syntax.is_valid:
        raise CorruptImageError(f"invalid Transfer Syntax UID {str(syntax)!r}", source)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise UnsupportedFormatError(
            f"no pixel data decoder exists for transfer syntax {syntax.name} ({syntax})", source
        ) from exc
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin"
        raise UnsupportedFormatError(
            f"transfer syntax {syntax.name} ({syntax}) needs a decoder that is not installed "
            f"({missing}): {INSTALL_HINT}",
            source,
        )


# --- pixel values -------------------------------------------------------------------------
def _presentation_values(
    stored: np.ndarray, ds: pydicom.Dataset, bits: int, source: str
) -> tuple[np.ndarray, str | None]:
    """Steps 3-5 of the module docstring -> (uint8|uint16 in [0, 2**bits - 1], VOI label)."""
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

    top = (1 << bits) - 1
    dtype = np.uint8 if bits <= 8 else np.uint16
    voi = _voi_kind(ds)
    if stored.dtype.kind == "u" and voi is None and _identity_modality(ds):
        return np.minimum(stored, top).astype(dtype, copy=False), None  # values kept exactly
    values = apply_modality_lut(stored, ds)
    if voi == "lut":
        item = ds.VOILUTSequence[0]
        entries, first_mapped, entry_bits = (int(v) for v in item.LUTDescriptor)
        entries = entries or 65536
        values = np.clip(np.rint(values), first_mapped, first_mapped + entries - 1)
        values = apply_voi(values.astype(np.int64), ds)
        low, high, label = 0.0, float((1 << entry_bits) - 1), "VOI LUT"
    else:
        low, high = _modality_range(ds)
        label = None
        if voi == "window":
            values = apply_windowing(values, ds)
            function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
            center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
            label = f"WINDOW {function} center={center:g} width={width:g}"
    if not math.isfinite(high - low) or high == low:
        raise CorruptImageError(f"degenerate output range [{low}, {high}]", source)
    scaled = np.rint((np.asarray(values, np.float64) - low) * (top / (high - low)))
    return np.clip(scaled, 0, top).astype(dtype), label


def _voi_kind(ds: pydicom.Dataset) -> str | None:
    """The VOI stage ``apply_voi_lut(prefer_lut=True)`` would choose: "lut", "window", None."""
    sequence = ds.get("VOILUTSequence")
    if sequence and "LUTDescriptor" in sequence[0] and "LUTData" in sequence[0]:
        return "lut"
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return "window"
    return None


def _identity_modality(ds: pydicom.Dataset) -> bool:
    if ds.get("ModalityLUTSequence"):
        return False
    if "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
        return True
    return float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == 0.0


def _modality_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """The output range of the modality stage, exactly as ``apply_windowing`` computes it."""
    if ds.get("ModalityLUTSequence"):
        low, high = 0.0, float((1 << int(ds.ModalityLUTSequence[0].LUTDescriptor[2])) - 1)
    elif int(ds.get("PixelRepresentation") or 0) == 0:
        low, high = 0.0, float((1 << int(ds.BitsStored)) - 1)
    else:
        low, high = (
            -float(1 << (int(ds.BitsStored) - 1)),
            float((1 << (int(ds.BitsStored) - 1)) - 1),
        )
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return low, high


def _first(value: Any) -> float:
    """The first value of a possibly multi-valued DS element (the one pydicom applies)."""
    return float(value if isinstance(value, (str, float, int)) else value[0])


# --- metadata -----------------------------------------------------------------------------
def _pixel_spacing(ds: pydicom.Dataset, source: str) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            value = ds.get(keyword)
            if value is None:
                continue
            row, col = (float(v) for v in value)
            if math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0:
                return (row, col)
        except Exception:  # a damaged element is ignored like an unusable value
            value = "<unreadable>"
        logger.warning("%s: ignoring unusable %s %r", source, keyword, value)
    return None


def _text(ds: pydicom.Dataset, keyword: str) -> str | None:
    value = str(ds.get(keyword) or "").strip().upper()
    return value or None


def _laterality(ds: pydicom.Dataset) -> str | None:
    value = _text(ds, "ImageLaterality") or _text(ds, "Laterality")
    return value if value in ("L", "R") else None
