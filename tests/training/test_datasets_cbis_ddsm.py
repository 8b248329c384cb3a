"""CBIS-DDSM loader on a tiny calc description CSV (real header) and PNG/DICOM ROI masks."""

from __future__ import annotations

import csv
import logging

import cv2
import numpy as np
import pytest

from calcsdk.training.datasets.cbis_ddsm import (
    default_path_resolver,
    load_cbis_ddsm,
    mask_bounding_box,
    read_mask,
)

HEADER = [
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "calc type", "calc distribution", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
]  # fmt: skip
SHAPE = (40, 60)  # rows, cols of every "full mammogram" here


def folder(patient, side, view, abnormality=None):
    name = f"Calc-Training_{patient}_{side}_{view}" + (f"_{abnormality}" if abnormality else "")
    return f"{name}/1.3.6.1.4.1.9590.100.1.2.1/1.3.6.1.4.1.9590.100.1.2.2"


def row(patient, side, view, abnormality, pathology, kind="calcification", density="3"):
    full = f"{folder(patient, side, view)}/000000.dcm"
    crop = f"{folder(patient, side, view, abnormality)}/000000.dcm"
    mask = f"{folder(patient, side, view, abnormality)}/000001.dcm"
    return [patient, density, side, view, str(abnormality), kind, "AMORPHOUS", "CLUSTERED", "4",
            pathology, "3", full, crop, mask]  # fmt: skip


def write_png(root, csv_path, pixels):
    path = root / csv_path.strip()
    path = path.with_suffix(".png")  # the files were converted: .dcm in the CSV, .png on disk
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)


def rect_mask(x1, y1, x2, y2, value=255):
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[y1:y2, x1:x2] = value
    return mask


