"""The R-CNN's head: one-vs-rest linear SVMs on fc7 features, with hard-negative mining and
Platt calibration, as in R-CNN (Girshick et al. 2014) and the paper.

Why linear: an RBF SVC took 144 s to fit and ~21 s per 2,000 proposals in onnxruntime here
(FINDINGS.md), unusable for detection; R-CNN itself used linear SVMs. The trained head folds into
one ONNX GEMM + sigmoid (:mod:`calcsdk.export.onnx_head`).

Shapes: features (N, D) float32 fc7 activations; labels (N,) int64 with detector classes
0..C-1 and ``background`` = C (the ROI classifier's ``normal``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    svm_c: float = 1e-3  # R-CNN's C for fc7 features (after standardisation a larger C overfits)
    positive_weight: float = 2.0  # class weight of positives (they are few)
    hard_negative_rounds: int = 3  # rounds of mining the highest-scoring background
    negatives_per_round: int = 4000  # hard negatives added per class and round
    initial_negatives: int = 4000  # random negatives in the first round
    hard_negative_margin: float = -1.0  # a negative is "hard" when its score exceeds this
    seed: int = 0


@dataclass(frozen=True)
class LinearSvmHead:
    """Standardisation + per-class linear SVM + Platt scaling; all float64 numpy."""

    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    weight: np.ndarray  # (C, D) SVM weights on standardised features
    bias: np.ndarray  # (C,)
    platt_a: np.ndarray  # (C,)
    platt_b: np.ndarray  # (C,)

    def decision(self, features: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, C) raw SVM margins."""
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return z @ self.weight.T + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, C) calibrated probabilities (one-vs-rest, need not sum to 1)."""
        z = self.platt_a * self.decision(features) + self.platt_b
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # = sigmoid(z), without overflow

    def save(self, path: str | os.PathLike) -> None:
        np.savez(path, **{k: getattr(self, k) for k in _FIELDS})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearSvmHead:
        with np.load(path) as data:
            return cls(**{k: data[k] for k in _FIELDS})


_FIELDS = ("mean", "scale", "weight", "bias", "platt_a", "platt_b")


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: HeadConfig = HeadConfig(),
    *,
    calib_features: np.ndarray | None = None,
    calib_labels: np.ndarray | None = None,
    calib_weights: np.ndarray | None = None,
) -> LinearSvmHead:
    """Fit the head. Labels: 0..num_classes-1 positives, ``num_classes`` background; other
    values (e.g. -1 = ignored) are dropped. Calibration uses ``calib_*`` (validation data) when
    given, else the training data (then the probabilities are optimistic; say so).
    ``calib_weights`` ((M,) float, optional) weights the calibration rows, e.g. to restore the
    share of background that subsampling removed; without it every row counts once."""
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels, np.int64)
    keep = (labels >= 0) & (labels <= num_classes)
    features, labels = features[keep], labels[keep]
    scaler = StandardScaler().fit(features)
    z = scaler.transform(features)
    rng = np.random.default_rng(config.seed)
    weights, biases = [], []
    for c in range(num_classes):
        w, b = _fit_one_vs_rest(z, labels, c, config, rng)
        weights.append(w)
        biases.append(b)
    weight, bias = np.stack(weights), np.asarray(biases)
    if calib_features is None or calib_labels is None:
        log.warning("calibrating the SVM head on its training data: probabilities are optimistic")
        calib_features, calib_labels, calib_weights = features, labels, None
    cz = scaler.transform(np.asarray(calib_features, np.float32))
    margins = cz @ weight.T + bias
    platt_a, platt_b = _platt(
        margins, np.asarray(calib_labels, np.int64), num_classes, calib_weights
    )
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_)
    return LinearSvmHead(scaler.mean_, scale, weight, bias, platt_a, platt_b)


def _fit_one_vs_rest(z, labels, c, config: HeadConfig, rng) -> tuple[np.ndarray, float]:
    """Linear SVM of class ``c`` against background and the other classes, with hard-negative
    mining over the negatives (the positives always stay in)."""
    positives = np.flatnonzero(labels == c)
    negatives = np.flatnonzero(labels != c)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError(
            f"class {c}: need positives and negatives, got {len(positives)}/{len(negatives)}"
        )
    active = rng.permutation(negatives)[: config.initial_negatives]
    svm = None
    for round_ in range(max(1, config.hard_negative_rounds)):
        rows = np.concatenate([positives, active])
        y = (labels[rows] == c).astype(np.int64)
        svm = LinearSVC(
            C=config.svm_c,
            class_weight={1: config.positive_weight, 0: 1.0},
            dual="auto",
            max_iter=5000,
            random_state=config.seed,
        ).fit(z[rows], y)
        if round_ + 1 >= config.hard_negative_rounds:
            break
        scores = svm.decision_function(z[negatives])
        hard = negatives[scores > config.hard_negative_margin]
        new = np.setdiff1d(hard, active)
        if len(new) == 0:
            break
        order = np.argsort(-svm.decision_function(z[new]), kind="stable")
        active = np.union1d(active, new[order][: config.negatives_per_round])
        log.info(
            "class %d round %d: %d hard negatives added",
            c,
            round_ + 1,
            min(len(new), config.negatives_per_round),
        )
    return svm.coef_[0].astype(np.float64), float(svm.intercept_[0])


def _platt(
    margins: np.ndarray, labels: np.ndarray, num_classes: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class logistic fit of P(class | margin): Platt scaling (Platt 1999), with optional
    per-row weights."""
    a, b = np.ones(num_classes), np.zeros(num_classes)
    for c in range(num_classes):
        y = (labels == c).astype(np.int64)
        if y.min() == y.max():
            log.warning(
                "class %d has a single outcome in the calibration set; Platt left at identity", c
            )
            continue
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(
            margins[:, c : c + 1], y, sample_weight=weights
        )
        a[c], b[c] = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return a, b
