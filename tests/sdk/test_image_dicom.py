"""DICOM input: LUTs, windows and MONOCHROME1 inversion against hand-computed values;
spacing, view, laterality; compressed syntaxes; refusals with clear messages."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", minversion="3.0")  # the [dicom] extra

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)

from calcsdk.errors import (  # noqa: E402
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    UnsupportedFormatError,
)
from calcsdk.image import read_mammogram  # noqa: E402

ROW = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.uint16)


def make_dataset(pixels: np.ndarray, bits_stored: int = 12, **elements) -> Dataset:
    """A minimal single-frame MONOCHROME2 digital mammogram holding ``pixels``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


def lut_item(descriptor: list[int], data: list[int]) -> Dataset:
    item = Dataset()
    item.add_new(0x00283002, "US", descriptor)  # LUT Descriptor
    item.add_new(0x00283006, "US", data)  # LUT Data
    return item


def dicom_bytes(ds: Dataset, preamble: bool = True) -> bytes:
    buffer = io.BytesIO()
    if preamble:
        ds.save_as(buffer, enforce_file_format=True)
    else:
        ds.save_as(buffer, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


# --- pixel values: (case id, dataset, expected pixels, dtype, bits, voi label) -----------
def _value_cases():
    cases = []
    # 1. MONOCHROME2, 12 bit, nothing to apply: stored values kept exactly.
    cases.append(("plain_12bit", make_dataset(ROW * 500), ROW * 500, np.uint16, 12, None))
    # 2. MONOCHROME1, 16 bit, VOI LUT (4 entries from input 2, 16-bit entries), PixelSpacing:
    #    inputs 0,1 clamp to entry 0 (100); 2->100, 3->200, 4->300, 5->65535; 6,7 clamp to
    #    the last entry.  Output range 0..65535 = stored range, then 65535 - v.
    voi16 = make_dataset(
        ROW, 16, PhotometricInterpretation="MONOCHROME1", PixelSpacing=[0.07, 0.065]
    )
    voi16.VOILUTSequence = Sequence([lut_item([4, 2, 16], [100, 200, 300, 65535])])
    inverted = [[65435, 65435, 65435, 65335], [65235, 0, 0, 0]]
    cases.append(("mono1_16bit_voi_lut", voi16, inverted, np.uint16, 16, "VOI LUT"))
    # 3. Rescale 2x+1 then a 12-bit VOI LUT of 8 entries from input 4 (values 0, 500, ...):
    #    modality 1,3,5,7,9,11,13,15 -> clamp to 4..11 -> entries 0,0,1,3,5,7,7,7.
    rescaled = make_dataset(ROW, 12, RescaleSlope=2, RescaleIntercept=1)
    rescaled.VOILUTSequence = Sequence(
        [lut_item([8, 4, 12], [0, 500, 1000, 1500, 2000, 2500, 3000, 3500])]
    )
    cases.append(
        (
            "rescale_then_voi_lut",
            rescaled,
            [[0, 0, 500, 1500], [2500, 3500, 3500, 3500]],
            np.uint16,
            12,
            "VOI LUT",
        )
    )
    # 4. Modality LUT (16-bit entries) and no VOI: 12-bit output = rint(v * 4095 / 65535).
    modality = make_dataset(ROW[:, :4] % 4, 12)
    modality.ModalityLUTSequence = Sequence([lut_item([4, 0, 16], [0, 1000, 2000, 65535])])
    cases.append(
        (
            "modality_lut_16_to_12bit",
            modality,
            [[0, 62, 125, 4095], [0, 62, 125, 4095]],
            np.uint16,
            12,
            None,
        )
    )
    # 5-7. Windows on 12-bit data, centre 2048, width 1024, over these stored values:
    window_in = np.array([[1000, 1536, 1600, 2048], [2304, 2560, 3000, 1792]], np.uint16)
    #  LINEAR (PS3.3 C.11.2.1.2.1): c=2047.5, w=1023; x<=1536 -> 0, x>2559 -> 4095,
    #  else ((x - 2047.5) / 1023 + 0.5) * 4095: 1600 -> 256.19, 2048 -> 2049.50, 2304 -> 3074.25,
    #  1792 -> 1024.75.
    linear = make_dataset(window_in, 12, WindowCenter=2048, WindowWidth=1024)
    cases.append(
        (
            "window_linear",
            linear,
            [[0, 0, 256, 2050], [3074, 4095, 4095, 1025]],
            np.uint16,
            12,
            "WINDOW LINEAR center=2048 width=1024",
        )
    )
    #  LINEAR_EXACT: ((x - 2048) / 1024 + 0.5) * 4095: 1600 -> 255.94, 2048 -> 2047.5 (-> 2048),
    #  2304 -> 3071.25, 2560 -> 4095, 1792 -> 1023.75; x <= 1536 -> 0.
    exact = make_dataset(
        window_in, 12, WindowCenter=2048, WindowWidth=1024, VOILUTFunction="LINEAR_EXACT"
    )
    cases.append(
        (
            "window_linear_exact",
            exact,
            [[0, 0, 256, 2048], [3071, 4095, 4095, 1024]],
            np.uint16,
            12,
            "WINDOW LINEAR_EXACT center=2048 width=1024",
        )
    )
    #  SIGMOID: 4095 / (1 + exp(-4 (x - 2048) / 1024)): 1000 -> 67.17, 1536 -> 488.14,
    #  1600 -> 606.25, 2048 -> 2047.5, 2304 -> 2993.69, 2560 -> 3606.86, 3000 -> 3997.99,
    #  1792 -> 1101.32.
    sigmoid = make_dataset(
        window_in, 12, WindowCenter=2048, WindowWidth=1024, VOILUTFunction="SIGMOID"
    )
    cases.append(
        (
            "window_sigmoid",
            sigmoid,
            [[67, 488, 606, 2048], [2994, 3607, 3998, 1101]],
            np.uint16,
            12,
            "WINDOW SIGMOID center=2048 width=1024",
        )
    )
    # 8. MONOCHROME1 + LINEAR window with two alternative windows (the first applies).
    mono1 = make_dataset(
        window_in,
        12,
        WindowCenter=[2048, 100],
        WindowWidth=[1024, 10],
        PhotometricInterpretation="MONOCHROME1",
    )
    cases.append(
        (
            "mono1_window",
            mono1,
            [[4095, 4095, 3839, 2045], [1021, 0, 0, 3070]],
            np.uint16,
            12,
            "WINDOW LINEAR center=2048 width=1024",
        )
    )
    # 9. Signed 12-bit, nothing to apply: shifted by 2048 onto 0..4095.
    signed = make_dataset(np.array([[-2048, -1], [0, 2047]], np.int16), 12)
    cases.append(("signed_12bit", signed, [[0, 2047], [2048, 4095]], np.uint16, 12, None))
    # 10. Rescale alone (no VOI): linear there and back, stored values come out unchanged.
    rescale_only = make_dataset(ROW * 300, 12, RescaleSlope=2, RescaleIntercept=-100)
    cases.append(("rescale_only", rescale_only, ROW * 300, np.uint16, 12, None))
    # 11. 8-bit MONOCHROME1: uint8, 255 - v.
    eight = make_dataset(
        np.array([[0, 10], [200, 255]], np.uint8), 8, PhotometricInterpretation="MONOCHROME1"
    )
    cases.append(("mono1_8bit", eight, [[255, 245], [55, 0]], np.uint8, 8, None))
    # 12. Unused high bits of a 12-bit image are not part of the value.
    high_bits = make_dataset(np.array([[0xF000 | 7, 4095]], np.uint16), 12)
    cases.append(("unused_high_bits_masked", high_bits, [[7, 4095]], np.uint16, 12, None))
    return cases


VALUE_CASES = _value_cases()


@pytest.mark.parametrize(
    ("ds", "expected", "dtype", "bits", "voi"),
    [c[1:] for c in VALUE_CASES],
    ids=[c[0] for c in VALUE_CASES],
)
def test_presentation_values(ds, expected, dtype, bits, voi):
    image = read_mammogram(ds)
    assert image.pixels.dtype == dtype
    np.testing.assert_array_equal(image.pixels, np.asarray(expected))
    assert image.bits_stored == bits and image.max_value == 2**bits - 1
    assert image.voi_transform == voi
    assert image.photometric_interpretation == ds.PhotometricInterpretation
    assert image.source == "<dataset>"


@pytest.mark.parametrize("preamble", [True, False], ids=["with_preamble", "bare_dataset"])
def test_file_round_trip_with_metadata(tmp_path, preamble):
    ds = make_dataset(
        ROW * 100, 12, PixelSpacing=[0.07, 0.065], ViewPosition="CC", ImageLaterality="L"
    )
    path = tmp_path / "mammo.dcm"
    path.write_bytes(dicom_bytes(ds, preamble))
    image = read_mammogram(path)
    np.testing.assert_array_equal(image.pixels, ROW * 100)
    assert image.spacing_mm == (0.07, 0.065)
    assert (image.view, image.laterality) == ("CC", "L")
    assert image.sop_instance_uid == "1.2.826.0.1.3680043.10.1"
    assert image.source == str(path)


def test_dicom_detected_by_preamble_whatever_the_suffix(tmp_path):
    path = tmp_path / "IM0001"
    path.write_bytes(dicom_bytes(make_dataset(ROW)))
    np.testing.assert_array_equal(read_mammogram(path).pixels, ROW)
    bare = tmp_path / "IM0002.img"
    bare.write_bytes(dicom_bytes(make_dataset(ROW), preamble=False))
    with pytest.raises(UnsupportedFormatError, match="unknown image format"):
        read_mammogram(bare)  # no preamble and no .dcm name: nothing says DICOM


@pytest.mark.parametrize(
    ("elements", "spacing", "view", "laterality"),
    [
        (
            {"PixelSpacing": [0.1, 0.1], "ImagerPixelSpacing": [0.085, 0.085]},
            (0.1, 0.1),
            None,
            None,
        ),
        ({"ImagerPixelSpacing": [0.085, 0.09]}, (0.085, 0.09), None, None),
        ({"PixelSpacing": [0, 0.1], "ImagerPixelSpacing": [0.05, 0.05]}, (0.05, 0.05), None, None),
        ({"PixelSpacing": [0.1]}, None, None, None),
        ({"ViewPosition": "MLO", "ImageLaterality": "R", "Laterality": "L"}, None, "MLO", "R"),
        ({"Laterality": "L"}, None, None, "L"),
        ({"ImageLaterality": "B"}, None, None, None),
        ({"ViewPosition": ""}, None, None, None),
    ],
    ids=[
        "pixel_spacing_first",
        "imager_fallback",
        "invalid_pixel_spacing_skipped",
        "one_value_ignored",
        "view_and_image_laterality",
        "series_laterality_fallback",
        "both_breasts",
        "empty_view",
    ],
)
def test_metadata(elements, spacing, view, laterality):
    image = read_mammogram(make_dataset(ROW, **elements))
    assert image.spacing_mm == (pytest.approx(spacing) if spacing else None)
    assert (image.view, image.laterality) == (view, laterality)


def test_instance_and_study_uids():
    image = read_mammogram(make_dataset(ROW, StudyInstanceUID="1.2.826.0.1.3680043.10.7"))
    assert image.sop_instance_uid == "1.2.826.0.1.3680043.10.1"
    assert image.study_instance_uid == "1.2.826.0.1.3680043.10.7"
    assert read_mammogram(make_dataset(ROW)).study_instance_uid is None


# --- compressed syntaxes ------------------------------------------------------------------
def test_rle_lossless_round_trip(tmp_path):
    pixels = (np.arange(32 * 24, dtype=np.uint16).reshape(32, 24) * 5) % 4096
    ds = make_dataset(pixels, 12)
    ds.compress(RLELossless)
    path = tmp_path / "rle.dcm"
    path.write_bytes(dicom_bytes(ds))
    image = read_mammogram(path)
    np.testing.assert_array_equal(image.pixels, pixels)
    assert image.pixels.dtype == np.uint16


def test_jpeg_baseline_decodes_through_plugins(tmp_path):
    rows, cols = np.indices((32, 40))
    pixels = (30 + 3 * rows + 2 * cols).astype(np.uint8)
    jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    ds = make_dataset(pixels, 8)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"
    path = tmp_path / "jpeg.dcm"
    path.write_bytes(dicom_bytes(ds))
    image = read_mammogram(path)
    assert image.pixels.dtype == np.uint8 and image.shape == pixels.shape
    assert np.abs(image.pixels.astype(int) - pixels).max() <= 3


def test_transfer_syntax_without_any_decoder():
    ds = make_dataset(ROW)
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2 video
    ds.PixelData = encapsulate([b"\x00" * 16])
    with pytest.raises(UnsupportedFormatError, match=r"MPEG2 .*\(1\.2\.840\.10008\.1\.2\.4\.100\)"):
        read_mammogram(ds)


def test_decoder_plugin_not_installed(monkeypatch):
    class Unavailable:
        is_available = False
        missing_dependencies = ("pylibjpeg - requires pylibjpeg-rle",)

    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: Unavailable())
    ds = make_dataset(ROW)
    ds.compress(RLELossless)
    with pytest.raises(
        UnsupportedFormatError, match=r"RLE Lossless .*pip install calcsdk\[dicom\]"
    ):
        read_mammogram(ds)


