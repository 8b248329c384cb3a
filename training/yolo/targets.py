"""YOLOv4's target assignment (darknet ``yolo_layer.c`` with ``iou_thresh``), in torch.

Each ground-truth box is matched, by width and height only (anchor and box sharing a centre),
against ALL nine anchors. It is assigned to the best-matching anchor and, as YOLOv4 added, to
every other anchor whose wh-IoU exceeds ``iou_t`` (darknet's ``iou_thresh=0.213``). An anchor
lives in one head; the box goes to that head's cell holding its centre (column
``floor(cx / stride)``, row ``floor(cy / stride)``). A cell-anchor claimed by two boxes is
trained towards both (darknet keeps the last one).

Ground truth comes as one ``(T, 6)`` float tensor for a batch, rows ``(image index, label, x1,
y1, x2, y2)``, boxes xyxy in network-input pixels (the collate format of ``data.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from calcsdk.yolo_decode import ANCHORS_PER_HEAD


@dataclass(frozen=True)
class HeadTargets:
    """Positive predictions of one head and what they should predict (K rows).

    ``image``, ``anchor`` (0..2 within the head), ``row``, ``col``: int64 ``(K,)`` indices of
    the prediction; ``boxes``: ``(K, 4)`` float xyxy network pixels; ``labels``: int64 ``(K,)``.
    """

    image: torch.Tensor
    anchor: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.image.numel())


def wh_iou(sizes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """IoU of ``(T, 2)`` box sizes with ``(A, 2)`` anchor sizes sharing a centre: ``(T, A)``."""
    inter = torch.minimum(sizes[:, None, 0], anchors[None, :, 0]) * torch.minimum(
        sizes[:, None, 1], anchors[None, :, 1]
    )
    union = (sizes[:, 0] * sizes[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None] - inter
    return inter / union.clamp_min(1e-12)


def build_targets(
    targets: torch.Tensor,
    anchors: torch.Tensor,
    grid_shapes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    iou_t: float,
) -> list[HeadTargets]:
    """Assign ground truth to predictions, one :class:`HeadTargets` per head.

    Args:
        targets: ``(T, 6)`` rows ``(image, label, x1, y1, x2, y2)``, network pixels; T may be 0.
        anchors: ``(heads * 3, 2)`` anchor sizes, network pixels, sorted by area.
        grid_shapes: ``(H, W)`` cells of each head; strides: pixels per cell of each head.
        iou_t: extra anchors with wh-IoU strictly above this are assigned too (1 disables).
    """
    if targets.ndim != 2 or targets.shape[1] != 6:
        raise ValueError(f"targets should be (T, 6), got {tuple(targets.shape)}")
    if anchors.shape != (len(strides) * ANCHORS_PER_HEAD, 2):
        raise ValueError(f"anchors should be ({len(strides) * ANCHORS_PER_HEAD}, 2)")
    anchors = anchors.to(targets)
    boxes = targets[:, 2:6]
    sizes = (boxes[:, 2:] - boxes[:, :2]).clamp_min(1e-6)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    iou = wh_iou(sizes, anchors)  # (T, 9)
    chosen = iou > iou_t
    if len(targets):
        chosen[torch.arange(len(targets)), iou.argmax(dim=1)] = True
    heads = []
    for head, ((height, width), stride) in enumerate(zip(grid_shapes, strides)):
        first = head * ANCHORS_PER_HEAD
        rows_t, anchor = torch.nonzero(chosen[:, first : first + ANCHORS_PER_HEAD], as_tuple=True)
        cells = torch.div(centres[rows_t], stride, rounding_mode="floor").long()
        heads.append(
            HeadTargets(
                image=targets[rows_t, 0].long(),
                anchor=anchor,
                row=cells[:, 1].clamp(0, height - 1),
                col=cells[:, 0].clamp(0, width - 1),
                boxes=boxes[rows_t],
                labels=targets[rows_t, 1].long(),
            )
        )
    return heads
