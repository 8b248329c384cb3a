"""VinDr-Mammo loader on a tiny finding_annotations.csv in the real format."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from calcsdk.training.datasets.vindr import birads_number, load_vindr, parse_finding_categories

HEADER = (
    "study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,"
    "breast_density,finding_categories,finding_birads,xmin,ymin,xmax,ymax,split"
)
ROWS = [
    # s1/i1: a calcification (BI-RADS 4) and a mass
    "s1,se1,i1,L,CC,3518,2800,BI-RADS 4,DENSITY C,\"['Suspicious Calcification']\",BI-RADS 4,"
    "10.5,20,50,60.25,training",
    "s1,se1,i1,L,CC,3518,2800,BI-RADS 4,DENSITY C,\"['Mass']\",BI-RADS 4,100,100,200,200,training",
    # s1/i2: nothing found
    "s1,se1,i2,L,MLO,3518,2800,BI-RADS 1,DENSITY C,\"['No Finding']\",,,,,,training",
    # s2/i3: mass with calcification, BI-RADS 3, box past the right edge
    "s2,se2,i3,R,CC,100,80,BI-RADS 3,DENSITY B,\"['Mass', 'Suspicious Calcification']\","
    "BI-RADS 3,60,10,95,30,test",
    # s2/i4: calcification without BI-RADS -> image dropped
    "s2,se2,i4,R,MLO,100,80,BI-RADS 3,DENSITY B,\"['Suspicious Calcification']\",,1,2,3,4,test",
    # s3/i5: calcification with a garbled box -> image dropped
    "s3,se3,i5,L,CC,100,80,BI-RADS 5,DENSITY D,\"['Suspicious Calcification']\",BI-RADS 5,"
    "abc,2,3,4,training",
    # s3/i6: fine, but no image file
    "s3,se3,i6,L,MLO,100,80,BI-RADS 2,DENSITY D,\"['Suspicious Calcification']\",BI-RADS 2,"
    "1,2,3,4,training",
    # no image id
    "s4,se4,,L,CC,100,80,BI-RADS 1,DENSITY A,\"['No Finding']\",,,,,,training",
    # too few fields
    "s5,se5,i9,L,CC",
]


@pytest.fixture
def vindr_root(tmp_path):
    (tmp_path / "finding_annotations.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    for study, image, suffix in (("s1", "i1", ".dicom"), ("s1", "i2", ".png"), ("s2", "i3", ".dcm"),
                                 ("s2", "i4", ".dicom"), ("s3", "i5", ".dicom")):  # fmt: skip
        (tmp_path / "images" / study).mkdir(parents=True, exist_ok=True)
        (tmp_path / "images" / study / f"{image}{suffix}").write_bytes(b"")
    return tmp_path


def by_image(records):
    return {r.metadata["image_id"]: r for r in records}


def test_calcification_findings_become_boxes(vindr_root):
    records = by_image(load_vindr(vindr_root))
    first = records["i1"]
    np.testing.assert_array_equal(first.boxes, np.array([[10.5, 20, 50, 60.25]], np.float32))
    np.testing.assert_array_equal(first.labels, [0])  # finding BI-RADS 4
    assert first.metadata["other_findings"] == ("Mass",)
    assert first.patient_id == "s1" and first.metadata["split"] == "training"
    assert first.metadata["density"] == "C" and first.metadata["breast_birads"] == "4"
    assert (first.metadata["height"], first.metadata["width"]) == (3518, 2800)


def test_combined_category_benign_and_clipped(vindr_root):
    record = by_image(load_vindr(vindr_root))["i3"]
    np.testing.assert_array_equal(record.boxes, [[60, 10, 80, 30]])  # x2 clipped to width 80
    np.testing.assert_array_equal(record.labels, [1])
    assert record.metadata["other_findings"] == ()
    assert record.image_path.endswith("images/s2/i3.dcm")


def test_no_finding_images_are_normal_records(vindr_root):
    record = by_image(load_vindr(vindr_root))["i2"]
    assert record.num_boxes == 0 and record.metadata["view"] == "MLO"
    assert record.image_path.endswith("i2.png")


def test_unusable_rows_and_images_are_skipped(vindr_root, caplog):
    with caplog.at_level(logging.WARNING):
        records = by_image(load_vindr(vindr_root))
    assert sorted(records) == ["i1", "i2", "i3"]
    csv_path = vindr_root / "finding_annotations.csv"
    for line, reason in ((6, "BI-RADS ''"), (7, "unusable box"), (8, "no image file"),
                         (9, "empty study_id or image_id"), (10, "fields")):  # fmt: skip
        assert f"{csv_path}:{line}" in caplog.text and reason in caplog.text


def test_unchecked_images_are_kept(vindr_root):
    records = by_image(load_vindr(vindr_root, check_images=False))
    assert records["i6"].image_path == str(vindr_root / "images" / "s3" / "i6.dicom")


def test_custom_birads_mapping(vindr_root):
    mapping = {"2": 1, "3": 0, "4": 0, "5": 0}
    record = by_image(load_vindr(vindr_root, birads_to_label=mapping))["i3"]
    np.testing.assert_array_equal(record.labels, [0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("['Suspicious Calcification']", ["Suspicious Calcification"]),
        ("['Mass', 'Suspicious Calcification']", ["Mass", "Suspicious Calcification"]),
        ("[]", []),
        ("", []),
        (
            "[Mass, 'Suspicious Calcification'",
            ["Mass", "Suspicious Calcification"],
        ),  # not a literal
    ],
)
def test_parse_finding_categories(text, expected):
    assert parse_finding_categories(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("BI-RADS 4", "4"), ("BI-RADS 4A", "4a"), ("", ""), ("BI-RADS", "")]
)
def test_birads_number(text, expected):
    assert birads_number(text) == expected


def test_csv_without_required_columns(tmp_path):
    (tmp_path / "finding_annotations.csv").write_text("study_id,image_id\ns1,i1\n")
    with pytest.raises(ValueError, match=r"finding_annotations\.csv:1"):
        load_vindr(tmp_path)
