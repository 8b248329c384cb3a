"""Proposal labelling as in R-CNN (Girshick et al. 2014), with the thresholds of the issue:

* IoU >= 0.5 with a ground-truth cluster: a positive of that cluster's class;
* IoU < 0.3 with every cluster: background (the ROI classifier's ``normal`` class);
* in between: ignored (neither positive nor negative).

Boxes are xyxy float32 in one common frame (the working frame during training).
"""

from __future__ import annotations

import numpy as np

from calcsdk.boxes import box_iou

POSITIVE_IOU = 0.5
BACKGROUND_IOU = 0.3
IGNORE = -1


def label_proposals(
    proposals: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    *,
    background_label: int,
    positive_iou: float = POSITIVE_IOU,
    background_iou: float = BACKGROUND_IOU,
) -> tuple[np.ndarray, np.ndarray]:
    """Label each proposal.

    Args:
        proposals: (N, 4) xyxy; gt_boxes: (M, 4) xyxy; gt_labels: (M,) int class indices.
        background_label: label given to background proposals (e.g. 2 = ``normal``).
    Returns:
        ``(labels (N,) int64, best_iou (N,) float32)`` with ``labels`` a class index, the
        ``background_label`` or ``IGNORE`` (-1).
    """
    n = len(proposals)
    if len(gt_boxes) == 0:
        return np.full(n, background_label, np.int64), np.zeros(n, np.float32)
    iou = box_iou(proposals, gt_boxes)
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(n), best].astype(np.float32)
    labels = np.full(n, IGNORE, np.int64)
    labels[best_iou < background_iou] = background_label
    positive = best_iou >= positive_iou
    labels[positive] = np.asarray(gt_labels, np.int64)[best[positive]]
    return labels, best_iou
