"""F1 family, accuracy and confusion matrix against scikit-learn, plus hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from calcsdk.classification_metrics import (
    averaged_scores,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
)


def random_labels(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Random label vectors; some seeds leave a class out of y_true or y_pred, or both."""
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(1, 5))
    n = int(rng.integers(1, 40))
    y_true = rng.integers(0, n_classes, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, n_classes, n))
    if seed % 4 == 1 and n_classes > 1:
        y_pred[y_pred == n_classes - 1] = 0  # a class never predicted
    if seed % 4 == 2 and n_classes > 2:
        y_true[y_true == 1] = 0  # a class never true
        y_pred[y_pred == 1] = 0  # ... and never predicted
    return y_true, y_pred, n_classes


SEEDS = list(range(24))


@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")
@pytest.mark.parametrize("seed", SEEDS)
def test_report_matches_sklearn(seed):
    y_true, y_pred, k = random_labels(seed)
    labels = list(range(k))
    report = classification_report(y_true, y_pred, [f"class{i}" for i in labels])
    np.testing.assert_array_equal(
        report.confusion, sk_confusion_matrix(y_true, y_pred, labels=labels)
    )
    assert report.accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-6)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(report.precision, p, atol=1e-6)
    np.testing.assert_allclose(report.recall, r, atol=1e-6)
    np.testing.assert_allclose(report.f1, f, atol=1e-6)
    np.testing.assert_array_equal(report.support, s)
    for average in ("micro", "macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        ours = getattr(report, average)
        assert (ours.precision, ours.recall, ours.f1) == pytest.approx((p, r, f), abs=1e-6)


def test_seeds_cover_missing_classes():
    cases = [random_labels(seed) for seed in SEEDS]
    assert any(k == 1 for *_, k in cases)
    assert any(len(np.unique(p)) < k for _, p, k in cases)
    assert any(len(np.unique(np.concatenate([t, p]))) < k for t, p, k in cases)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "expected"),
    [
        ([], [], 2, [[0, 0], [0, 0]]),
        ([0, 0, 0], [0, 0, 0], 1, [[3]]),
        ([0, 1, 2, 2], [0, 2, 2, 1], 3, [[1, 0, 0], [0, 0, 1], [0, 1, 1]]),
    ],
)
def test_confusion_matrix_by_hand(y_true, y_pred, n_classes, expected):
    matrix = confusion_matrix(np.asarray(y_true, int), np.asarray(y_pred, int), n_classes)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, expected)


def test_empty_report_is_all_zero_and_json_safe():
    report = classification_report(np.zeros(0, int), np.zeros(0, int), ["malignant", "benign"])
    assert report.accuracy == 0.0 and report.support.tolist() == [0, 0]
    assert report.macro.f1 == 0.0 and report.weighted.f1 == 0.0 and report.micro.f1 == 0.0
    as_dict = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert as_dict["per_class"]["benign"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }


def test_paper_three_class_table_by_hand():
    """3x3 ROI classifier table (rows true malignant/benign/normal)."""
    confusion = np.array([[8, 1, 1], [2, 3, 0], [0, 0, 5]])
    y_true = np.repeat(np.repeat([0, 1, 2], 3), confusion.ravel())
    y_pred = np.repeat(np.tile([0, 1, 2], 3), confusion.ravel())
    report = classification_report(y_true, y_pred, ["malignant", "benign", "normal"])
    np.testing.assert_array_equal(report.confusion, confusion)
    np.testing.assert_allclose(report.precision, [0.8, 0.75, 5 / 6])
    np.testing.assert_allclose(report.recall, [0.8, 0.6, 1.0])
    np.testing.assert_allclose(report.f1, [0.8, 2 / 3, 10 / 11])
    assert report.accuracy == pytest.approx(16 / 20) == report.micro.f1
    assert report.weighted.f1 == pytest.approx((10 * 0.8 + 5 * 2 / 3 + 5 * 10 / 11) / 20)


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "expected"),
    [
        ([0], [0], [0], ([0.0], [0.0], [0.0])),  # every denominator zero
        ([0], [3], [0], ([0.0], [0.0], [0.0])),
        ([2], [0], [2], ([1.0], [0.5], [2 / 3])),
        ([], [], [], ([], [], [])),
    ],
)
def test_precision_recall_f1_zero_division(tp, fp, fn, expected):
    for got, want in zip(precision_recall_f1(tp, fp, fn), expected):
        np.testing.assert_allclose(got, want)


def test_averaged_scores_with_no_classes_and_bad_shapes():
    assert averaged_scores([], [], [])["macro"].f1 == 0.0
    with pytest.raises(ValueError):
        averaged_scores([1, 2], [0], [0, 0])
    with pytest.raises(ValueError):
        averaged_scores([1], [0], [0], support=[1, 2])


@pytest.mark.parametrize(
    ("y_true", "y_pred", "n_classes", "error"),
    [
        ([0, 1], [0], 2, ValueError),
        ([0, 2], [0, 1], 2, ValueError),
        ([0, -1], [0, 1], 2, ValueError),
        ([0.0, 1.0], [0, 1], 2, TypeError),
        ([[0, 1]], [[0, 1]], 2, ValueError),
        ([0], [0], 0, ValueError),
        ([0], [0], 1.5, ValueError),
    ],
)
def test_confusion_matrix_rejects(y_true, y_pred, n_classes, error):
    with pytest.raises(error):
        confusion_matrix(np.asarray(y_true), np.asarray(y_pred), n_classes)


@pytest.mark.parametrize("class_names", [[], "ab", [1, 2]])
def test_classification_report_rejects_class_names(class_names):
    with pytest.raises((ValueError, TypeError)):
        classification_report(np.array([0]), np.array([0]), class_names)
