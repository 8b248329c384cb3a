"""Detection metrics over a list of images: P/R/F1, AP/mAP and a confusion matrix (FROC is in
:mod:`calcsdk.froc`).

Matching (:func:`match_detections`) is exactly COCO's (pycocotools ``evaluateImg``) for one IoU
threshold, without crowd regions or area ranges: per image (and per class, except where said
otherwise) the detections are visited by decreasing score (stable: equal scores keep their
order), and each takes the still unmatched ground-truth box with the highest IoU >= threshold
(among equal IoUs the later ground-truth box, as COCO). A matched detection is a true positive;
an unmatched one a false positive (a second detection of a lesion already found is a false
positive); an unmatched ground-truth box a false negative. IoUs are computed in float64.

Zero divisions: precision, recall and F1 follow :mod:`calcsdk.classification_metrics` (0). AP
of a class without any ground truth is undefined (NaN, ``None`` in ``to_dict``) and, as in
COCO, left out of the mAP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from calcsdk.boxes import as_box_array, box_iou
from calcsdk.classification_metrics import AveragedScores, averaged_scores, precision_recall_f1
from calcsdk.detections import DEFAULT_CLASS_NAMES, Detections, GroundTruth

__all__ = [
    "AP_METHODS",
    "COCO_RECALL_THRESHOLDS",
    "ClassDetectionMetrics",
    "DetectionConfusionMatrix",
    "DetectionReport",
    "average_precision",
    "detection_confusion_matrix",
    "evaluate_detections",
    "match_detections",
]

AP_METHODS = ("all-point", "coco101")
#: COCO's 101 recall thresholds 0, 0.01, ..., 1, built exactly as pycocotools builds them.
COCO_RECALL_THRESHOLDS = np.linspace(
    0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True
)


def _jsonable(value: Any) -> Any:
    """Dataclasses, arrays and numbers as JSON-safe dicts, lists and floats (NaN -> None)."""
    if is_dataclass(value):
        return {field.name: _jsonable(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, np.ndarray):
        return [_jsonable(item) for item in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


def _check_threshold(
    value: float | None, name: str, allow_none: bool, low_open: bool
) -> float | None:
    if value is None and allow_none:
        return None
    value = float(value)
    if not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{name} should be in {interval}, got {value}")
    return value


# --- matching -----------------------------------------------------------------------------
def match_detections(
    det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """COCO's greedy matching of one image's detections to its ground truth (one class).

    Args:
        det_boxes: (N, 4) xyxy pixels; det_scores: (N,) scores; gt_boxes: (M, 4) xyxy pixels.
        iou_threshold: in (0, 1]; a pair matches when IoU >= threshold (1 means >= 1 - 1e-10).
    Returns:
        (N,) int64: for each detection (input order) the index of its ground-truth box, or -1.
    """
    det_boxes, gt_boxes = as_box_array(det_boxes, "det_boxes"), as_box_array(gt_boxes, "gt_boxes")
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    if det_scores.shape != (len(det_boxes),):
        raise ValueError(
            f"det_scores should have shape ({len(det_boxes)},), got {det_scores.shape}"
        )
    threshold = min(_check_threshold(iou_threshold, "iou_threshold", False, True), 1 - 1e-10)
    matched = np.full(len(det_boxes), -1, dtype=np.int64)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return matched
    ious = box_iou(det_boxes, gt_boxes, dtype=np.float64)
    candidates = ious >= threshold
    gt_taken = np.zeros(len(gt_boxes), dtype=bool)
    order = np.argsort(-det_scores, kind="stable")
    for det in order[candidates[order].any(axis=1)]:
        row = np.where(candidates[det] & ~gt_taken, ious[det], -1.0)
        best = row.max()
        if best < 0:
            continue
        gt = np.flatnonzero(row == best)[-1]  # COCO: the last of equal IoUs wins
        matched[det] = gt
        gt_taken[gt] = True
    return matched


def _match_image(
    pred: Detections, truth: GroundTruth, iou_threshold: float, by_class: bool
) -> np.ndarray:
    """(N,) index of the ground-truth box each detection matched, or -1."""
    if not by_class:
        return match_detections(pred.boxes, pred.scores, truth.boxes, iou_threshold)
    matched = np.full(len(pred), -1, dtype=np.int64)
    for label in np.unique(pred.labels):
        dets, gts = np.flatnonzero(pred.labels == label), np.flatnonzero(truth.labels == label)
        found = match_detections(
            pred.boxes[dets], pred.scores[dets], truth.boxes[gts], iou_threshold
        )
        matched[dets[found >= 0]] = gts[found[found >= 0]]
    return matched


def _check_inputs(
    preds: Sequence[Detections], truths: Sequence[GroundTruth]
) -> tuple[list[Detections], list[GroundTruth], tuple[str, ...]]:
    """The images as lists, and their common class names."""
    preds, truths = list(preds), list(truths)
    if len(preds) != len(truths):
        raise ValueError(
            f"preds and truths should list the same images, got {len(preds)} and {len(truths)}"
        )
    if not all(isinstance(pred, Detections) for pred in preds):
        raise TypeError("preds should be a sequence of Detections")
    if not all(isinstance(truth, GroundTruth) for truth in truths):
        raise TypeError("truths should be a sequence of GroundTruth")
    names = {item.class_names for item in [*preds, *truths]}
    if len(names) > 1:
        raise ValueError(f"preds and truths should share one class_names, got {sorted(names)}")
    return preds, truths, names.pop() if names else DEFAULT_CLASS_NAMES


# --- average precision --------------------------------------------------------------------
def average_precision(
    recall: np.ndarray, precision: np.ndarray, method: str = "all-point"
) -> float:
    """Area under a precision-recall curve ranked by decreasing score.

    Args:
        recall, precision: (D,) cumulative recall (non-decreasing) and precision in [0, 1] after
            each of the D ranked detections; D may be 0 (AP 0).
        method: ``"all-point"``: PASCAL VOC 2010+ all-point interpolation: the precision
            envelope (max precision at any recall >= r) summed over every recall step;
            ``"coco101"``: COCO's mean of the envelope at the 101 recall thresholds 0, 0.01, ..., 1
            (a threshold beyond the last recall gets 0), exactly as pycocotools ``accumulate``.
    Returns:
        AP in [0, 1].
    """
    if method not in AP_METHODS:
        raise ValueError(f"method should be one of {AP_METHODS}, got {method!r}")
    recall = np.asarray(recall, dtype=np.float64).reshape(-1)
    precision = np.asarray(precision, dtype=np.float64).reshape(-1)
    if recall.shape != precision.shape:
        raise ValueError(
            f"recall and precision should have one length, got {len(recall)} and {len(precision)}"
        )
    if recall.size == 0:
        return 0.0
    values = np.concatenate([recall, precision])
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError("recall and precision should be finite values in [0, 1]")
    if np.any(np.diff(recall) < 0):
        raise ValueError("recall should be non-decreasing (cumulative over ranked detections)")
    if method == "coco101":
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        positions = np.searchsorted(recall, COCO_RECALL_THRESHOLDS, side="left")
        sampled = np.zeros(len(COCO_RECALL_THRESHOLDS))
        reached = positions < len(recall)
        sampled[reached] = envelope[positions[reached]]
        return float(sampled.mean())
    recall_steps = np.concatenate([[0.0], recall, [1.0]])
    envelope = np.maximum.accumulate(np.concatenate([[0.0], precision, [0.0]])[::-1])[::-1]
    steps = np.flatnonzero(recall_steps[1:] != recall_steps[:-1])
    return float(np.sum((recall_steps[steps + 1] - recall_steps[steps]) * envelope[steps + 1]))


def _ranked_curve(
    scores: np.ndarray, is_tp: np.ndarray, n_truths: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (recall, precision) after each detection ranked by decreasing score (stable)."""
    hits = is_tp[np.argsort(-scores, kind="stable")]
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    return tp / n_truths, tp / (tp + fp)