def test_pydicom_missing_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "needs_pydicom.dcm"
    path.write_bytes(dicom_bytes(make_dataset(ROW)))
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom -> ImportError
    with pytest.raises(UnsupportedFormatError, match=r"pip install calcsdk\[dicom\]") as caught:
        read_mammogram(path)
    assert caught.value.source == str(path)


# --- refusals: (case id, dataset modifier, error, message) --------------------------------
def _multi_frame(ds):
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2


def _rgb(ds):
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = ds.PixelData * 3


def _drop(keyword):
    return lambda ds: delattr(ds, keyword)


def _set(**elements):
    return lambda ds: [setattr(ds, k, v) for k, v in elements.items()]


def _no_transfer_syntax(ds):
    del ds.file_meta.TransferSyntaxUID


def _invalid_transfer_syntax(ds):
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.x")


def _short_pixel_data(ds):
    ds.PixelData = ds.PixelData[:6]


REFUSALS = [
    ("multi_frame", _multi_frame, UnsupportedFormatError, "multi-frame DICOM \\(2 frames\\)"),
    ("rgb", _rgb, UnsupportedFormatError, "colour DICOM \\(Samples per Pixel 3"),
    (
        "palette_colour",
        _set(PhotometricInterpretation="PALETTE COLOR"),
        UnsupportedFormatError,
        "'PALETTE COLOR'",
    ),
    (
        "bits_stored_32",
        _set(BitsAllocated=32, BitsStored=32, HighBit=31),
        UnsupportedFormatError,
        "Bits Stored 32",
    ),
    (
        "no_pixel_data_not_an_image",
        lambda ds: [delattr(ds, k) for k in ("PixelData", "Rows", "Columns")],
        UnsupportedFormatError,
        "not an image object",
    ),
    (
        "pixel_data_missing_truncated",
        _drop("PixelData"),
        CorruptImageError,
        "no Pixel Data although Rows/Columns",
    ),
    ("rows_missing", _drop("Rows"), CorruptImageError, "required element Rows is missing"),
    ("zero_rows", _set(Rows=0), EmptyImageError, "zero-size"),
    (
        "bomb_rows_columns",
        _set(Rows=60000, Columns=60000),
        ImageTooLargeError,
        "exceeds max_pixels",
    ),
    (
        "pixel_data_too_short",
        _short_pixel_data,
        CorruptImageError,
        "pixel data is less than expected",
    ),
    (
        "invalid_transfer_syntax",
        _invalid_transfer_syntax,
        CorruptImageError,
        "invalid Transfer Syntax UID '1.2.840.10008.1.2.x'",
    ),
    ("no_transfer_syntax", _no_transfer_syntax, UnsupportedFormatError, "TransferSyntaxUID"),
    ("window_width_zero", _set(WindowCenter=10, WindowWidth=0), CorruptImageError, "Window Width"),
    (
        "for_processing_intent",
        _set(PresentationIntentType="FOR PROCESSING"),
        UnsupportedFormatError,
        "a FOR PROCESSING image \\(Presentation Intent Type\\)",
    ),
    (
        "for_processing_class",
        _set(SOPClassUID="1.2.840.10008.5.1.4.1.1.1.2.1"),
        UnsupportedFormatError,
        "Digital Mammography X-Ray Image - For Processing",
    ),
    ("modality_ct", _set(Modality="CT"), UnsupportedFormatError, "Modality CT is not a mammogram"),
]


@pytest.mark.parametrize(
    "elements",
    [{}, {"Modality": "MG", "PresentationIntentType": "FOR PRESENTATION"}, {"Modality": "DX"}],
)
def test_presentation_images_of_projection_modalities_are_read(elements):
    assert read_mammogram(make_dataset(ROW, **elements)).shape == ROW.shape


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the invalid UID
@pytest.mark.parametrize(
    ("modify", "error", "message"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusals(modify, error, message):
    ds = make_dataset(ROW)
    modify(ds)
    with pytest.raises(error, match=message) as caught:
        read_mammogram(ds)
    assert caught.value.source == "<dataset>"


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.98], ids=["half", "in_pixel_data", "last_bytes"])
def test_truncated_file_is_corrupt(tmp_path, cut):
    data = dicom_bytes(make_dataset(np.zeros((16, 16), np.uint16) + ROW[0, 3]))
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CorruptImageError) as caught:
        read_mammogram(path)
    assert caught.value.source == str(path)


def test_dataset_source_is_its_filename(tmp_path):
    path = tmp_path / "named.dcm"
    path.write_bytes(dicom_bytes(make_dataset(ROW)))
    ds = pydicom.dcmread(path)
    assert read_mammogram(ds).source == str(Path(path))
