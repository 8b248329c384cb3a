"""INbreast loader on tiny OsiriX plist XMLs and a semicolon CSV exported from INbreast.xls."""

from __future__ import annotations

import logging
import plistlib

import numpy as np
import pytest

from calcsdk.training.datasets.inbreast import (
    InbreastRoi,
    cluster_boxes,
    load_inbreast,
    parse_inbreast_xml,
    single_linkage_groups,
)

MARGIN = 0.5 / 0.07  # default cluster margin in pixels
CSV = """\
Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads
removed;removed;L;CC;201001;1001;2;4c
removed;removed;R;MLO;201001;1002;3;2
removed;removed;R;CC;201001;1003;1;1
removed;removed;L;MLO;201001;1004;1;1
removed;removed;L;CC;201001;1005;4;3
removed;removed;L;CC;201001;1006;4;5
removed;removed;R;CC;201001;1007;4;6
"""
DICOM_NAMES = (  # File Name _ patient hash _ MG _ laterality _ view _ ANON, as in AllDICOMs
    "1001_aaa111_MG_L_CC_ANON",
    "1002_aaa111_MG_R_MLO_ANON",
    "1003_bbb222_MG_R_CC_ANON",
    "1004_bbb222_MG_L_MLO_ANON",
    "1005_ccc333_MG_L_CC_ANON",
    "1007_ddd444_MG_R_CC_ANON",
)


def roi(name, *points):
    return {
        "Name": name,
        "NumberOfPoints": len(points),
        "Point_px": [f"({x:.2f}, {y:.2f})" for x, y in points],
        "Point_mm": [f"({x * 0.07:.3f}, {y * 0.07:.3f}, 0)" for x, y in points],
    }


