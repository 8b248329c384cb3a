"""Classification metrics: confusion matrix, precision/recall/F1 per class and averaged.

The formulas are the paper's Table 1 (and scikit-learn's with ``zero_division=0``):

* precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN);
  a zero denominator gives 0;
* micro average: the same formulas on TP, FP, FN summed over classes;
* macro average: the unweighted mean of the per-class values over ALL classes (a class that is
  neither true nor predicted anywhere counts as 0, as sklearn with ``labels=range(K)``);
* weighted average: per-class values weighted by support (true count) / total support
  (0 when there is no support at all).

:func:`precision_recall_f1` and :func:`averaged_scores` are also the arithmetic behind the
detection metrics of :mod:`calcsdk.metrics`: one implementation of the F1 family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AveragedScores",
    "ClassificationReport",
    "averaged_scores",
    "classification_report",
    "confusion_matrix",
    "precision_recall_f1",
]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_recall_f1(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from counts (any matching shapes), float64.

    A zero denominator gives 0 (sklearn ``zero_division=0``).
    """
    tp, fp, fn = (np.asarray(count, dtype=np.float64) for count in (tp, fp, fn))
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


@dataclass(frozen=True)
class AveragedScores:
    """Precision, recall and F1 averaged across classes in one way (micro, macro or weighted)."""

    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def averaged_scores(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, support: np.ndarray | None = None
) -> dict[str, AveragedScores]:
    """Micro, macro and weighted averages of per-class counts.

    Args:
        tp, fp, fn: (K,) counts per class.
        support: (K,) weights of the weighted average; by default the true counts ``tp + fn``.
    Returns:
        ``{"micro": ..., "macro": ..., "weighted": ...}``; all 0 for K = 0 or no counts.
    """
    tp, fp, fn = (np.asarray(count, dtype=np.float64).reshape(-1) for count in (tp, fp, fn))
    if not tp.shape == fp.shape == fn.shape:
        raise ValueError(
            f"tp, fp and fn should have one shape, got {tp.shape}, {fp.shape}, {fn.shape}"
        )
    support = tp + fn if support is None else np.asarray(support, dtype=np.float64).reshape(-1)
    if support.shape != tp.shape:
        raise ValueError(f"support should have shape {tp.shape}, got {support.shape}")
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    micro = precision_recall_f1(tp.sum(), fp.sum(), fn.sum())
    weights = _ratio(support, support.sum())

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else 0.0

    return {
        "micro": AveragedScores(*(float(value) for value in micro)),
        "macro": AveragedScores(mean(precision), mean(recall), mean(f1)),
        "weighted": AveragedScores(
            float(weights @ precision), float(weights @ recall), float(weights @ f1)
        ),
    }


def _label_vector(values: np.ndarray, name: str, n_classes: int) -> np.ndarray:
    array = np.asarray(values)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} should hold integer class indices, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} should be 1-D, got shape {array.shape}")
    if array.min() < 0 or array.max() >= n_classes:
        raise ValueError(
            f"{name} should hold class indices in [0, {n_classes - 1}], "
            f"got values in [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true, y_pred: (N,) integer class indices in [0, n_classes); N may be 0.
        n_classes: K >= 1.
    Returns:
        (K, K) int64; row = true class, column = predicted class (as sklearn).
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes should be an int >= 1, got {n_classes!r}")
    y_true = _label_vector(y_true, "y_true", n_classes)
    y_pred = _label_vector(y_pred, "y_pred", n_classes)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred should have one length, got {len(y_true)} and {len(y_pred)}"
        )
    counts = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Single-label classification metrics (e.g. the ROI classifier's 3x3 table).

    Attributes:
        class_names: K names; confusion: (K, K) int64, rows true, columns predicted.
        accuracy: fraction of correct predictions (0 for no samples).
        precision, recall, f1: (K,) float64 per class; support: (K,) int64 true counts.
        micro, macro, weighted: averaged scores (micro P = R = F1 = accuracy).
    """

    class_names: tuple[str, ...]
    confusion: np.ndarray
    accuracy: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    micro: AveragedScores
    macro: AveragedScores
    weighted: AveragedScores

    def to_dict(self) -> dict:
        """JSON-safe nested dict of every figure."""
        return {
            "class_names": list(self.class_names),
            "confusion": self.confusion.tolist(),
            "accuracy": self.accuracy,
            "per_class": {
                name: {
                    "precision": float(self.precision[k]),
                    "recall": float(self.recall[k]),
                    "f1": float(self.f1[k]),
                    "support": int(self.support[k]),
                }
                for k, name in enumerate(self.class_names)
            },
            "micro": self.micro.to_dict(),
            "macro": self.macro.to_dict(),
            "weighted": self.weighted.to_dict(),
        }


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> ClassificationReport:
    """Accuracy, per-class and averaged precision/recall/F1 of integer class predictions.

    Args:
        y_true, y_pred: (N,) integer indices into ``class_names``; N may be 0.
        class_names: K >= 1 names.
    """
    if isinstance(class_names, str):
        raise TypeError(f"class_names should be a sequence of str, got the str {class_names!r}")
    names = tuple(class_names)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"class_names should be a non-empty sequence of str, got {class_names!r}")
    confusion = confusion_matrix(y_true, y_pred, len(names))
    tp = np.diag(confusion)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    averages = averaged_scores(tp, fp, fn)
    for array in (confusion, precision, recall, f1):
        array.setflags(write=False)
    support = confusion.sum(axis=1)
    support.setflags(write=False)
    return ClassificationReport(
        class_names=names,
        confusion=confusion,
        accuracy=float(_ratio(tp.sum(), confusion.sum())),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        micro=averages["micro"],
        macro=averages["macro"],
        weighted=averages["weighted"],
    )
