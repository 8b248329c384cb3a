"""DICOM output of synthetic mammograms (pydicom, imported lazily).

16-bit images are written as Digital Mammography X-Ray Image Storage - For Presentation
(MONOCHROME2, 16 bits allocated, 12/14/16 stored); 8-bit ones as Secondary Capture, with
conversion type DF (digitised film) for synthetic films and WSD otherwise (e.g. an 8-bit
background). Explicit VR little endian, uncompressed.

Deterministic: UIDs are derived from the data-set seed and the image (``generate_uid`` with
entropy sources hashes them), and no date, time or other run-dependent attribute is written,
so the same seed gives byte-identical files.
"""

from __future__ import annotations

import os

import numpy as np

DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def dicom_available() -> bool:
    """True when pydicom can be imported."""
    try:
        import pydicom  # noqa: F401
    except ImportError:
        return False
    return True


def window_from_pixels(pixels: np.ndarray, breast_mask: np.ndarray) -> tuple[float, float]:
    """Window centre and width covering the 1st-99.5th percentile of the breast pixels."""
    values = pixels[::4, ::4][breast_mask[::4, ::4]]
    if values.size == 0:
        values = pixels.ravel()
    low, high = np.percentile(values, [1.0, 99.5])
    width = max(float(high - low), 1.0)
    return round(float(low) + width / 2, 1), round(width, 1)


def write_dicom(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    spacing_mm: float,
    bits_stored: int,
    view: str,
    laterality: str,
    patient_id: str,
    seed: int,
    index: int,
    window: tuple[float, float],
    film: bool,
    burned_in: bool,
) -> None:
    """Write one image as a valid, deterministic DICOM file.

    Args:
        path: output file.
        pixels: ``(H, W)`` uint16 (FFDM) or uint8 (film or other 8-bit), MONOCHROME2.
        spacing_mm: pixel spacing (square), mm.
        bits_stored: significant bits (8 for film; 12, 14 or 16 for FFDM).
        view: ``"CC"`` or ``"MLO"``; laterality: ``"L"`` or ``"R"``.
        patient_id: synthetic patient id; seed, index: identify the image (UIDs).
        window: ``(centre, width)`` of the default VOI window.
        film: digitised film (Secondary Capture) rather than FFDM.
        burned_in: labels are burned into the pixels.

    Raises:
        ImportError: pydicom is not installed.
        ValueError: pixels not 2-D uint8/uint16, or ``film`` with 16-bit pixels.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"expected (H, W) uint8 or uint16 pixels, got {pixels.dtype} {pixels.shape}"
        )
    eight_bit = pixels.dtype == np.uint8
    if film and not eight_bit:
        raise ValueError("digitised-film images are written as 8-bit pixels")
    sop_class = SECONDARY_CAPTURE if eight_bit else DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION
    sop_instance = generate_uid(entropy_srcs=["calcsdk-synth", str(seed), "image", str(index)])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(os.fspath(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = generate_uid(
        entropy_srcs=["calcsdk-synth", str(seed), "study", patient_id]
    )
    ds.SeriesInstanceUID = generate_uid(
        entropy_srcs=["calcsdk-synth", str(seed), "series", str(index)]
    )
    ds.Modality = "MG"
    ds.Manufacturer = "calcsdk synthetic"
    ds.PatientID = patient_id
    ds.PatientName = f"SYNTHETIC^{patient_id}"
    ds.PatientSex = "F"
    ds.StudyID = patient_id
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.BodyPartExamined = "BREAST"
    ds.ImageLaterality = laterality
    ds.Laterality = laterality
    ds.ViewPosition = view
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    if eight_bit:  # Secondary Capture: digitised film, or an 8-bit image from elsewhere
        ds.ConversionType = "DF" if film else "WSD"
    ds.PixelSpacing = [f"{spacing_mm:.6g}", f"{spacing_mm:.6g}"]
    ds.ImagerPixelSpacing = [f"{spacing_mm:.6g}", f"{spacing_mm:.6g}"]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8 if eight_bit else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.WindowCenter = f"{window[0]:.1f}"
    ds.WindowWidth = f"{window[1]:.1f}"
    ds.PixelData = (
        np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<"), copy=False).tobytes()
    )
    ds.save_as(os.fspath(path), enforce_file_format=True)