# --- the report ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassDetectionMetrics:
    """Figures of one class. ``tp``/``fp``/``fn`` and P/R/F1 count detections with
    score >= the report's ``conf_threshold`` (all of them when it is None); ``ap`` ranks all."""

    class_name: str
    n_truths: int
    n_detections: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    ap: float


@dataclass(frozen=True)
class DetectionReport:
    """Result of :func:`evaluate_detections` (see there for the definitions)."""

    iou_threshold: float
    conf_threshold: float | None
    ap_method: str
    n_images: int
    per_class: tuple[ClassDetectionMetrics, ...]
    mean_average_precision: float
    micro: AveragedScores
    macro: AveragedScores
    weighted: AveragedScores

    def __getitem__(self, class_name: str) -> ClassDetectionMetrics:
        for metrics in self.per_class:
            if metrics.class_name == class_name:
                return metrics
        raise KeyError(
            f"no class {class_name!r}; classes are {[m.class_name for m in self.per_class]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict, ``per_class`` keyed by class name; undefined values (AP or mAP
        without ground truth) become ``None``."""
        as_dict = _jsonable(self)
        as_dict["per_class"] = {m["class_name"]: m for m in as_dict["per_class"]}
        return as_dict


def evaluate_detections(
    preds: Sequence[Detections],
    truths: Sequence[GroundTruth],
    *,
    iou_threshold: float = 0.5,
    conf_threshold: float | None = None,
    ap_method: str = "all-point",
) -> DetectionReport:
    """Per-class TP/FP/FN, precision, recall, F1 and AP, with mAP and averaged P/R/F1.

    Args:
        preds, truths: one :class:`Detections` and one :class:`GroundTruth` per image, same
            order and ``class_names``. Boxes are matched class by class (module docstring).
        iou_threshold: in (0, 1]; IoU >= threshold matches.
        conf_threshold: ``None`` counts every detection (the paper's "No CF"); a value counts
            only detections with score >= it (0.5 is the paper's "CF 0.5", Tables 5 and 6).
        ap_method: ``"all-point"`` or ``"coco101"`` (see :func:`average_precision`).
    Returns:
        A :class:`DetectionReport`. AP always ranks ALL detections, whatever ``conf_threshold``;
        mAP is the mean AP of the classes that have ground truth (NaN when none has). Averages
        are over all classes; weighted ones use the ground-truth counts as weights.
    """
    preds, truths, names = _check_inputs(preds, truths)
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold", False, True)
    conf_threshold = _check_threshold(conf_threshold, "conf_threshold", True, False)
    if ap_method not in AP_METHODS:
        raise ValueError(f"ap_method should be one of {AP_METHODS}, got {ap_method!r}")
    matched = [_match_image(p, t, iou_threshold, by_class=True) >= 0 for p, t in zip(preds, truths)]
    is_tp = np.concatenate([np.zeros(0, bool), *matched])
    scores = np.concatenate([np.zeros(0, np.float32), *(p.scores for p in preds)])
    labels = np.concatenate([np.zeros(0, np.int64), *(p.labels for p in preds)])
    truth_labels = np.concatenate([np.zeros(0, np.int64), *(t.labels for t in truths)])
    n_truths = np.bincount(truth_labels, minlength=len(names))
    counted = np.ones(len(scores), bool) if conf_threshold is None else scores >= conf_threshold

    tp, fp, aps = np.zeros(len(names), np.int64), np.zeros(len(names), np.int64), []
    for k in range(len(names)):
        in_class = labels == k
        tp[k] = np.count_nonzero(in_class & counted & is_tp)
        fp[k] = np.count_nonzero(in_class & counted & ~is_tp)
        if n_truths[k] == 0:
            aps.append(float("nan"))
            continue
        recall, precision = _ranked_curve(scores[in_class], is_tp[in_class], int(n_truths[k]))
        aps.append(average_precision(recall, precision, ap_method))
    fn = n_truths - tp
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    columns = zip(names, n_truths, tp, fp, fn, precision, recall, f1, aps)
    per_class = tuple(
        ClassDetectionMetrics(
            name, int(n), int(t + f), int(t), int(f), int(m), float(p), float(r), float(f_1), ap
        )
        for name, n, t, f, m, p, r, f_1, ap in columns
    )
    defined = [ap for ap in aps if np.isfinite(ap)]
    averages = averaged_scores(tp, fp, fn, support=n_truths)
    return DetectionReport(
        iou_threshold=iou_threshold,
        conf_threshold=conf_threshold,
        ap_method=ap_method,
        n_images=len(preds),
        per_class=per_class,
        mean_average_precision=float(np.mean(defined)) if defined else float("nan"),
        micro=averages["micro"],
        macro=averages["macro"],
        weighted=averages["weighted"],
    )


# --- confusion matrix ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DetectionConfusionMatrix:
    """Confusion of detections with ground truth, with a background row and column.

    ``matrix`` is (K+1, K+1) int64; rows are the truth, columns the prediction, index K is
    "background": ``matrix[i, j]`` (i, j < K) counts detections of class j matched to a lesion
    of class i (the paper's 2x2 table for K = 2); ``matrix[K, j]`` counts false alarms of class j
    (detections matched to no lesion); ``matrix[i, K]`` counts missed lesions of class i;
    ``matrix[K, K]`` is always 0.
    """

    matrix: np.ndarray
    class_names: tuple[str, ...]
    iou_threshold: float
    conf_threshold: float | None

    @property
    def labels(self) -> tuple[str, ...]:
        """Row/column names: the class names then ``"background"``."""
        return (*self.class_names, "background")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field plus ``labels``."""
        return {**_jsonable(self), "labels": list(self.labels)}


def detection_confusion_matrix(
    preds: Sequence[Detections],
    truths: Sequence[GroundTruth],
    iou_threshold: float = 0.5,
    conf_threshold: float | None = 0.5,
) -> DetectionConfusionMatrix:
    """Confusion of matched detections' labels against their lesions' labels.

    Detections with score >= ``conf_threshold`` (all when ``None``) are matched to the lesions
    class-agnostically (COCO matching, IoU >= ``iou_threshold``), then each match adds one to
    ``matrix[lesion label, detection label]``; see :class:`DetectionConfusionMatrix`.
    """
    preds, truths, names = _check_inputs(preds, truths)
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold", False, True)
    conf_threshold = _check_threshold(conf_threshold, "conf_threshold", True, False)
    background = len(names)
    matrix = np.zeros((background + 1, background + 1), dtype=np.int64)
    for pred, truth in zip(preds, truths):
        if conf_threshold is not None:
            pred = pred[pred.scores >= conf_threshold]
        matched = _match_image(pred, truth, iou_threshold, by_class=False)
        hit = matched >= 0
        np.add.at(matrix, (truth.labels[matched[hit]], pred.labels[hit]), 1)
        np.add.at(matrix, (background, pred.labels[~hit]), 1)
        missed = np.ones(len(truth), bool)
        missed[matched[hit]] = False
        np.add.at(matrix, (truth.labels[missed], background), 1)
    matrix.setflags(write=False)
    return DetectionConfusionMatrix(matrix, names, iou_threshold, conf_threshold)
