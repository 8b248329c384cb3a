"""Parity of exported graphs with their torch / numpy references (``calcsdk export --verify``).

Three levels, as a deployment engineer wants them:

1. tensors: each ONNX graph against its reference on fresh random inputs of two batch sizes
   (max absolute and max relative error; fp32 must match to 1e-4 relative);
2. detections: the SDK pipeline against the per-crop reference pipeline on the same images
   and the same proposals, matched by IoU (share matched at IoU >= 0.9, max score difference);
3. accuracy: the change in mAP between the two on a held-out set with ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from calcsdk.backends.base import Session
from calcsdk.boxes import box_iou
from calcsdk.detections import Detections, GroundTruth
from calcsdk.metrics import evaluate_detections
from calcsdk.model_io import FC7_INPUT, FC7_OUTPUT, HEAD_INPUT, HEAD_OUTPUT

FP32_RTOL = 1e-4


def tensor_error(actual: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """Max absolute error, and max error relative to the reference's max magnitude."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shapes differ: {actual.shape} vs {expected.shape}")
    abs_err = float(np.abs(actual - expected).max()) if actual.size else 0.0
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    return {"max_abs": abs_err, "max_rel": abs_err / scale if scale > 0 else abs_err}


@torch.no_grad()
def fc7_parity(
    alexnet: torch.nn.Module, session: Session, batch_sizes: Sequence[int] = (3, 17), seed: int = 0
) -> dict[str, Any]:
    """fc7 of the ONNX graph vs torch on random crops in [0, 1] of each batch size."""
    rng = np.random.default_rng(seed)
    results = {}
    for n in batch_sizes:
        crops = rng.random((n, alexnet.config.in_channels, 227, 227), dtype=np.float32)
        expected = alexnet.eval().features_fc7(torch.from_numpy(crops)).numpy()
        actual = session.run({FC7_INPUT: crops})[FC7_OUTPUT]
        results[f"batch_{n}"] = tensor_error(actual, expected)
    return results


def head_parity(head, session: Session, features: np.ndarray) -> dict[str, float]:
    """Calibrated scores of the folded ONNX head vs the numpy head on ``features`` (N, D)."""
    expected = head.probabilities(features)
    actual = session.run({HEAD_INPUT: np.asarray(features, np.float32)})[HEAD_OUTPUT]
    return tensor_error(actual, expected)


def detection_agreement(
    ours: Sequence[Detections], reference: Sequence[Detections], iou: float = 0.9
) -> dict[str, float]:
    """Share of reference detections that the pipeline reproduces (same label, IoU >= ``iou``)
    and the largest score difference among those pairs."""
    total = matched = 0
    worst = 0.0
    for a, b in zip(ours, reference):
        total += len(b)
        if len(a) == 0 or len(b) == 0:
            continue
        overlaps = box_iou(b.boxes, a.boxes)
        for i in range(len(b)):
            same = (a.labels == b.labels[i]) & (overlaps[i] >= iou)
            if same.any():
                j = int(np.argmax(np.where(same, overlaps[i], -1)))
                matched += 1
                worst = max(worst, abs(float(a.scores[j]) - float(b.scores[i])))
    return {
        "reference_detections": total,
        "matched_share": matched / total if total else 1.0,
        "max_score_diff": worst,
    }


def map_delta(
    ours: Sequence[Detections], reference: Sequence[Detections], truths: Sequence[GroundTruth]
) -> dict[str, float]:
    """mAP (IoU 0.5, all-point) of both, and ours minus reference."""
    a = evaluate_detections(ours, truths).mean_average_precision
    b = evaluate_detections(reference, truths).mean_average_precision
    return {"map": a, "map_reference": b, "delta": a - b}
