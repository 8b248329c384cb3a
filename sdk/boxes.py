"""Box convention and box operations for the whole of calcsdk.

The box convention, stated once for the whole code base
--------------------------------------------------------
A box is ``(x1, y1, x2, y2)`` ("xyxy"), stored as ``float32`` in **original-image pixels**
(the pixel grid of the mammogram as it was read, before any resampling):

* ``(x1, y1)`` is the top-left corner; x grows to the right (columns), y grows downwards (rows);
* ``x2`` and ``y2`` are *exclusive*: the box covers columns ``[x1, x2)`` and rows ``[y1, y2)``,
  so ``width = x2 - x1`` and ``height = y2 - y1`` (no ``+ 1`` anywhere);
* a valid box has ``0 <= x1 < x2`` and ``0 <= y1 < y2``; an image of ``height x width`` pixels
  holds boxes with ``x2 <= width`` and ``y2 <= height``.

Arrays of boxes have shape ``(N, 4)``; ``N`` may be 0. The "xywh" form ``(x, y, w, h)`` (COCO's
``bbox``) names the same top-left corner plus width and height. Boxes in another pixel grid
(e.g. the working pixel spacing of a pipeline) are mapped back with :func:`scale_boxes`.

The operations below are vectorised numpy, accept any real dtype (integers are promoted),
compute in float64 and return float32 boxes/IoUs or int64 indices.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "apply_box_deltas",
    "as_box_array",
    "batched_nms",
    "box_area",
    "box_iou",
    "clip_boxes",
    "encode_box_deltas",
    "nms",
    "remove_small_boxes",
    "scale_boxes",
    "xywh_to_xyxy",
    "xyxy_to_xywh",
]


def as_box_array(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """Validate an array of boxes and return it as float64 of shape (N, 4).

    Any empty input (size 0) becomes shape (0, 4). Raises ``TypeError`` for a non-real dtype and
    ``ValueError`` for another shape or non-finite values. The box order is not checked here.
    """
    array = np.asarray(boxes)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} should be a real-valued array, got dtype {array.dtype}")
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name} should have shape (N, 4), got {array.shape}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} should hold finite values, got NaN or inf")
    return array


def _as_scores(scores: np.ndarray, length: int, name: str = "scores") -> np.ndarray:
    array = np.asarray(scores)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name} should be a real-valued array, got dtype {array.dtype}")
    array = array.reshape(-1) if array.size == 0 else array
    if array.shape != (length,):
        raise ValueError(
            f"{name} should have shape ({length},) to match the boxes, got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} should hold finite values, got NaN or inf")
    return array.astype(np.float64, copy=False)


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} should be a finite number > 0, got {value}")
    return value


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of each box in square pixels.

    Args:
        boxes: (N, 4) xyxy boxes (any real dtype).
    Returns:
        (N,) float32 ``(x2 - x1) * (y2 - y1)``; degenerate boxes (x2 <= x1 or y2 <= y1) get 0.
    """
    boxes = as_box_array(boxes)
    widths = np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None)
    heights = np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)
    return (widths * heights).astype(np.float32)


def _pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of float64 (N, 4) and (M, 4) boxes, float64 (N, M); a zero union gives IoU 0."""
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = area_a[:, None] + area_b[None, :] - intersection
    iou = np.zeros_like(intersection)
    np.divide(intersection, union, out=iou, where=union > 0)
    return iou


def box_iou(a: np.ndarray, b: np.ndarray, *, dtype: type = np.float32) -> np.ndarray:
    """Pairwise intersection over union of two sets of xyxy boxes (same pixel frame).

    Args:
        a: (N, 4) boxes; b: (M, 4) boxes; any real dtype, N or M may be 0.
        dtype: of the result; float32 by default, float64 where IoUs are compared with a
            threshold and must agree bit for bit with COCO's double-precision evaluation.
    Returns:
        (N, M) IoU in [0, 1], computed in float64; pairs with zero union get 0.
    """
    return _pairwise_iou(as_box_array(a, "a"), as_box_array(b, "b")).astype(dtype, copy=False)


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip boxes to an image of ``height x width`` pixels: x into [0, width], y into [0, height].

    Boxes wholly outside the image become degenerate (zero width or height); remove them with
    :func:`remove_small_boxes`. Returns (N, 4) float32.
    """
    boxes = as_box_array(boxes)
    height, width = _positive(height, "height"), _positive(width, "width")
    clipped = boxes.copy()
    clipped[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, width)
    clipped[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, height)
    return clipped.astype(np.float32)


