"""Class-agnostic bounding-box regression on fc7 features, as in R-CNN (Girshick et al. 2014,
appendix C): ridge regression from a proposal's features to the deltas
(:func:`calcsdk.boxes.encode_box_deltas`) that move it onto its ground-truth cluster.

Why: at IoU 0.5 most detections that touch a cluster overlap it too loosely to count. On the
5-fold RCNN-1 run the selected fold's F1 was 0.04 at IoU 0.5 and 0.21 at IoU 0.3
(``benchmarks/results/rcnn_cv``). One regressor for both classes, because positives are few.

Training pairs: every non-ground-truth positive sample (proposal or jittered box) with IoU >=
``min_iou`` to a cluster of its own image, and that cluster (R-CNN used 0.6). Shapes: features
(N, D) float32 fc7; boxes xyxy in the working frame; deltas (N, 4).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calcsdk.boxes import box_iou, encode_box_deltas

_FIELDS = ("weight", "bias")


@dataclass(frozen=True)
class BoxRegressionConfig:
    alpha: float = 1000.0  # ridge penalty on standardised features (R-CNN: lambda = 1000)
    min_iou: float = 0.6  # a training proposal's IoU with its cluster (R-CNN: 0.6)


@dataclass(frozen=True)
class BoxRegressor:
    """``deltas = features @ weight.T + bias``; weight (4, D) float64 and bias (4,) float64 on
    raw fc7 features (the standardisation is folded in)."""

    weight: np.ndarray
    bias: np.ndarray

    def deltas(self, features: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, 4) float32 ``(dx, dy, dw, dh)``."""
        return (np.asarray(features, np.float64) @ self.weight.T + self.bias).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        np.savez(path, **{k: getattr(self, k) for k in _FIELDS})

    @classmethod
    def load(cls, path: str | os.PathLike) -> BoxRegressor:
        with np.load(path) as data:
            return cls(**{k: data[k] for k in _FIELDS})


def regression_pairs(
    samples: Sequence, positive_labels: Sequence[int], min_iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Training pairs from labelled samples (:class:`.samples.ImageSamples`).

    Args:
        samples: per image: ``boxes`` (N, 4), ``labels`` (N,), ``is_gt`` (N,) bool.
        positive_labels: the detector classes (e.g. 0 malignant, 1 benign).
        min_iou: least IoU between a sample and the cluster it is regressed onto.
    Returns:
        ``(rows (M,) int64 into the samples stacked in order, deltas (M, 4) float32)``.
    """
    rows, deltas, offset = [], [], 0
    for s in samples:
        gt = s.boxes[s.is_gt]
        candidates = np.flatnonzero(~s.is_gt & np.isin(s.labels, positive_labels))
        if len(gt) and len(candidates):
            iou = box_iou(s.boxes[candidates], gt)
            best = iou.argmax(axis=1)
            keep = iou[np.arange(len(candidates)), best] >= min_iou
            rows.append(offset + candidates[keep])
            deltas.append(encode_box_deltas(s.boxes[candidates[keep]], gt[best[keep]]))
        offset += len(s.labels)
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    return np.concatenate(rows).astype(np.int64), np.concatenate(deltas)


def fit_box_regressor(
    features: np.ndarray, deltas: np.ndarray, config: BoxRegressionConfig = BoxRegressionConfig()
) -> BoxRegressor:
    """Ridge regression of ``deltas`` (M, 4) on standardised ``features`` (M, D), folded back
    onto raw features.

    Raises:
        ValueError: fewer than 2 training pairs.
    """
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, np.float32)
    if len(features) < 2:
        raise ValueError(f"box regression needs at least 2 training pairs, got {len(features)}")
    scaler = StandardScaler().fit(features)
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
    ridge = Ridge(alpha=config.alpha).fit((features - scaler.mean_) / scale, deltas)
    weight = ridge.coef_ / scale[None, :]
    bias = ridge.intercept_ - weight @ scaler.mean_
    return BoxRegressor(weight.astype(np.float64), np.asarray(bias, np.float64))
