"""Detections / GroundTruth: validation, indexing, empty, dict/COCO/CSV round trips."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from calcsdk.boxes import xywh_to_xyxy
from calcsdk.detections import CSV_FIELDS, Detections, GroundTruth

BOXES = np.array([[0, 0, 10, 10], [20.5, 4, 30.25, 9], [1, 2, 3, 4]], np.float32)
SCORES = np.array([0.3, 0.9, 0.6], np.float32)
LABELS = np.array([0, 1, 0])


def sample() -> Detections:
    return Detections(BOXES, SCORES, LABELS)


# --- validation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("boxes", "scores", "labels", "class_names", "error", "message"),
    [
        (np.zeros((2, 3)), [0.5, 0.5], [0, 0], ("a",), ValueError, "shape (N, 4)"),
        (BOXES, SCORES[:2], LABELS, ("a", "b"), ValueError, "scores should have shape (3,)"),
        (BOXES, SCORES, LABELS[:2], ("a", "b"), ValueError, "labels should have shape (3,)"),
        (BOXES, [0.3, 1.2, 0.5], LABELS, ("a", "b"), ValueError, "[0, 1]"),
        (BOXES, [0.3, np.nan, 0.5], LABELS, ("a", "b"), ValueError, "finite"),
        (BOXES, [-0.1, 0.2, 0.5], LABELS, ("a", "b"), ValueError, "[0, 1]"),
        (BOXES, SCORES, [0, 2, 0], ("a", "b"), ValueError, "labels should be in [0, 1]"),
        (BOXES, SCORES, [0, -1, 0], ("a", "b"), ValueError, "labels should be in [0, 1]"),
        (BOXES, SCORES, [0.0, 1.0, 0.0], ("a", "b"), TypeError, "labels should be integers"),
        (BOXES, SCORES, [True, False, True], ("a", "b"), TypeError, "labels should be integers"),
        (BOXES, ["a", "b", "c"], LABELS, ("a", "b"), TypeError, "scores should be real"),
        ([[5, 0, 5, 10]], [0.5], [0], ("a",), ValueError, "row 0"),  # zero width
        ([[0, 0, 10, 10], [0, 8, 10, 3]], [0.5, 0.5], [0, 0], ("a",), ValueError, "row 1"),
        ([[-1, 0, 10, 10]], [0.5], [0], ("a",), ValueError, "0 <= x1 < x2"),
        ([[0, 0, np.inf, 10]], [0.5], [0], ("a",), ValueError, "finite"),
        (BOXES, SCORES, LABELS, ("a", "a"), ValueError, "unique"),
        (BOXES, SCORES, LABELS, (), ValueError, "non-empty"),
        (BOXES, SCORES, LABELS, ("a", ""), ValueError, "non-empty"),
        (BOXES, SCORES, LABELS, "ab", TypeError, "sequence of str"),
    ],
)
def test_detections_validation(boxes, scores, labels, class_names, error, message):
    with pytest.raises(error) as raised:
        Detections(np.asarray(boxes), np.asarray(scores), np.asarray(labels), class_names)
    assert message in str(raised.value)


def test_detections_coerces_dtypes_copies_and_freezes():
    boxes = BOXES.astype(np.float64)
    labels = LABELS.astype(np.int32)
    detections = Detections(boxes, SCORES.astype(np.float64), labels, ["malignant", "benign"])
    assert detections.boxes.dtype == np.float32 and detections.scores.dtype == np.float32
    assert detections.labels.dtype == np.int64 and detections.class_names == ("malignant", "benign")
    boxes[0, 0] = 5  # the caller's array stays writable and is not shared
    assert detections.boxes[0, 0] == 0
    for array in (detections.boxes, detections.scores, detections.labels):
        with pytest.raises(ValueError):
            array[0] = 1
    with pytest.raises(AttributeError):
        detections.boxes = BOXES  # frozen


@pytest.mark.parametrize("names", [("malignant", "benign"), ("calcification",)])
def test_empty(names):
    empty = Detections.empty(names)
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.class_names == names
    assert empty.label_names == () and len(empty.sorted_by_score()) == 0
    assert empty.to_coco_results(1) == [] and empty.to_csv_rows("a.png") == []
    assert Detections.from_dict(json.loads(json.dumps(empty.to_dict()))).allclose(empty)
    # empty lists (as from JSON) are accepted for every field
    assert len(Detections([], [], [], names)) == 0
    assert len(GroundTruth.empty(names)) == 0 and len(GroundTruth([], [], names)) == 0


# --- indexing -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("index", "rows"),
    [
        (np.array([True, False, True]), [0, 2]),
        (np.array([False, False, False]), []),
        (np.array([2, 0]), [2, 0]),
        ([1], [1]),
        ([], []),
        (slice(1, None), [1, 2]),
        (slice(0, 0), []),
        (1, [1]),
        (-1, [2]),
        (np.int64(0), [0]),
    ],
)
def test_getitem(index, rows):
    picked = sample()[index]
    assert isinstance(picked, Detections) and len(picked) == len(rows)
    np.testing.assert_array_equal(picked.boxes, BOXES[rows].reshape(-1, 4))
    np.testing.assert_array_equal(picked.scores, SCORES[rows])
    np.testing.assert_array_equal(picked.labels, LABELS[rows])


@pytest.mark.parametrize(
    ("index", "error"),
    [
        (np.array([True, False]), IndexError),
        (np.array([0.5]), TypeError),
        (5, IndexError),
    ],
)
def test_getitem_rejects(index, error):
    with pytest.raises(error):
        sample()[index]


def test_score_filter_reads_like_supervision():
    assert sample()[sample().scores >= 0.5].label_names == ("benign", "malignant")


def test_sorted_by_score_is_stable():
    detections = Detections(
        np.tile(BOXES, (2, 1)), [0.5, 0.9, 0.5, 0.5, 0.9, 0.1], [0, 1, 1, 0, 0, 1]
    )
    ordered = detections.sorted_by_score()
    np.testing.assert_array_equal(ordered.labels, [1, 0, 0, 1, 0, 1])  # rows 1, 4, 0, 2, 3, 5
    np.testing.assert_array_equal(ordered.scores, np.float32([0.9, 0.9, 0.5, 0.5, 0.5, 0.1]))


def test_allclose():
    assert sample().allclose(sample())
    assert not sample().allclose(sample()[:2])
    assert not sample().allclose(Detections(BOXES + 0.01, SCORES, LABELS))
    assert not sample().allclose(Detections(BOXES, SCORES, LABELS, ("x", "y")))
    assert not sample().allclose("not detections")


# --- concat -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parts", "length"),
    [([], 0), ([0], 3), ([0, 0], 6), ([0, "empty", 0], 6)],
)
def test_concat(parts, length):
    items = [Detections.empty() if part == "empty" else sample() for part in parts]
    joined = Detections.concat(items)
    assert len(joined) == length and joined.class_names == ("malignant", "benign")
    if length:
        np.testing.assert_array_equal(joined.scores[:3], SCORES)


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([Detections.empty(("a",)), Detections.empty(("b",))], ValueError),
        ([Detections.empty(), "x"], TypeError),
    ],
)
def test_concat_rejects(items, error):
    with pytest.raises(error):
        Detections.concat(items)


def test_concat_of_nothing_keeps_requested_classes():
    assert Detections.concat([], class_names=("c",)).class_names == ("c",)


# --- adapters -----------------------------------------------------------------------------
def test_dict_round_trip_is_exact_through_json():
    detections = Detections(BOXES / 3, SCORES / 7, LABELS)
    back = Detections.from_dict(json.loads(json.dumps(detections.to_dict())))
    np.testing.assert_array_equal(back.boxes, detections.boxes)
    np.testing.assert_array_equal(back.scores, detections.scores)
    np.testing.assert_array_equal(back.labels, detections.labels)
    assert back.class_names == detections.class_names


@pytest.mark.parametrize("missing", ["boxes", "scores", "labels", "class_names"])
def test_from_dict_names_missing_key(missing):
    data = sample().to_dict()
    del data[missing]
    with pytest.raises(ValueError, match=missing):
        Detections.from_dict(data)


@pytest.mark.parametrize(
    ("category_ids", "expected_ids"),
    [(None, [1, 2, 1]), ({"malignant": 7, "benign": 3}, [7, 3, 7])],
)
def test_coco_results(category_ids, expected_ids):
    detections = Detections(BOXES / 3, SCORES, LABELS)
    results = json.loads(json.dumps(detections.to_coco_results(42, category_ids)))
    assert [r["category_id"] for r in results] == expected_ids
    assert {r["image_id"] for r in results} == {42}
    np.testing.assert_array_equal(
        xywh_to_xyxy(np.array([r["bbox"] for r in results])), detections.boxes
    )
    np.testing.assert_array_equal(np.float32([r["score"] for r in results]), SCORES)
    assert results[1]["bbox"][2] == pytest.approx((30.25 - 20.5) / 3, rel=1e-6)  # width


@pytest.mark.parametrize(
    ("image_id", "category_ids", "error"),
    [("1", None, TypeError), (1.0, None, TypeError), (1, {"malignant": 1}, ValueError)],
)
def test_coco_results_rejects(image_id, category_ids, error):
    with pytest.raises(error):
        sample().to_coco_results(image_id, category_ids)


def write_and_read_csv(rows: list[dict]) -> list[dict]:
    stream = io.StringIO()
    extra = [key for key in rows[0] if key not in CSV_FIELDS] if rows else []
    writer = csv.DictWriter(stream, fieldnames=[*CSV_FIELDS, *extra])
    writer.writeheader()
    writer.writerows(rows)
    return list(csv.DictReader(io.StringIO(stream.getvalue())))


@pytest.mark.parametrize(
    ("spacing", "expected_mm"),
    [
        (None, None),
        ((0.1, 0.1), [2.05, 0.4, 3.025, 0.9]),
        ((0.05, 0.2), [4.1, 0.2, 6.05, 0.45]),  # (row, col): x uses 0.2, y uses 0.05
    ],
)
def test_csv_rows(spacing, expected_mm):
    rows = sample().to_csv_rows(
        "case1/CC.dcm", spacing, model_version="rcnn-1.0", sop_instance_uid="1.2.3"
    )
    assert list(rows[1]) == [*CSV_FIELDS, "model_version", "sop_instance_uid"]
    assert rows[1]["file"] == "case1/CC.dcm" and rows[1]["class"] == "benign"
    assert (rows[1]["x1"], rows[1]["x2"], rows[1]["score"]) == (
        20.5,
        30.25,
        0.9,
    )  # shortest decimals
    mm = [rows[1][key] for key in ("x1_mm", "y1_mm", "x2_mm", "y2_mm")]
    assert mm == ([None] * 4 if expected_mm is None else pytest.approx(expected_mm, abs=1e-9))
    back = Detections.from_csv_rows(write_and_read_csv(rows))
    assert back.allclose(sample(), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("spacing", "extra"),
    [((0.0, 0.1), {}), ((0.1, np.nan), {}), (None, {"score": 1}), (None, {"class": "x"})],
)
def test_csv_rows_rejects(spacing, extra):
    with pytest.raises(ValueError):
        sample().to_csv_rows("a.png", spacing, **extra)


@pytest.mark.parametrize(
    "rows",
    [
        [{"x1": 0, "y1": 0, "x2": 1, "y2": 1, "class": "normal", "score": 0.5}],
        [{"x1": 0, "y1": 0, "x2": 1, "class": "benign", "score": 0.5}],
    ],
)
def test_from_csv_rows_rejects(rows):
    with pytest.raises(ValueError):
        Detections.from_csv_rows(rows)


# --- ground truth -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("boxes", "labels", "error"),
    [
        ([[0, 0, 10, 10]], [3], ValueError),
        ([[0, 0, 10, 10]], [0, 1], ValueError),
        ([[10, 0, 0, 10]], [0], ValueError),
        ([[0, 0, 10, 10]], [0.0], TypeError),
    ],
)
def test_ground_truth_validation(boxes, labels, error):
    with pytest.raises(error):
        GroundTruth(np.asarray(boxes, float), np.asarray(labels))


def test_ground_truth_round_trip():
    truth = GroundTruth(BOXES, LABELS, ("malignant", "benign"))
    back = GroundTruth.from_dict(json.loads(json.dumps(truth.to_dict())))
    np.testing.assert_array_equal(back.boxes, truth.boxes)
    np.testing.assert_array_equal(back.labels, truth.labels)
    assert (
        len(back) == 3 and back.class_names == truth.class_names and not back.boxes.flags.writeable
    )
