"""Generic COCO-JSON loader: xywh -> xyxy, category names, carried image fields, skips."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from calcsdk.training.datasets.coco import load_coco

CATEGORIES = [
    {"id": 1, "name": "Malignant"},
    {"id": 2, "name": "BENIGN"},
    {"id": 3, "name": "mass"},
]


def write_coco(root, images, annotations, categories=CATEGORIES, touch=True):
    for image in images:
        if touch and image.get("file_name"):
            path = root / image["file_name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    path = root / "annotations.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def image(image_id, **extra):
    return {"id": image_id, "file_name": f"img/{image_id}.png", "width": 100, "height": 80, **extra}


def ann(image_id, category, bbox):
    return {"id": 0, "image_id": image_id, "category_id": category, "bbox": bbox}


def test_boxes_labels_and_carried_fields(tmp_path):
    images = [image(1, spacing_mm=0.1, patient_id=7, view="cc", laterality="left", density=2,
                    synthetic_seed=3, source="synthetic"), image(2)]  # fmt: skip
    annotations = [ann(1, 1, [10, 20, 5, 6]), ann(1, 2, [90, 70, 20, 20]), ann(1, 3, [0, 0, 9, 9])]
    records = load_coco(write_coco(tmp_path, images, annotations))
    first, second = records
    np.testing.assert_array_equal(first.boxes, [[10, 20, 15, 26], [90, 70, 100, 80]])  # clipped
    np.testing.assert_array_equal(first.labels, [0, 1])  # the mass is not a class: ignored
    assert first.spacing_mm == (0.1, 0.1) and first.patient_id == "7"
    assert first.image_path == str(tmp_path / "img" / "1.png")
    meta = first.metadata
    assert (meta["view"], meta["laterality"], meta["density"]) == ("CC", "L", "B")
    assert meta["synthetic_seed"] == 3 and meta["coco_image_id"] == 1
    assert meta["source"] == "coco" and meta["image_source"] == "synthetic"
    assert second.num_boxes == 0 and second.patient_id is None and second.spacing_mm is None


@pytest.mark.parametrize(
    ("spacing", "expected"),
    [(0.05, (0.05, 0.05)), ([0.1, 0.2], (0.1, 0.2)), ("0.07", (0.07, 0.07)), ("bad", None),
     (-0.1, None), ([0.1, 0.2, 0.3], None), ([], None), (None, None)],
)  # fmt: skip
def test_spacing_forms(tmp_path, spacing, expected):
    records = load_coco(write_coco(tmp_path, [image(1, spacing_mm=spacing)], []))
    assert records[0].spacing_mm == expected


def test_category_map(tmp_path):
    categories = [
        {"id": 5, "name": "calc-m"},
        {"id": 6, "name": "calc-b"},
        {"id": 7, "name": "mass"},
    ]
    annotations = [ann(1, 5, [1, 1, 2, 2]), ann(1, 6, [3, 3, 2, 2]), ann(1, 7, [5, 5, 2, 2])]
    path = write_coco(tmp_path, [image(1)], annotations, categories)
    mapping = {"CALC-M": "malignant", "calc-b": 1, "mass": None}
    (record,) = load_coco(path, category_map=mapping)
    np.testing.assert_array_equal(record.labels, [0, 1])
    with pytest.raises(ValueError, match="calc-m"):
        load_coco(path, category_map={"calc-m": 3})


def test_unmapped_category_warned_once(tmp_path, caplog):
    annotations = [ann(1, 3, [1, 1, 2, 2]), ann(1, 3, [5, 5, 2, 2])]
    with caplog.at_level(logging.WARNING):
        (record,) = load_coco(write_coco(tmp_path, [image(1)], annotations))
    assert record.num_boxes == 0
    assert caplog.text.count("not mapped to a class") == 1


@pytest.mark.parametrize(
    "bbox", [[1, 1, 0, 5], [1, 1, 5, -1], [1, 2, 3], None, ["a", 1, 2, 3], [200, 1, 5, 5]]
)
def test_unusable_bbox_drops_the_image(tmp_path, caplog, bbox):
    annotations = [ann(1, 1, [1, 1, 2, 2]), ann(1, 2, bbox), ann(2, 1, [1, 1, 2, 2])]
    with caplog.at_level(logging.WARNING):
        records = load_coco(write_coco(tmp_path, [image(1), image(2)], annotations))
    assert [r.metadata["coco_image_id"] for r in records] == [2]
    assert "annotations[1]" in caplog.text and "unusable bbox" in caplog.text


def test_bad_entries_and_missing_files_are_skipped(tmp_path, caplog):
    images = [image(1), {"id": 2}, image(3)]
    annotations = [ann(1, 1, [1, 1, 2, 2]), ann(9, 1, [1, 1, 2, 2])]
    path = write_coco(tmp_path, images, annotations)
    (tmp_path / "img" / "3.png").unlink()
    with caplog.at_level(logging.WARNING):
        records = load_coco(path)
    assert [r.metadata["coco_image_id"] for r in records] == [1]
    assert "images[1]" in caplog.text and "annotations[1]" in caplog.text and "3.png" in caplog.text
    assert len(load_coco(path, check_images=False)) == 2


def test_image_root(tmp_path):
    (tmp_path / "data").mkdir()
    path = write_coco(tmp_path / "data", [image(1)], [], touch=False)
    write_coco(tmp_path, [image(1)], [])  # creates tmp_path/img/1.png
    (record,) = load_coco(path, image_root=tmp_path)
    assert record.image_path == str(tmp_path / "img" / "1.png")


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        (None, FileNotFoundError, "not found"),
        ('{"images": [\n  {"id": 1,}\n]}', ValueError, r"annotations.json:2: not valid JSON"),
        ('{"annotations": []}', ValueError, "no 'images' list"),
        ("[]", ValueError, "no 'images' list"),
    ],
)
def test_unusable_files(tmp_path, text, error, match):
    path = tmp_path / "annotations.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=match):
        load_coco(path)


def test_empty_dataset(tmp_path):
    assert load_coco(write_coco(tmp_path, [], [])) == []
