"""Post-processing shared by every pipeline, in a fixed order (torchvision's roi_heads style):

1. per box, the best detector class and its calibrated score;
2. remove scores below the confidence threshold;
3. remove empty/too-small boxes;
4. class-wise NMS;
5. keep the top-k by score;
   optionally, box voting: each kept box moves to the score-weighted mean of the proposals
   overlapping it (``vote_iou``; the voters are all proposals, whatever the confidence
   threshold, so thresholding later gives the same boxes);
6. map boxes from the working frame back to ORIGINAL pixels and clip to the image.

Boxes follow :mod:`calcsdk.boxes` (xyxy float32, x2/y2 exclusive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calcsdk.boxes import (
    batched_nms,
    clip_boxes,
    remove_small_boxes,
    scale_boxes,
    vote_boxes,
)
from calcsdk.detections import Detections
from calcsdk.prepare import WorkingImage


@dataclass(frozen=True)
class PostprocessConfig:
    """Thresholds from the bundle manifest's ``thresholds`` section."""

    confidence: float = 0.5  # the paper's confidence threshold; None/0 keeps all ("No CF")
    nms_iou: float = 0.3  # class-wise NMS IoU
    max_detections: int = 100  # top-k per image after NMS
    min_size_px: float = 1.0  # boxes narrower than this (working pixels) are dropped
    nms_containment: float | None = None  # also suppress a box whose intersection with a
    # better box of its class exceeds this share of the smaller one (nested cluster boxes);
    # None: IoU only
    vote_iou: float | None = None  # box voting (calcsdk.boxes.vote_boxes) at this IoU; None: off


def postprocess(
    boxes: np.ndarray,
    class_scores: np.ndarray,
    class_names: Sequence[str],
    working: WorkingImage,
    config: PostprocessConfig,
    confidence: float | None = None,
) -> Detections:
    """Turn scored proposals into final :class:`Detections` in original pixels.

    Args:
        boxes: (N, 4) float32 xyxy in the working frame of ``working``.
        class_scores: (N, C) float32 calibrated probabilities for the C detector classes
            (``class_names`` order; any background column must already be dropped).
        working: the image the boxes were found on; its ``scale`` (``(sy, sx)``, working =
            original * s) and ``original_shape`` map the boxes back.
        confidence: overrides ``config.confidence`` when given (``0`` keeps everything).
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    class_scores = np.asarray(class_scores, np.float32).reshape(len(boxes), len(class_names))
    threshold = config.confidence if confidence is None else confidence
    sized = np.zeros(len(boxes), bool)  # step 3's test, once: it also picks box voting's voters
    sized[remove_small_boxes(boxes, config.min_size_px)] = True
    voters, voter_scores = boxes[sized], class_scores[sized]
    # 1. best class per box
    labels = class_scores.argmax(axis=1) if len(boxes) else np.zeros(0, np.int64)
    scores = class_scores[np.arange(len(boxes)), labels] if len(boxes) else np.zeros(0, np.float32)
    # 2. confidence threshold and 3. empty boxes (both filters; order-preserving)
    keep = (scores >= (threshold or 0.0)) & sized
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    # 4. class-wise NMS, optionally containment-aware (indices sorted by decreasing score)
    keep = batched_nms(boxes, scores, labels, config.nms_iou, config.nms_containment)
    # 5. top-k
    keep = keep[: config.max_detections]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if config.vote_iou is not None:
        boxes = vote_boxes(boxes, labels, voters, voter_scores, config.vote_iou)
    # 6. back to original pixels
    sy, sx = working.scale
    boxes = clip_boxes(scale_boxes(boxes, 1.0 / sx, 1.0 / sy), *working.original_shape)
    return Detections(boxes=boxes, scores=scores, labels=labels, class_names=tuple(class_names))
