"""ROI data set writer and reader (index.csv + three representations)."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.roi_dataset import (
    INDEX_COLUMNS,
    load_roi_dataset,
    read_roi_index,
    write_roi_index,
    write_rois,
)


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    pixels = (rng.random((300, 260)) * 1000 + 1000).astype(np.uint16)
    pixels[100:104, 100:104] = 4095  # a bright speck in the first box
    return pixels


@pytest.mark.parametrize("representation", ["grayscale", "binary", "filtered"])
def test_round_trip(tmp_path, representation):
    boxes = np.array([[90, 90, 115, 120], [10, 200, 60, 260], [150, 20, 250, 80]], dtype=np.float32)
    records = write_rois(
        tmp_path,
        _image(),
        4095,
        boxes,
        ["malignant", "benign", "normal"],
        ["a", "b", "c"],
        image_id=7,
        patient_id="P1",
        density="C",
    )
    write_roi_index(tmp_path, records)
    x, y, rows = load_roi_dataset(tmp_path, representation)
    assert x.shape == (3, 227, 227) and x.dtype == np.float32 and y.dtype == np.int64
    assert y.tolist() == [0, 1, 2]
    assert 0.0 <= x.min() and x.max() <= 1.0
    if representation == "binary":
        assert set(np.unique(x)) <= {0.0, 1.0}
    else:
        assert x[0].max() == pytest.approx(1.0, abs=1e-4)  # min-max normalised ROI
    assert [r["roi_id"] for r in rows] == ["a", "b", "c"]
    assert (
        rows[1]["patient_id"] == "P1" and rows[1]["density"] == "C" and rows[1]["image_id"] == "7"
    )
    assert float(rows[0]["x2"]) == pytest.approx(115.0)


def test_empty_and_header(tmp_path):
    assert (
        write_rois(tmp_path, _image(), 4095, np.zeros((0, 4)), [], [], image_id=1, patient_id="P")
        == []
    )
    write_roi_index(tmp_path, [])
    assert read_roi_index(tmp_path) == []
    x, y, rows = load_roi_dataset(tmp_path, "grayscale")
    assert x.shape == (0, 227, 227) and y.shape == (0,) and rows == []
    header = (tmp_path / "index.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == INDEX_COLUMNS


@pytest.mark.parametrize(
    ("labels", "ids", "full_scale", "message"),
    [
        (["malignant"], ["a", "b"], 4095, "as many"),
        (["tumour", "normal"], ["a", "b"], 4095, "labels"),
        (["normal", "normal"], ["a", "b"], 0, "full_scale"),
    ],
)
def test_writer_rejects_bad_input(tmp_path, labels, ids, full_scale, message):
    boxes = np.array([[0, 0, 20, 20], [20, 20, 40, 40]], dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        write_rois(tmp_path, _image(), full_scale, boxes, labels, ids, image_id=1, patient_id="P")


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_roi_dataset(tmp_path, "grayscale")
    with pytest.raises(ValueError, match="representation"):
        load_roi_dataset(tmp_path, "colour")
    records = write_rois(
        tmp_path,
        _image(),
        4095,
        np.array([[0, 0, 30, 30]]),
        ["normal"],
        ["n"],
        image_id=1,
        patient_id="P",
    )
    write_roi_index(tmp_path, records)
    (tmp_path / "grayscale" / "n.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"n\.png"):
        load_roi_dataset(tmp_path, "grayscale")
    (tmp_path / "index.csv").write_text("roi_id,label\nx,normal\n")
    with pytest.raises(ValueError, match="missing columns"):
        load_roi_dataset(tmp_path, "binary")