@pytest.fixture
def cbis_root(tmp_path):
    rows = [
        row("P_00001", "LEFT", "CC", 1, "MALIGNANT"),
        row("P_00001", "LEFT", "CC", 2, "BENIGN_WITHOUT_CALLBACK"),
        row("P_00002", "RIGHT", "MLO", 1, "BENIGN", density="1"),  # crop and mask swapped
        row("P_00003", "LEFT", "MLO", 1, "UNPROVEN"),  # unknown pathology: image dropped
        row("P_00004", "RIGHT", "CC", 1, "MALIGNANT"),  # mask missing: image dropped
        row("P_00005", "LEFT", "CC", 1, "BENIGN"),  # mask path with a stray newline
        row("P_00006", "LEFT", "CC", 1, "MALIGNANT", kind="mass"),  # not a calcification
        ["P_00007"] + [""] * 13,  # no image path
    ]
    rows[5][13] += "\n"
    grey = (np.arange(SHAPE[0] * SHAPE[1]) % 200).reshape(SHAPE).astype(np.uint8)
    for r in rows[:7]:
        write_png(tmp_path, r[11], grey)  # full images
    write_png(tmp_path, rows[0][13], rect_mask(20, 10, 40, 20))
    write_png(tmp_path, rows[0][12], grey)
    write_png(tmp_path, rows[1][13], rect_mask(0, 30, 5, 40, value=1))
    write_png(tmp_path, rows[2][13], grey)  # the "mask" is the crop ...
    write_png(tmp_path, rows[2][12], rect_mask(50, 0, 60, 8))  # ... and the "crop" the mask
    write_png(tmp_path, rows[3][13], rect_mask(1, 1, 2, 2))
    write_png(tmp_path, rows[5][13], rect_mask(3, 4, 13, 9))
    write_png(tmp_path, rows[6][13], rect_mask(3, 4, 13, 9))
    with open(tmp_path / "calc_case_description_train_set.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return tmp_path


def by_patient(records):
    return {r.patient_id: r for r in records}


def test_masks_give_boxes_and_pathology_gives_class(cbis_root):
    records = by_patient(load_cbis_ddsm(cbis_root))
    assert sorted(records) == ["P_00001", "P_00002", "P_00005"]
    first = records["P_00001"]
    np.testing.assert_array_equal(first.boxes, [[20, 10, 40, 20], [0, 30, 5, 40]])
    np.testing.assert_array_equal(first.labels, [0, 1])  # BENIGN_WITHOUT_CALLBACK -> benign
    assert first.metadata["abnormality_ids"] == ("1", "2")
    assert first.metadata["density"] == "C" and first.metadata["split"] == "train"
    assert first.metadata["laterality"] == "L" and first.metadata["view"] == "CC"
    assert first.image_path.endswith("Calc-Training_P_00001_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.1/"
                                     "1.3.6.1.4.1.9590.100.1.2.2/000000.png")  # fmt: skip
    np.testing.assert_array_equal(records["P_00005"].boxes, [[3, 4, 13, 9]])


def test_swapped_crop_and_mask_paths_are_recovered(cbis_root):
    record = by_patient(load_cbis_ddsm(cbis_root))["P_00002"]
    np.testing.assert_array_equal(record.boxes, [[50, 0, 60, 8]])
    np.testing.assert_array_equal(record.labels, [1])
    assert record.metadata["density"] == "A"


def test_unusable_rows_are_skipped_with_warnings(cbis_root, caplog):
    with caplog.at_level(logging.WARNING):
        load_cbis_ddsm(cbis_root)
    csv_path = cbis_root / "calc_case_description_train_set.csv"
    assert "UNPROVEN" in caplog.text  # P_00003 dropped
    assert "no usable binary ROI mask" in caplog.text  # P_00004 dropped
    assert "abnormality type 'mass'" in caplog.text
    assert "empty image file path" in caplog.text and f"{csv_path}:" in caplog.text


def test_custom_path_resolver(cbis_root, tmp_path_factory):
    flat = tmp_path_factory.mktemp("flat")
    assert cv2.imwrite(str(flat / "full.png"), np.zeros(SHAPE, np.uint8))
    assert cv2.imwrite(str(flat / "mask.png"), rect_mask(2, 3, 4, 5))
    calls = []

    def resolver(csv_path, root, kind):
        calls.append(kind)
        return flat / ("mask.png" if kind == "roi_mask" else "full.png")

    csv_path = cbis_root / "calc_case_description_train_set.csv"
    records = load_cbis_ddsm(flat, csv_files=[csv_path], path_resolver=resolver)
    assert {"image", "roi_mask"} <= set(calls)
    assert all(r.image_path == str(flat / "full.png") for r in records)
    np.testing.assert_array_equal(records[0].boxes[0], [2, 3, 4, 5])


def test_default_resolver_tries_flattened_names(tmp_path):
    path = "Calc-Test_P_00009_LEFT_CC_1/1.2/1.3/000001.dcm"
    assert default_path_resolver(path, tmp_path, "roi_mask") is None
    (tmp_path / "Calc-Test_P_00009_LEFT_CC_1_mask.png").write_bytes(b"x")
    assert default_path_resolver(path, tmp_path, "roi_mask").name.endswith("_1_mask.png")
    assert default_path_resolver(path, tmp_path, "cropped") is None


def test_dicom_masks_are_read(tmp_path):
    pydicom = pytest.importorskip("pydicom")  # the [dicom] extra
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    mask = rect_mask(5, 6, 7, 9)
    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.Rows, dataset.Columns = mask.shape
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation, dataset.SamplesPerPixel = 7, 0, 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = mask.tobytes()
    dataset.save_as(tmp_path / "mask.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(mask_bounding_box(read_mask(tmp_path / "mask.dcm")), [5, 6, 7, 9])


def test_read_mask_rejects_garbage(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"bad\.png"):
        read_mask(tmp_path / "bad.png")


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (rect_mask(20, 10, 40, 20), [20, 10, 40, 20]),
        (rect_mask(0, 0, 1, 1, value=1).astype(bool), [0, 0, 1, 1]),
        (np.zeros(SHAPE, np.uint8), None),  # empty
        (np.full(SHAPE, 255, np.uint8), None),  # all foreground: no ROI
        ((np.arange(2400) % 7).reshape(SHAPE), None),  # grey: a crop, not a mask
        (np.zeros((4, 4, 3), np.uint8), None),  # not 2-D
        (np.zeros((0, 0), np.uint8), None),
    ],
)
def test_mask_bounding_box(mask, expected):
    box = mask_bounding_box(mask)
    if expected is None:
        assert box is None
    else:
        np.testing.assert_array_equal(box, np.array(expected, dtype=np.float32))


def test_unusable_csv_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="calc_case_description"):
        load_cbis_ddsm(tmp_path)
    (tmp_path / "calc_case_description_test_set.csv").write_text(
        "patient_id,pathology\nP_1,BENIGN\n"
    )
    with pytest.raises(ValueError, match=r"test_set\.csv:1: header lacks"):
        load_cbis_ddsm(tmp_path)
