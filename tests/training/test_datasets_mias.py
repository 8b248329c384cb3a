"""mini-MIAS loader on a tiny Info.txt in the real format (notes on top, y origin bottom-left)."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from calcsdk.training.datasets.mias import load_mias

INFO = """\
MIAS database Info file (notes as in the real file)
1st column: MIAS database reference number.
3) ... Coordinate system origin is the bottom-left corner.

mdb001 G CIRC B 535 425 197
mdb002 G NORM
mdb209 G CALC M 647 503 87
mdb209 G CALC B 100 1000 20
mdb213 D CALC M 5 5 10
mdb219 F CALC B
mdb220 F CALC M 1 2
mdb2x0 G CALC B 1 1 1
mdb211 X CALC M 1 2 3
mdb212 D CALC Q 10 10 5
"""


@pytest.fixture
def mias_root(tmp_path):
    (tmp_path / "Info.txt").write_text(INFO)
    pixels = np.zeros((8, 8), dtype=np.uint8)
    for refnum in ("mdb001", "mdb209", "mdb213", "mdb219", "mdb220", "mdb212"):
        assert cv2.imwrite(str(tmp_path / f"{refnum}.pgm"), pixels)
    return tmp_path  # mdb002.pgm deliberately missing


def by_refnum(records):
    return {r.metadata["refnum"]: r for r in records}


def test_calc_circles_become_boxes_with_y_flipped(mias_root):
    records = by_refnum(load_mias(mias_root))
    record = records["mdb209"]
    # y_img = 1024 - 503 = 521, square of radius 87; second row: y_img = 1024 - 1000 = 24
    np.testing.assert_array_equal(
        record.boxes, np.array([[560, 434, 734, 608], [80, 4, 120, 44]], dtype=np.float32)
    )
    np.testing.assert_array_equal(record.labels, [0, 1])
    assert record.spacing_mm == (0.2, 0.2)
    assert record.image_path == str(mias_root / "mdb209.pgm")
    assert (
        record.metadata["density"] == "B"
        and record.metadata["background_tissue"] == "fatty-glandular"
    )


@pytest.mark.parametrize(
    ("x", "y", "radius", "expected"),
    [
        (512, 512, 10, [502, 502, 522, 522]),  # centre stays centre
        (100, 1000, 20, [80, 4, 120, 44]),  # near the TOP of the image in MIAS y
        (100, 24, 20, [80, 980, 120, 1020]),  # near the bottom
        (5, 5, 10, [0, 1009, 15, 1024]),  # clipped at the bottom-left corner
    ],
)
def test_y_flip_table(tmp_path, x, y, radius, expected):
    (tmp_path / "Info.txt").write_text(f"mdb010 F CALC B {x} {y} {radius}\n")
    (record,) = load_mias(tmp_path, check_images=False)
    np.testing.assert_array_equal(record.boxes, np.array([expected], dtype=np.float32))


def test_rows_without_centre_are_image_level_labels(mias_root):
    records = by_refnum(load_mias(mias_root))
    for refnum, label in (("mdb219", 1), ("mdb220", 0)):
        assert records[refnum].num_boxes == 0
        assert records[refnum].metadata["image_level_labels"] == (label,)


@pytest.mark.parametrize(
    "row", ["F CALC M 500 500 0", "F CALC M 2000 500 10", "F CALC B 500 nan 10", "F CALC B 1 x 2"]
)
def test_unusable_circles_become_image_level_labels(tmp_path, caplog, row):
    (tmp_path / "Info.txt").write_text(f"mdb010 {row}\n")
    with caplog.at_level(logging.WARNING):
        (record,) = load_mias(tmp_path, check_images=False)
    assert record.num_boxes == 0 and len(record.metadata["image_level_labels"]) == 1
    assert "without a box" in caplog.text


def test_every_listed_image_is_a_record_masses_and_normals_without_boxes(mias_root):
    records = by_refnum(load_mias(mias_root, check_images=False))
    assert sorted(records) == ["mdb001", "mdb002", "mdb209", "mdb213", "mdb219", "mdb220"]
    assert records["mdb001"].num_boxes == 0
    assert records["mdb001"].metadata["findings"][0]["abnormality"] == "CIRC"
    assert records["mdb002"].metadata["findings"][0]["abnormality"] == "NORM"


@pytest.mark.parametrize(
    ("refnum", "patient", "laterality"),
    [("mdb001", "mias-001", "R"), ("mdb002", "mias-001", "L"), ("mdb209", "mias-105", "R")],
)
def test_film_pairs_share_a_patient(mias_root, refnum, patient, laterality):
    record = by_refnum(load_mias(mias_root, check_images=False))[refnum]
    assert record.patient_id == patient
    assert record.metadata["laterality"] == laterality and record.metadata["view"] == "MLO"


def test_garbled_rows_and_missing_images_are_skipped_with_warnings(mias_root, caplog):
    with caplog.at_level(logging.WARNING):
        records = by_refnum(load_mias(mias_root))
    assert "mdb002" not in records  # no image file
    assert "mdb211" not in records and "mdb212" not in records  # their only rows were garbled
    info = mias_root / "Info.txt"
    for line, reason in ((12, "mdb2x0"), (13, "tissue"), (14, "severity"), (11, "unreadable")):
        assert f"{info}:{line}" in caplog.text and reason in caplog.text
    assert "mdb002" in caplog.text


def test_png_conversion_is_found(tmp_path):
    (tmp_path / "Info.txt").write_text("mdb004 D NORM\n")
    assert cv2.imwrite(str(tmp_path / "mdb004.png"), np.zeros((4, 4), np.uint8))
    (record,) = load_mias(tmp_path)
    assert record.image_path.endswith("mdb004.png")


@pytest.mark.parametrize(
    ("text", "error"), [(None, FileNotFoundError), ("notes only\n", ValueError)]
)
def test_unusable_info_file(tmp_path, text, error):
    if text is not None:
        (tmp_path / "Info.txt").write_text(text)
    with pytest.raises(error, match=r"Info\.txt"):
        load_mias(tmp_path)
