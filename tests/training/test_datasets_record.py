"""ImageRecord validation, the shared vocabulary helpers and the CSV reader of the loaders."""

from __future__ import annotations

import logging
import pickle
import subprocess
import sys

import numpy as np
import pytest

from calcsdk.training.datasets.record import (
    BENIGN,
    MALIGNANT,
    NORMAL_IMAGE,
    ImageRecord,
    SkipLog,
    normalize_column,
    normalize_density,
    normalize_laterality,
    normalize_view,
    read_csv_rows,
    records_to_ground_truth,
)


def test_record_coerces_and_freezes_arrays():
    boxes = [[1, 2, 3, 4.5]]
    record = ImageRecord("a.png", boxes, [1], spacing_mm=(0.1, 0.1), patient_id=7)
    assert record.boxes.dtype == np.float32 and record.boxes.shape == (1, 4)
    assert record.labels.dtype == np.int64
    assert record.patient_id == "7"
    assert record.class_names == ("malignant", "benign")
    with pytest.raises(ValueError):
        record.boxes[0, 0] = 9  # read-only
    source = np.array([[0.0, 0.0, 2.0, 2.0]], dtype=np.float32)
    ImageRecord("b.png", source, [0])
    source[0, 0] = 1.0  # the caller's array stays writable: the record copied it


@pytest.mark.parametrize("boxes", [[], np.zeros((0, 4)), np.zeros((0,))])
def test_record_accepts_no_boxes(boxes):
    record = ImageRecord("a.png", boxes, [])
    assert record.boxes.shape == (0, 4) and record.labels.shape == (0,)
    assert record.num_boxes == 0 and record.image_label == NORMAL_IMAGE


@pytest.mark.parametrize(
    ("boxes", "labels", "spacing", "error"),
    [
        ([1, 2, 3, 4], [0], None, ValueError),  # not (M, 4)
        ([[1, 2, 3, 4, 5]], [0], None, ValueError),
        ([[1, 2, np.nan, 4]], [0], None, ValueError),
        ([[3, 2, 3, 4]], [0], None, ValueError),  # x2 == x1
        ([[1, 5, 3, 4]], [0], None, ValueError),  # y2 < y1
        ([[-1, 2, 3, 4]], [0], None, ValueError),  # outside the image
        ([[1, 2, 3, 4]], [0, 1], None, ValueError),  # label count
        ([[1, 2, 3, 4]], [2], None, ValueError),  # not a class
        ([[1, 2, 3, 4]], [0.0], None, TypeError),
        ([[1, 2, 3, 4]], [0], (0.1, -0.1), ValueError),
        ([[1, 2, 3, 4]], [0], (0.1, 0.1, 0.1), ValueError),
    ],
)
def test_record_rejects_bad_input(boxes, labels, spacing, error):
    with pytest.raises(error):
        ImageRecord("a.png", boxes, labels, spacing_mm=spacing)


def test_record_rejects_empty_path():
    with pytest.raises(TypeError):
        ImageRecord("", [], [])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [([], NORMAL_IMAGE), ([BENIGN], BENIGN), ([BENIGN, MALIGNANT], MALIGNANT)],
)
def test_image_label(labels, expected):
    boxes = [[0, 0, 1, 1]] * len(labels)
    assert ImageRecord("a.png", boxes, labels).image_label == expected


@pytest.mark.parametrize(("patient", "expected"), [("p1", "p1"), (None, "img.png")])
def test_group_id_falls_back_to_the_image(patient, expected):
    assert ImageRecord("img.png", [], [], patient_id=patient).group_id == expected


def test_record_pickles_for_worker_processes():
    record = ImageRecord("a.png", [[0, 0, 2, 2]], [1], metadata={"view": "CC"})
    copy = pickle.loads(pickle.dumps(record))
    np.testing.assert_array_equal(copy.boxes, record.boxes)
    assert copy.metadata == {"view": "CC"}


def test_records_to_ground_truth():
    records = [ImageRecord("a.png", [[0, 0, 2, 2]], [1]), ImageRecord("b.png", [], [])]
    truths = records_to_ground_truth(records)
    assert [len(t) for t in truths] == [1, 0]
    assert tuple(truths[0].class_names) == ("malignant", "benign")
    np.testing.assert_array_equal(truths[0].labels, [1])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("L", "L"),
        ("left", "L"),
        (" RIGHT ", "R"),
        ("r", "R"),
        ("", None),
        (None, None),
        ("X", None),
    ],
)
def test_normalize_laterality(value, expected):
    assert normalize_laterality(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("cc", "CC"), ("MLO", "MLO"), ("xccl", "XCCL"), ("", None), (None, None)],
)
def test_normalize_view(value, expected):
    assert normalize_view(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("A", "A"), ("d", "D"), (1, "A"), ("3", "C"), ("4.0", "D"), ("DENSITY C", "C"),
     ("ACR 2", "B"), ("5", None), ("", None), (None, None), ("dense", None)],
)  # fmt: skip
def test_normalize_density(value, expected):
    assert normalize_density(value) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("breast_density", "breast density"), ("\ufeffPatient  ID", "patient id"), (None, "")],
)
def test_normalize_column(name, expected):
    assert normalize_column(name) == expected


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_read_csv_rows_skips_short_rows(tmp_path, caplog, delimiter):
    path = tmp_path / "a.csv"
    lines = ["\ufeffFile Name,Bi_Rads", "1, 2", "", "3", "4,5"]
    path.write_text("\n".join(line.replace(",", delimiter) for line in lines), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        rows = list(read_csv_rows(path, ["file name", "bi rads"]))
    assert rows == [
        (2, {"file name": "1", "bi rads": "2"}),
        (5, {"file name": "4", "bi rads": "5"}),
    ]
    assert f"{path}:4" in caplog.text


@pytest.mark.parametrize(("text", "match"), [("", ":1: empty"), ("a,b\n1,2\n", ":1: header lacks")])
def test_read_csv_rows_rejects_unusable_files(tmp_path, text, match):
    path = tmp_path / "a.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        list(read_csv_rows(path, ["file name"]))


def test_read_csv_rows_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_csv_rows(tmp_path / "none.csv", []))


def test_skip_log_summarises(caplog):
    log = SkipLog("image", max_logged=2)
    with caplog.at_level(logging.WARNING):
        for i in range(5):
            log.add(f"f{i}", "missing")
        log.summarize()
    assert log.count == 5
    assert "f1" in caplog.text and "f2" not in caplog.text and "5 images skipped" in caplog.text


def test_loaders_and_splits_import_without_torch_or_sklearn():
    blocker = (
        "import sys\n"
        "for name in ('torch', 'sklearn', 'scipy'):\n"
        "    sys.modules[name] = None  # any import of them now fails\n"
        "import calcsdk.training.datasets, calcsdk.training.splits\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
