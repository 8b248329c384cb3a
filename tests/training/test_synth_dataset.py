"""End to end: ``calcsdk synth`` options -> images, COCO JSON, DICOM, ROIs; reproducible bytes."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from calcsdk.image import read_mammogram
from calcsdk.preprocess import breast_mask
from calcsdk.training.roi_dataset import load_roi_dataset
from calcsdk.training.synth import command
from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.plan import paper_counts, plan_dataset

pydicom = pytest.importorskip("pydicom")  # the [dicom] extra; installed by `make test`

SMALL = ["--spacing", "0.2", "--size", "80x100mm"]


def _run(out: Path, *extra: str) -> int:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return command.run(parser.parse_args(["--out", str(out), *SMALL, *extra]))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth20")
    assert _run(out, "--images", "20", "--seed", "5", "--film-fraction", "0.25") == 0
    return out


def test_coco_json_is_valid_and_matches_the_plan(dataset):
    from pycocotools.coco import COCO

    coco = COCO(str(dataset / "annotations.json"))
    assert {c["name"]: c["id"] for c in coco.loadCats(coco.getCatIds())} == {
        "malignant": 1,
        "benign": 2,
    }
    counts = paper_counts(20)
    plans = plan_dataset(counts, SynthConfig(spacing_mm=0.2, width_px=400, height_px=500), 5)
    assert len(coco.getImgIds()) == 20
    by_class = Counter(a["category_id"] for a in coco.dataset["annotations"])
    wanted = Counter(label for p in plans for label in p.cluster_labels)
    assert by_class == {1: wanted["malignant"], 2: wanted["benign"]}
    assert sum(by_class.values()) == counts.boxes
    malignant_images = {a["image_id"] for a in coco.dataset["annotations"] if a["category_id"] == 1}
    assert len(malignant_images) == counts.malignant_images
    for entry in coco.dataset["images"]:
        for key in (
            "spacing_mm",
            "view",
            "laterality",
            "density",
            "seed",
            "patient_id",
            "bits_stored",
        ):
            assert entry[key] is not None
    for annotation in coco.dataset["annotations"]:
        _x, _y, w, h = annotation["bbox"]
        assert (
            w > 0
            and h > 0
            and annotation["calcification_count"] == len(annotation["calcification_diameters_mm"])
        )


def test_boxes_lie_inside_the_breast_found_by_the_sdk(dataset):
    document = json.loads((dataset / "annotations.json").read_text())
    images = {i["id"]: i for i in document["images"]}
    for annotation in document["annotations"]:
        entry = images[annotation["image_id"]]
        mammogram = read_mammogram(dataset / entry["file_name"])
        assert mammogram.spacing_mm == pytest.approx((0.2, 0.2), rel=1e-3)
        assert mammogram.bits_stored == entry["bits_stored"]
        mask = breast_mask(mammogram.pixels, 0.2)
        x1, y1, x2, y2 = annotation["bbox_xyxy"]
        assert mask[int(y1) : math.ceil(y2), int(x1) : math.ceil(x2)].mean() > 0.99


def test_dicom_files_are_readable_and_match_the_png(dataset):
    document = json.loads((dataset / "annotations.json").read_text())
    for entry in document["images"][:6]:
        ds = pydicom.dcmread(dataset / entry["dicom_file"])
        film = entry["film"]
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert ds.BitsStored == entry["bits_stored"] and ds.BitsStored in (
            (8,) if film else (12, 14, 16)
        )
        assert [float(v) for v in ds.PixelSpacing] == [0.2, 0.2]
        assert ds.ViewPosition == entry["view"] and ds.ImageLaterality == entry["laterality"]
        assert ds.PatientID == entry["patient_id"] and ds.SOPInstanceUID and ds.WindowWidth > 0
        png = read_mammogram(dataset / entry["file_name"]).pixels
        assert np.array_equal(ds.pixel_array, png)


def test_rois_follow_the_papers_ratio(dataset):
    x, y, rows = load_roi_dataset(dataset / "rois", "grayscale")
    assert Counter(y.tolist()) == {0: 16, 1: 8, 2: 7}  # 31 ROIs -> 2:1:1
    assert x.shape == (31, 227, 227)
    assert all(
        (dataset / "rois" / r["binary"]).is_file() and (dataset / "rois" / r["filtered"]).is_file()
        for r in rows
    )


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    args = (
        "--images",
        "4",
        "--seed",
        "9",
        "--malignant-images",
        "1",
        "--benign-images",
        "1",
        "--boxes",
        "3",
        "--rois",
        "8",
    )
    assert _run(one, *args, "--workers", "1") == 0
    assert _run(two, *args, "--workers", "2") == 0
    first = _digest(one)
    assert len(first) == 1 + 4 * 2 + 1 + 8 * 3  # json, png+dcm per image, index, 3 files per ROI
    assert first == _digest(two)


@pytest.mark.parametrize(
    ("size", "expected"),
    [("2048x2560", (2048, 2560)), ("240x300mm", (2400, 3000)), ("80 x 100 mm", (800, 1000))],
)
def test_size_parsing(size, expected):
    assert command.parse_size(size, 0.1) == expected


@pytest.mark.parametrize("size", ["2048", "20.5x30", "axb"])
def test_bad_sizes_raise(size):
    with pytest.raises(ValueError, match="size"):
        command.parse_size(size, 0.1)