def write_xml(path, rois, height=3000, width=2000):
    image = {"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}
    if height:
        image.update(ImageHeight=height, ImageWidth=width)
    path.write_bytes(plistlib.dumps({"Images": [image]}, fmt=plistlib.FMT_XML))


@pytest.fixture
def inbreast_root(tmp_path):
    (tmp_path / "INbreast.csv").write_text(CSV)
    xml, dicoms = tmp_path / "AllXML", tmp_path / "AllDICOMs"
    xml.mkdir()
    dicoms.mkdir()
    for name in DICOM_NAMES:
        (dicoms / f"{name}.dcm").write_bytes(b"")
    # 1001: three linked calcifications (one drawn as a contour), a far pair, and a mass
    write_xml(xml / "1001.xml", [
        roi("Calcification", (100, 100)),
        roi("Calcification", (110, 105)),
        roi("Calcification", (118, 98), (122, 98), (122, 102), (118, 102)),
        roi("Calcification", (1000, 1000)),
        roi("calcification", (1010, 1000)),
        roi("Mass", (500, 500), (600, 500), (600, 600)),
    ])  # fmt: skip
    # 1002: a drawn cluster outline wins over single calcifications
    write_xml(xml / "1002.xml", [
        roi("Cluster", (300, 400), (360, 410), (340, 450)),
        roi("Calcification", (10, 10)),
        roi("Calcification", (12, 10)),
        roi("Calcification", (14, 10)),
    ])  # fmt: skip
    write_xml(xml / "1004.xml", [roi("Cluster", (30, 40), (60, 41), (40, 50))])  # BI-RADS 1
    (xml / "1005.xml").write_text("<plist><dict><key>Images</key>")  # truncated
    write_xml(xml / "1007.xml", [roi("Cluster", (1990, 2990), (2005, 3005))], 3000, 2000)
    return tmp_path  # no image for 1006; no XML for 1003 (a normal image)


def by_name(records):
    return {r.metadata["file_name"]: r for r in records}


def test_single_calcifications_are_linked_into_clusters(inbreast_root):
    record = by_name(load_inbreast(inbreast_root))["1001"]
    expected = [[100 - MARGIN, 98 - MARGIN, 122 + MARGIN, 105 + MARGIN]]
    np.testing.assert_allclose(record.boxes, np.array(expected, np.float32), rtol=1e-6)
    np.testing.assert_array_equal(record.labels, [0])  # BI-RADS 4c
    assert record.spacing_mm == (0.07, 0.07)
    assert record.metadata["density"] == "B" and record.metadata["birads"] == "4c"
    assert (record.metadata["height"], record.metadata["width"]) == (3000, 2000)


def test_drawn_clusters_win_and_birads_2_is_benign(inbreast_root):
    record = by_name(load_inbreast(inbreast_root))["1002"]
    expected = [[300 - MARGIN, 400 - MARGIN, 360 + MARGIN, 450 + MARGIN]]
    np.testing.assert_allclose(record.boxes, np.array(expected, np.float32), rtol=1e-6)
    np.testing.assert_array_equal(record.labels, [1])


def test_patients_come_from_the_dicom_names(inbreast_root):
    records = by_name(load_inbreast(inbreast_root))
    assert records["1001"].patient_id == records["1002"].patient_id == "aaa111"
    assert (
        records["1002"].metadata["laterality"] == "R" and records["1002"].metadata["view"] == "MLO"
    )


def test_normal_images_clipping_and_skips(inbreast_root, caplog):
    with caplog.at_level(logging.WARNING):
        records = by_name(load_inbreast(inbreast_root))
    assert sorted(records) == ["1001", "1002", "1003", "1007"]
    assert records["1003"].num_boxes == 0 and records["1003"].image_label == 2  # no XML
    np.testing.assert_allclose(records["1007"].boxes, [[1990 - MARGIN, 2990 - MARGIN, 2000, 3000]])
    np.testing.assert_array_equal(records["1007"].labels, [0])  # BI-RADS 6
    csv_path = inbreast_root / "INbreast.csv"
    assert f"{csv_path}:5" in caplog.text and "BI-RADS '1'" in caplog.text  # 1004 skipped
    assert "1005.xml" in caplog.text  # unreadable XML
    assert f"{csv_path}:7" in caplog.text and "no image 1006" in caplog.text


def test_missing_images_kept_when_not_checked(inbreast_root):
    records = by_name(load_inbreast(inbreast_root, check_images=False))
    assert records["1006"].image_path == str(inbreast_root / "AllDICOMs" / "1006.dcm")
    assert records["1006"].patient_id is None


@pytest.mark.parametrize(
    ("distance_mm", "min_size", "expected_boxes"),
    [(10.0, 3, 1), (10.0, 2, 2), (0.5, 3, 0), (100.0, 3, 1), (100.0, 6, 0)],
)
def test_cluster_rule_parameters(inbreast_root, distance_mm, min_size, expected_boxes):
    records = by_name(
        load_inbreast(inbreast_root, cluster_distance_mm=distance_mm, min_cluster_size=min_size)
    )
    assert records["1001"].num_boxes == expected_boxes


@pytest.mark.parametrize(
    ("points", "distance", "expected"),
    [
        ([], 10.0, []),
        ([(0, 0)], 10.0, [[0]]),
        ([(0, 0), (9, 0), (18, 0), (40, 0)], 10.0, [[0, 1, 2], [3]]),  # chaining
        ([(0, 0), (6, 8)], 10.0, [[0, 1]]),  # exactly at the distance: linked
        ([(0, 0), (6, 8.01)], 10.0, [[0], [1]]),
        ([(50, 0), (0, 0), (5, 0), (55, 1)], 6.0, [[0, 3], [1, 2]]),  # unsorted input
    ],
)
def test_single_linkage_groups(points, distance, expected):
    groups = single_linkage_groups(np.array(points, dtype=float), distance)
    assert [g.tolist() for g in groups] == expected


def test_cluster_boxes_without_calcifications():
    rois = [InbreastRoi("Mass", np.array([[1.0, 2.0], [3.0, 4.0]]))]
    assert cluster_boxes(rois).shape == (0, 4)
    with pytest.raises(ValueError, match="spacing_mm"):
        cluster_boxes(rois, spacing_mm=0)


def test_parse_real_plist_text(tmp_path):
    text = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple Computer//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Images</key>
	<array>
		<dict>
			<key>ImageIndex</key>
			<integer>0</integer>
			<key>NumberOfROIs</key>
			<integer>1</integer>
			<key>ROIs</key>
			<array>
				<dict>
					<key>Area</key>
					<real>0.0</real>
					<key>Center</key>
					<string>(2231.960000, 1769.930000, 0.000000)</string>
					<key>Name</key>
					<string>Calcification</string>
					<key>NumberOfPoints</key>
					<integer>1</integer>
					<key>Point_px</key>
					<array>
						<string>(2231.960000, 1769.930000)</string>
					</array>
				</dict>
			</array>
		</dict>
	</array>
</dict>
</plist>
"""
    (tmp_path / "a.xml").write_text(text)
    rois, size = parse_inbreast_xml(tmp_path / "a.xml")
    assert size is None and [r.kind for r in rois] == ["calcification"]
    np.testing.assert_allclose(rois[0].points_px, [[2231.96, 1769.93]])


@pytest.mark.parametrize(
    "content",
    [b"", b"<plist><dict><key>Other</key><array/></dict></plist>",
     plistlib.dumps({"Images": [{"ROIs": [{"Name": "Cluster", "Point_px": ["(1, )"]}]}]})],
)  # fmt: skip
def test_parse_rejects_unusable_xml(tmp_path, content):
    (tmp_path / "b.xml").write_bytes(content)
    with pytest.raises(ValueError, match=r"b\.xml"):
        parse_inbreast_xml(tmp_path / "b.xml")


def test_csv_without_birads_column(tmp_path):
    (tmp_path / "INbreast.csv").write_text("File Name;ACR\n1001;2\n")
    with pytest.raises(ValueError, match=r"INbreast\.csv:1"):
        load_inbreast(tmp_path)


def write_dicom_header(path, rows, columns):
    """A minimal DICOM with the given size (pixels zero), as in AllDICOMs."""
    pydicom = pytest.importorskip("pydicom")  # the [dicom] extra
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation, dataset.SamplesPerPixel = 7, 0, 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = bytes(rows * columns)
    dataset.save_as(path, enforce_file_format=True)


def test_boxes_clipped_to_the_dicom_size_when_the_xml_has_none(tmp_path):
    (tmp_path / "INbreast.csv").write_text("File Name;Bi-Rads\n2001;5\n")
    (tmp_path / "AllXML").mkdir()
    (tmp_path / "AllDICOMs").mkdir()
    write_xml(tmp_path / "AllXML" / "2001.xml", [roi("Cluster", (30, 40), (35, 45))], height=None)
    write_dicom_header(tmp_path / "AllDICOMs" / "2001_eee555_MG_L_CC_ANON.dcm", 50, 40)
    (record,) = load_inbreast(tmp_path)
    np.testing.assert_allclose(record.boxes, [[30 - MARGIN, 40 - MARGIN, 40, 50]], rtol=1e-6)
    assert (record.metadata["height"], record.metadata["width"]) == (50, 40)


def test_other_rois_without_points_are_ignored(tmp_path):
    rois = [roi("Mass"), roi("Cluster", (1, 2), (5, 6))]
    write_xml(tmp_path / "c.xml", rois)
    parsed, _ = parse_inbreast_xml(tmp_path / "c.xml")
    assert [r.kind for r in parsed] == ["cluster"]
