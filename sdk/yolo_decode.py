"""The ONE decoding of YOLOv4's raw head outputs into boxes and per-class scores (numpy).

Raw head output (``calcsdk.training.models.yolov4``; the ONNX graph exported with
``decode=False``), one float32 array per head, strides 8, 16, 32 pixels of the network input::

    (N, A * (5 + C), H, W)      channel a * (5 + C) + k: k = 0..3 tx, ty, tw, th;
                                k = 4 objectness logit; k = 5.. the C class logits

Decoding, darknet's ``[yolo]`` layer with YOLOv4's grid sensitivity ``scale_x_y = k``, for the
cell in column ``i`` and row ``j`` of a head of stride ``s`` and its anchor ``(pw, ph)``::

    cx = (sigmoid(tx) * k - (k - 1) / 2 + i) * s        (network-input pixels)
    cy = (sigmoid(ty) * k - (k - 1) / 2 + j) * s
    w  = pw * exp(min(tw, MAX_LOG_SCALE))               h likewise with ph, th
    box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)   xyxy, x2/y2 exclusive
    score[c] = sigmoid(objectness) * sigmoid(class_logit[c])

``MAX_LOG_SCALE`` (torchvision's ``log(1000 / 16)``) keeps ``exp`` finite for any logit.
Predictions are listed head by head (stride 8 first), within a head anchor by anchor, then row
by row, column by column: index ``offset_h + (a * H + j) * W + i``.

The torch training code mirrors this formula only for the loss; the ONNX graph's in-graph
decoding is tested against :func:`decode_yolo`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "ANCHORS_PER_HEAD",
    "DEFAULT_SCALE_X_Y",
    "MAX_LOG_SCALE",
    "RAW_OUTPUTS",
    "STRIDES",
    "anchors_by_head",
    "decode_head",
    "decode_yolo",
    "num_predictions",
    "sigmoid",
]

STRIDES: tuple[int, int, int] = (8, 16, 32)  # network-input pixels per cell, one per head
ANCHORS_PER_HEAD = 3
DEFAULT_SCALE_X_Y: tuple[float, float, float] = (1.2, 1.1, 1.05)  # darknet cfg/yolov4.cfg
MAX_LOG_SCALE = math.log(1000.0 / 16)  # tw, th are clamped here before exp (torchvision's clip)
#: Output names of a graph exported WITHOUT in-graph decoding, one per head (strides 8, 16, 32).
RAW_OUTPUTS: tuple[str, str, str] = ("raw_stride8", "raw_stride16", "raw_stride32")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function in float32, overflow-free for any finite logit (tanh form)."""
    x = np.asarray(x, np.float32)
    return (np.float32(0.5) * (np.float32(1.0) + np.tanh(np.float32(0.5) * x))).astype(np.float32)


def anchors_by_head(
    anchors: np.ndarray, num_heads: int = len(STRIDES), per_head: int = ANCHORS_PER_HEAD
) -> np.ndarray:
    """``(num_heads * per_head, 2)`` anchors ``(w, h)`` in network pixels, sorted by area (the
    smallest ones go to the stride-8 head) -> ``(num_heads, per_head, 2)`` float32.

    Raises ``ValueError`` for another shape or non-positive / non-finite sizes.
    """
    array = np.asarray(anchors, dtype=np.float64)
    if array.shape != (num_heads * per_head, 2):
        raise ValueError(
            f"anchors should have shape ({num_heads * per_head}, 2) (w, h in network pixels), "
            f"got {array.shape}"
        )
    if not np.isfinite(array).all() or (array <= 0).any():
        raise ValueError(f"anchors should be finite sizes > 0 pixels, got {array.tolist()}")
    return array.reshape(num_heads, per_head, 2).astype(np.float32)