def remove_small_boxes(boxes: np.ndarray, min_size: float) -> np.ndarray:
    """Indices of the boxes whose width AND height are both >= ``min_size`` pixels.

    Returns (K,) int64 indices in increasing order. ``min_size`` must be >= 0; with 0, only boxes
    with negative width or height are dropped (use a small positive value to drop empty boxes).
    """
    boxes = as_box_array(boxes)
    min_size = float(min_size)
    if not np.isfinite(min_size) or min_size < 0:
        raise ValueError(f"min_size should be a finite number >= 0, got {min_size}")
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return np.flatnonzero((widths >= min_size) & (heights >= min_size)).astype(np.int64)


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Multiply x coordinates by ``sx`` and y coordinates by ``sy`` (both > 0).

    A pipeline that resampled the image by factors (sx, sy) maps its boxes back to the original
    pixels with ``scale_boxes(boxes, 1 / sx, 1 / sy)``. Returns (N, 4) float32.
    """
    boxes = as_box_array(boxes)
    factors = np.array([_positive(sx, "sx"), _positive(sy, "sy")] * 2)
    return (boxes * factors).astype(np.float32)


MAX_LOG_SCALE = float(np.log(4.0))  # a regressed box grows or shrinks at most 4x per side


def _centre_size(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = boxes[:, 2:] - boxes[:, :2]
    return boxes[:, :2] + 0.5 * size, size


def encode_box_deltas(proposals: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """R-CNN box-regression targets (Girshick et al. 2014, appendix C) of ``proposals`` towards
    ``targets``, row by row.

    Args:
        proposals, targets: (N, 4) xyxy in one pixel frame, positive widths and heights.
    Returns:
        (N, 4) float32 ``(dx, dy, dw, dh)``: centre shift in units of the proposal's width and
        height, and log size ratios. :func:`apply_box_deltas` inverts it.
    Raises:
        ValueError: different lengths, or a box without positive width and height.
    """
    proposals, targets = as_box_array(proposals, "proposals"), as_box_array(targets, "targets")
    if len(proposals) != len(targets):
        raise ValueError(f"{len(proposals)} proposals but {len(targets)} targets")
    (pc, ps), (tc, ts) = _centre_size(proposals), _centre_size(targets)
    if (ps <= 0).any() or (ts <= 0).any():
        raise ValueError("box regression needs boxes with positive width and height")
    return np.concatenate([(tc - pc) / ps, np.log(ts / ps)], axis=1).astype(np.float32)


def apply_box_deltas(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Move ``boxes`` by R-CNN ``deltas`` (see :func:`encode_box_deltas`).

    Args:
        boxes: (N, 4) xyxy; deltas: (N, 4) ``(dx, dy, dw, dh)``. Log scales are clamped to
            +-:data:`MAX_LOG_SCALE`, so a wild regressor cannot blow a box up.
    Returns:
        (N, 4) float32 xyxy in the frame of ``boxes`` (clip them with :func:`clip_boxes`).
    Raises:
        ValueError: ``deltas`` is not (N, 4) finite numbers.
    """
    boxes = as_box_array(boxes)
    deltas = np.asarray(deltas, np.float64)
    if deltas.shape != boxes.shape or not np.isfinite(deltas).all():
        raise ValueError(f"deltas should be finite with shape {boxes.shape}, got {deltas.shape}")
    centre, size = _centre_size(boxes)
    centre = centre + deltas[:, :2] * size
    size = size * np.exp(np.clip(deltas[:, 2:], -MAX_LOG_SCALE, MAX_LOG_SCALE))
    return np.concatenate([centre - 0.5 * size, centre + 0.5 * size], axis=1).astype(np.float32)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``(x, y, w, h)`` -> (N, 4) float32 ``(x1, y1, x2, y2)`` with ``x2 = x + w``."""
    boxes = as_box_array(boxes)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1).astype(np.float32)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``(x1, y1, x2, y2)`` -> (N, 4) float32 ``(x, y, w, h)`` with ``w = x2 - x1``."""
    boxes = as_box_array(boxes)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float32)


def _check_iou_threshold(iou_threshold: float) -> float:
    iou_threshold = float(iou_threshold)
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold should be in [0, 1], got {iou_threshold}")
    return iou_threshold


