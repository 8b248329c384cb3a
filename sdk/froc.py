"""FROC: lesion-level sensitivity against mean false positives per image (CAD's standard curve).

Matching is :mod:`calcsdk.metrics`' COCO matching, so FROC, AP and the P/R tables agree on what a
hit is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from calcsdk.detections import Detections, GroundTruth
from calcsdk.metrics import _check_inputs, _check_threshold, _jsonable, _match_image

__all__ = ["FrocCurve", "froc"]


@dataclass(frozen=True, eq=False)
class FrocCurve:
    """Free-response ROC: lesion sensitivity against mean false positives per image.

    Attributes:
        thresholds: (P,) float32 distinct detection scores, decreasing; point i counts the
            detections with score >= thresholds[i].
        sensitivity: (P,) float64 matched lesions / all lesions at each threshold.
        fp_per_image: (P,) float64 false positives / number of images at each threshold.
        fp_rates: (R,) the requested FP-per-image rates; sensitivity_at: (R,) the highest
            sensitivity reached with fp_per_image <= rate (0 when no point qualifies).
        mean_sensitivity: mean of ``sensitivity_at`` (the CAD "FROC score").
    Without any lesion, sensitivities are NaN.
    """

    thresholds: np.ndarray
    sensitivity: np.ndarray
    fp_per_image: np.ndarray
    fp_rates: np.ndarray
    sensitivity_at: np.ndarray
    mean_sensitivity: float
    n_images: int
    n_lesions: int
    iou_threshold: float
    class_name: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field (NaN becomes ``None``)."""
        return _jsonable(self)


def froc(
    preds: Sequence[Detections],
    truths: Sequence[GroundTruth],
    *,
    iou_threshold: float = 0.5,
    fp_per_image: Sequence[float] = (0.125, 0.25, 0.5, 1, 2, 4, 8),
    class_name: str | None = None,
) -> FrocCurve:
    """FROC curve swept over the detection scores.

    Args:
        preds, truths: one per image (at least one image), as for :func:`evaluate_detections`.
        iou_threshold: in (0, 1]; a detection finds a lesion at IoU >= threshold (COCO matching,
            so a second detection of a found lesion is a false positive).
        fp_per_image: rates (> 0) at which to read the sensitivity.
        class_name: ``None`` matches class-agnostically (any detection may find any lesion);
            a name keeps only that class's detections and lesions.
    """
    preds, truths, names = _check_inputs(preds, truths)
    if not preds:
        raise ValueError("froc needs at least one image")
    iou_threshold = _check_threshold(iou_threshold, "iou_threshold", False, True)
    rates = np.array(fp_per_image, dtype=np.float64).reshape(-1)  # a copy: set read-only below
    if rates.size == 0 or not np.isfinite(rates).all() or rates.min() <= 0:
        raise ValueError(f"fp_per_image should be finite rates > 0, got {list(fp_per_image)}")
    if class_name is not None and class_name not in names:
        raise ValueError(f"class_name should be None or one of {names}, got {class_name!r}")
    if class_name is not None:
        k = names.index(class_name)
        preds = [p[p.labels == k] for p in preds]
        truths = [
            GroundTruth(t.boxes[t.labels == k], t.labels[t.labels == k], names) for t in truths
        ]
    matched = [
        _match_image(p, t, iou_threshold, by_class=False) >= 0 for p, t in zip(preds, truths)
    ]
    scores = np.concatenate([np.zeros(0, np.float32), *(p.scores for p in preds)])
    order = np.argsort(-scores, kind="stable")
    scores, hits = scores[order], np.concatenate([np.zeros(0, bool), *matched])[order]
    n_lesions = sum(len(t) for t in truths)

    # one curve point per distinct score: the last detection of each run of equal scores
    last_of_score = np.flatnonzero(np.append(scores[1:] != scores[:-1], len(scores) > 0))
    found, false_alarms = np.cumsum(hits)[last_of_score], np.cumsum(~hits)[last_of_score]
    fp_rate = false_alarms / len(preds)
    reachable = np.searchsorted(fp_rate, rates, side="right")  # points with fp_rate <= rate
    if n_lesions:
        sensitivity = found / n_lesions
        sensitivity_at = np.concatenate([[0.0], sensitivity])[reachable]  # 0: no point reachable
    else:
        sensitivity = np.full(len(found), np.nan)
        sensitivity_at = np.full(len(rates), np.nan)
    thresholds = scores[last_of_score]
    for array in (thresholds, sensitivity, fp_rate, rates, sensitivity_at):
        array.setflags(write=False)
    return FrocCurve(
        thresholds=thresholds,
        sensitivity=sensitivity,
        fp_per_image=fp_rate,
        fp_rates=rates,
        sensitivity_at=sensitivity_at,
        mean_sensitivity=float(np.mean(sensitivity_at)),
        n_images=len(preds),
        n_lesions=n_lesions,
        iou_threshold=iou_threshold,
        class_name=class_name,
    )
