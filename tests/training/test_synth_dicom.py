"""DICOM writer: valid files, the right SOP class per pixel depth, deterministic bytes."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.synth.dicom import (
    DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION,
    SECONDARY_CAPTURE,
    window_from_pixels,
    write_dicom,
)

pydicom = pytest.importorskip("pydicom")  # the [dicom] extra; installed by `make test`


def _write(path, pixels, bits, film, index=0):
    write_dicom(
        path,
        pixels,
        spacing_mm=0.07,
        bits_stored=bits,
        view="MLO",
        laterality="R",
        patient_id="SYN00001",
        seed=4,
        index=index,
        window=(1000.0, 1500.0),
        film=film,
        burned_in=True,
    )


@pytest.mark.parametrize(
    ("dtype", "bits", "film", "sop_class", "conversion"),
    [
        (np.uint16, 12, False, DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION, None),
        (np.uint16, 14, False, DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION, None),
        (np.uint8, 8, True, SECONDARY_CAPTURE, "DF"),
        (np.uint8, 8, False, SECONDARY_CAPTURE, "WSD"),
    ],
)
def test_files_are_valid_and_round_trip(tmp_path, dtype, bits, film, sop_class, conversion):
    pixels = (np.arange(48 * 40).reshape(48, 40) % (2**bits)).astype(dtype)
    _write(tmp_path / "a.dcm", pixels, bits, film)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    assert ds.SOPClassUID == sop_class and ds.file_meta.MediaStorageSOPClassUID == sop_class
    assert ds.get("ConversionType") == conversion
    assert (
        ds.BitsStored == bits
        and ds.HighBit == bits - 1
        and ds.PhotometricInterpretation == "MONOCHROME2"
    )
    assert ds.ViewPosition == "MLO" and ds.ImageLaterality == "R" and ds.PatientID == "SYN00001"
    assert [float(v) for v in ds.PixelSpacing] == [0.07, 0.07] and ds.BurnedInAnnotation == "YES"
    assert "StudyDate" not in ds and "ContentTime" not in ds  # nothing run-dependent
    assert np.array_equal(ds.pixel_array, pixels)


def test_same_inputs_same_bytes_and_distinct_uids(tmp_path):
    pixels = np.full((16, 16), 7, dtype=np.uint16)
    _write(tmp_path / "a.dcm", pixels, 12, False)
    _write(tmp_path / "b.dcm", pixels, 12, False)
    _write(tmp_path / "c.dcm", pixels, 12, False, index=1)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    first, other = pydicom.dcmread(tmp_path / "a.dcm"), pydicom.dcmread(tmp_path / "c.dcm")
    assert first.SOPInstanceUID != other.SOPInstanceUID
    assert first.StudyInstanceUID == other.StudyInstanceUID  # same patient, same study


@pytest.mark.parametrize(
    ("pixels", "film", "message"),
    [
        (np.zeros((4, 4), np.float32), False, "uint8 or uint16"),
        (np.zeros((4, 4, 3), np.uint8), True, "uint8 or uint16"),
        (np.zeros((4, 4), np.uint16), True, "8-bit"),
    ],
)
def test_bad_pixels_raise(tmp_path, pixels, film, message):
    with pytest.raises(ValueError, match=message):
        _write(tmp_path / "x.dcm", pixels, 12, film)


def test_window_covers_the_breast():
    pixels = np.zeros((40, 40), np.uint16)
    pixels[:, 20:] = np.arange(20 * 40).reshape(40, 20) % 1000 + 1000
    mask = np.zeros((40, 40), bool)
    mask[:, 20:] = True
    centre, width = window_from_pixels(pixels, mask)
    assert 1000 < centre < 2000 and 500 < width <= 1000
    assert window_from_pixels(pixels, np.zeros_like(mask))[1] > 0  # empty mask: whole image