def _greedy_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    containment_threshold: float | None = None,
) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")  # decreasing score, ties by lower index first
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(best)
        iou = _pairwise_iou(boxes[best : best + 1], boxes[rest])[0]
        survive = iou <= iou_threshold
        if containment_threshold is not None and rest.size:
            lt = np.maximum(boxes[best, :2], boxes[rest, :2])
            rb = np.minimum(boxes[best, 2:], boxes[rest, 2:])
            inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
            smaller = np.minimum(areas[best], areas[rest])
            contained = np.where(smaller > 0, inter / np.where(smaller > 0, smaller, 1), 0.0)
            survive &= contained <= containment_threshold
        order = rest[survive]
    return np.asarray(keep, dtype=np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression (as ``torchvision.ops.nms``).

    Visits boxes by decreasing score (equal scores: lower index first), keeps each box and drops
    every remaining box whose IoU with it is strictly greater than ``iou_threshold``.

    Args:
        boxes: (N, 4) xyxy boxes; scores: (N,) finite scores; iou_threshold in [0, 1].
    Returns:
        (K,) int64 indices of the kept boxes, sorted by decreasing score.
    """
    boxes = as_box_array(boxes)
    scores = _as_scores(scores, len(boxes))
    return _greedy_nms(boxes, scores, _check_iou_threshold(iou_threshold))


def vote_boxes(
    kept: np.ndarray,
    kept_labels: np.ndarray,
    boxes: np.ndarray,
    class_scores: np.ndarray,
    iou_threshold: float,
) -> np.ndarray:
    """Box voting (Gidaris & Komodakis, 2015): move each kept box to the score-weighted mean of
    the candidate boxes that overlap it.

    Kept box ``k`` of class ``c = kept_labels[k]`` becomes ``sum_i w_i * boxes[i] / sum_i w_i``
    over every candidate ``i`` with ``IoU(kept[k], boxes[i]) >= iou_threshold``, where
    ``w_i = class_scores[i, c]``. A box with no positive weight stays where it is. NMS keeps
    the best-scored box of a group, not the best-placed one; the vote pools the placement of
    its well-scored neighbours.

    Args:
        kept: (K, 4) xyxy boxes after NMS; kept_labels: (K,) class indices into the columns
            of ``class_scores``.
        boxes: (N, 4) xyxy candidates in the same pixel frame (usually including ``kept``).
        class_scores: (N, C) non-negative scores (calibrated probabilities) of the candidates.
        iou_threshold: in [0, 1].
    Returns:
        (K, 4) float32 xyxy boxes, same frame.
    """
    kept = as_box_array(kept, "kept")
    boxes = as_box_array(boxes)
    class_scores = np.asarray(class_scores, np.float64)
    kept_labels = np.asarray(kept_labels).reshape(-1)
    if class_scores.ndim != 2 or len(class_scores) != len(boxes):
        raise ValueError(f"class_scores should be ({len(boxes)}, C), got {class_scores.shape}")
    if kept_labels.shape != (len(kept),):
        raise ValueError(f"kept_labels should have shape ({len(kept)},), got {kept_labels.shape}")
    iou_threshold = _check_iou_threshold(iou_threshold)
    if len(kept) == 0 or len(boxes) == 0:
        return kept.astype(np.float32, copy=True)
    weights = class_scores[:, kept_labels].T * (_pairwise_iou(kept, boxes) >= iou_threshold)
    weights = np.clip(weights, 0.0, None)  # (K, N)
    total = weights.sum(axis=1)
    voted = (weights @ boxes) / np.where(total > 0, total, 1.0)[:, None]
    return np.where((total > 0)[:, None], voted, kept).astype(np.float32)


def batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    iou_threshold: float,
    containment_threshold: float | None = None,
) -> np.ndarray:
    """Class-wise NMS: boxes with different ``labels`` never suppress each other.

    With ``containment_threshold``, a box is also dropped when more than that share of the
    smaller of it and a kept box lies inside the other (intersection / smaller area): nested
    boxes of one calcification cluster have a low IoU but a containment near 1.

    Uses torchvision's offset trick (each class is shifted by ``label * (max_coordinate + 1)`` so
    that boxes of different classes cannot overlap), in float64.

    Args:
        boxes: (N, 4) xyxy; scores: (N,); labels: (N,) integers; iou_threshold in [0, 1];
        containment_threshold in [0, 1] or None (IoU only, as torchvision).
    Returns:
        (K,) int64 indices of the kept boxes, sorted by decreasing score (ties: lower index).
    """
    boxes = as_box_array(boxes)
    scores = _as_scores(scores, len(boxes))
    labels = np.asarray(labels)
    labels = labels.reshape(-1) if labels.size == 0 else labels
    if labels.shape != (len(boxes),):
        raise ValueError(f"labels should have shape ({len(boxes)},), got {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels should be integers, got dtype {labels.dtype}")
    iou_threshold = _check_iou_threshold(iou_threshold)
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    span = boxes.max() - min(boxes.min(), 0.0) + 1.0
    offsets = (labels.astype(np.float64) - labels.min()) * span
    if containment_threshold is not None:
        containment_threshold = _check_iou_threshold(containment_threshold)
    return _greedy_nms(boxes + offsets[:, None], scores, iou_threshold, containment_threshold)