def num_predictions(height: int, width: int, strides: Sequence[int] = STRIDES) -> int:
    """``A_total``: predictions of a ``height x width`` input (multiples of 32), 3 per cell."""
    return sum(ANCHORS_PER_HEAD * (height // s) * (width // s) for s in strides)


def decode_head(
    raw: np.ndarray, anchors: np.ndarray, stride: int, scale_x_y: float
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one head.

    Args:
        raw: ``(N, A * (5 + C), H, W)`` float32 raw output of the head.
        anchors: ``(A, 2)`` anchor ``(w, h)`` of this head, network-input pixels.
        stride: network-input pixels per cell (8, 16 or 32).
        scale_x_y: grid sensitivity factor ``k`` (1 = plain YOLOv3 decoding).
    Returns:
        boxes ``(N, A * H * W, 4)`` float32 xyxy and scores ``(N, A * H * W, C)`` float32 in
        [0, 1], both in network-input pixels, ordered anchor, row, column.
    """
    raw = np.asarray(raw)
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    if raw.ndim != 4:
        raise ValueError(f"raw head output should be (N, A*(5+C), H, W), got shape {raw.shape}")
    n, channels, height, width = raw.shape
    num_anchors = len(anchors)
    if num_anchors == 0 or channels % num_anchors or channels // num_anchors < 6:
        raise ValueError(
            f"raw head output has {channels} channels, which is not {num_anchors} anchors x "
            f"(5 + C) with C >= 1"
        )
    p = raw.astype(np.float32, copy=False).reshape(
        n, num_anchors, channels // num_anchors, height, width
    )
    k = np.float32(scale_x_y)
    offset = np.float32((scale_x_y - 1.0) / 2.0)
    cols = np.arange(width, dtype=np.float32)[None, None, None, :]
    rows = np.arange(height, dtype=np.float32)[None, None, :, None]
    cx = (sigmoid(p[:, :, 0]) * k - offset + cols) * np.float32(stride)
    cy = (sigmoid(p[:, :, 1]) * k - offset + rows) * np.float32(stride)
    log_max = np.float32(MAX_LOG_SCALE)
    w = np.exp(np.minimum(p[:, :, 2], log_max)) * anchors[None, :, 0, None, None]
    h = np.exp(np.minimum(p[:, :, 3], log_max)) * anchors[None, :, 1, None, None]
    half_w, half_h = w * np.float32(0.5), h * np.float32(0.5)
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)
    scores = sigmoid(p[:, :, 4:5]) * sigmoid(p[:, :, 5:])  # (N, A, C, H, W)
    scores = scores.transpose(0, 1, 3, 4, 2)
    count, num_classes = num_anchors * height * width, channels // num_anchors - 5
    return (
        boxes.reshape(n, count, 4).astype(np.float32, copy=False),
        np.ascontiguousarray(scores.reshape(n, count, num_classes)),
    )


def decode_yolo(
    raw_outputs: Sequence[np.ndarray],
    anchors: np.ndarray,
    *,
    strides: Sequence[int] = STRIDES,
    scale_x_y: Sequence[float] = DEFAULT_SCALE_X_Y,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode all heads (see the module docstring for the formula and the order).

    Args:
        raw_outputs: one ``(N, A * (5 + C), H_h, W_h)`` float32 array per head, strides order.
        anchors: ``(heads * A, 2)`` anchors ``(w, h)`` in network-input pixels, sorted by area.
        strides: network-input pixels per cell of each head.
        scale_x_y: grid sensitivity factor of each head.
    Returns:
        boxes ``(N, A_total, 4)`` float32 xyxy network-input pixels; scores ``(N, A_total, C)``
        float32 class confidences (objectness x class probability).
    """
    raw_outputs = list(raw_outputs)
    if not (len(raw_outputs) == len(strides) == len(scale_x_y)):
        raise ValueError(
            f"need one raw output, stride and scale_x_y per head, got {len(raw_outputs)}, "
            f"{len(strides)} and {len(scale_x_y)}"
        )
    per_head = anchors_by_head(anchors, len(strides))
    decoded = [
        decode_head(raw, head_anchors, stride, k)
        for raw, head_anchors, stride, k in zip(raw_outputs, per_head, strides, scale_x_y)
    ]
    batch_sizes = {boxes.shape[0] for boxes, _ in decoded}
    classes = {scores.shape[2] for _, scores in decoded}
    if len(batch_sizes) != 1 or len(classes) != 1:
        raise ValueError(
            f"heads disagree on the batch size or class count: {batch_sizes}, {classes}"
        )
    return (
        np.concatenate([boxes for boxes, _ in decoded], axis=1),
        np.concatenate([scores for _, scores in decoded], axis=1),
    )
