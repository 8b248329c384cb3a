"""YOLOv4's loss (darknet ``[yolo]`` layers of ``cfg/yolov4.cfg``), in torch.

Per head, with the assignment of :mod:`calcsdk.training.yolo.targets`:

* box: ``1 - CIoU`` (Zheng et al. 2020) of each positive prediction with its target, weight
  ``iou_normalizer`` (0.07);
* objectness: BCE towards 1 at positives and 0 elsewhere, except where a prediction already
  overlaps some ground truth of its image with IoU > ``ignore_thresh`` (0.7): those are not
  penalised; weight ``obj_normalizer`` (1);
* classes: BCE against the one-hot label at positives, weight ``cls_normalizer`` (1).

Terms are SUMMED over predictions and images and divided by ``normalizer`` (the optimizer
batch: darknet updates with ``learning_rate / batch`` times the summed gradient, so the paper's
learning rates apply per image). :func:`decode_boxes` mirrors :func:`calcsdk.yolo_decode.decode_head`
(the one numpy decoding) in torch, for the loss and the exported graph.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from calcsdk.training.models.yolov4 import split_anchors
from calcsdk.training.yolo.targets import build_targets
from calcsdk.yolo_decode import ANCHORS_PER_HEAD, MAX_LOG_SCALE, STRIDES

__all__ = ["YoloLoss", "box_iou_pairs", "ciou", "decode_boxes"]


def decode_boxes(
    predictions: torch.Tensor, anchors: torch.Tensor, stride: int, scale_x_y: float
) -> torch.Tensor:
    """``(N, A, H, W, 5 + C)`` raw predictions -> ``(N, A, H, W, 4)`` xyxy network pixels.

    The formula of :mod:`calcsdk.yolo_decode` (grid sensitivity ``scale_x_y``, ``exp`` of the
    size logits clamped at ``MAX_LOG_SCALE``); ``anchors`` is this head's ``(A, 2)``.
    """
    _, _, height, width, _ = predictions.shape
    rows = torch.arange(height, dtype=predictions.dtype, device=predictions.device)
    cols = torch.arange(width, dtype=predictions.dtype, device=predictions.device)
    offset = (scale_x_y - 1.0) / 2.0
    cx = (torch.sigmoid(predictions[..., 0]) * scale_x_y - offset + cols) * stride
    cy = (torch.sigmoid(predictions[..., 1]) * scale_x_y - offset + rows[:, None]) * stride
    anchor_w = anchors[:, 0].to(predictions)[None, :, None, None]
    anchor_h = anchors[:, 1].to(predictions)[None, :, None, None]
    w = torch.exp(predictions[..., 2].clamp(max=MAX_LOG_SCALE)) * anchor_w
    h = torch.exp(predictions[..., 3].clamp(max=MAX_LOG_SCALE)) * anchor_h
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``(..., P, 4)`` with ``(..., G, 4)`` xyxy boxes: ``(..., P, G)``."""
    top_left = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    bottom_right = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    inter = (bottom_right - top_left).clamp_min(0).prod(-1)
    area_a = (a[..., 2:] - a[..., :2]).clamp_min(0).prod(-1)
    area_b = (b[..., 2:] - b[..., :2]).clamp_min(0).prod(-1)
    return inter / (area_a[..., :, None] + area_b[..., None, :] - inter).clamp_min(1e-9)


def ciou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Complete IoU of matched ``(K, 4)`` xyxy boxes: ``IoU - rho^2 / c^2 - alpha * v``."""
    pw, ph = (pred[:, 2] - pred[:, 0]).clamp_min(eps), (pred[:, 3] - pred[:, 1]).clamp_min(eps)
    tw, th = (target[:, 2] - target[:, 0]), (target[:, 3] - target[:, 1])
    inter_w = torch.minimum(pred[:, 2], target[:, 2]) - torch.maximum(pred[:, 0], target[:, 0])
    inter_h = torch.minimum(pred[:, 3], target[:, 3]) - torch.maximum(pred[:, 1], target[:, 1])
    inter = inter_w.clamp_min(0) * inter_h.clamp_min(0)
    iou = inter / (pw * ph + tw * th - inter + eps)
    enclose_w = torch.maximum(pred[:, 2], target[:, 2]) - torch.minimum(pred[:, 0], target[:, 0])
    enclose_h = torch.maximum(pred[:, 3], target[:, 3]) - torch.minimum(pred[:, 1], target[:, 1])
    c2 = enclose_w**2 + enclose_h**2 + eps
    rho2 = (
        (pred[:, 0] + pred[:, 2] - target[:, 0] - target[:, 2]) ** 2
        + (pred[:, 1] + pred[:, 3] - target[:, 1] - target[:, 3]) ** 2
    ) / 4
    v = (4 / math.pi**2) * (torch.atan(tw / th.clamp_min(eps)) - torch.atan(pw / ph)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - rho2 / c2 - alpha * v


class YoloLoss:
    """Callable ``loss(raw_outputs, targets, normalizer) -> (total, parts)``.

    Args:
        anchors: ``(9, 2)`` anchor sizes, network pixels, sorted by area.
        num_classes: C. strides, scale_x_y: per head.
        iou_t, ignore_thresh, iou_normalizer, obj_normalizer, cls_normalizer: module docstring.
    """

    def __init__(
        self,
        anchors: torch.Tensor,
        num_classes: int,
        *,
        strides: Sequence[int] = STRIDES,
        scale_x_y: Sequence[float] = (1.2, 1.1, 1.05),
        iou_t: float = 0.213,
        ignore_thresh: float = 0.7,
        iou_normalizer: float = 0.07,
        obj_normalizer: float = 1.0,
        cls_normalizer: float = 1.0,
    ):
        self.anchors = torch.as_tensor(anchors, dtype=torch.float32).reshape(-1, 2)
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.scale_x_y = tuple(scale_x_y)
        self.iou_t = iou_t
        self.ignore_thresh = ignore_thresh
        self.weights = (iou_normalizer, obj_normalizer, cls_normalizer)

    def __call__(
        self, raw_outputs: Sequence[torch.Tensor], targets: torch.Tensor, normalizer: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Args: raw head outputs ``(N, A*(5+C), H, W)``; targets ``(T, 6)`` (targets.py);
        normalizer: divide the summed terms by it (the optimizer batch size).

        Returns: the scalar loss and its parts ``{"box", "obj", "cls"}`` (already weighted and
        normalised, as floats, for logging).
        """
        device = raw_outputs[0].device
        anchors = self.anchors.to(device)
        targets = targets.to(device=device, dtype=torch.float32)
        batch = raw_outputs[0].shape[0]
        grid_shapes = [tuple(raw.shape[-2:]) for raw in raw_outputs]
        assigned = build_targets(targets, anchors, grid_shapes, self.strides, self.iou_t)
        gt_boxes, gt_valid = _padded_truth(targets, batch)
        box_sum = obj_sum = cls_sum = raw_outputs[0].new_zeros(())
        for head, raw in enumerate(raw_outputs):
            head_anchors = anchors[head * ANCHORS_PER_HEAD : (head + 1) * ANCHORS_PER_HEAD]
            p = split_anchors(raw, ANCHORS_PER_HEAD).permute(0, 1, 3, 4, 2)  # (N, A, H, W, 5+C)
            boxes = decode_boxes(p, head_anchors, self.strides[head], self.scale_x_y[head])
            obj_target = torch.zeros_like(p[..., 4])
            obj_weight = torch.ones_like(p[..., 4])
            if gt_boxes.shape[1]:
                with torch.no_grad():  # darknet's ignore_thresh
                    iou = box_iou_pairs(boxes.detach().reshape(batch, -1, 4), gt_boxes)
                    best = iou.masked_fill(~gt_valid[:, None, :], 0).amax(dim=2)
                    obj_weight[best.reshape(obj_weight.shape) > self.ignore_thresh] = 0.0
            t = assigned[head]
            if len(t):
                index = (t.image, t.anchor, t.row, t.col)
                box_sum = box_sum + (1.0 - ciou(boxes[index], t.boxes)).sum()
                obj_target[index] = 1.0
                obj_weight[index] = 1.0
                one_hot = F.one_hot(t.labels, self.num_classes).to(p.dtype)
                cls_sum = cls_sum + F.binary_cross_entropy_with_logits(
                    p[index][:, 5:], one_hot, reduction="sum"
                )
            obj_sum = obj_sum + F.binary_cross_entropy_with_logits(
                p[..., 4], obj_target, weight=obj_weight, reduction="sum"
            )
        box_w, obj_w, cls_w = self.weights
        parts = {
            "box": box_w * box_sum / normalizer,
            "obj": obj_w * obj_sum / normalizer,
            "cls": cls_w * cls_sum / normalizer,
        }
        total = parts["box"] + parts["obj"] + parts["cls"]
        return total, {k: float(v.detach()) for k, v in parts.items()}


def _padded_truth(targets: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth per image as ``(N, G, 4)`` boxes and a ``(N, G)`` validity mask."""
    images = targets[:, 0].long()
    counts = torch.bincount(images, minlength=batch) if len(targets) else torch.zeros(batch)
    most = int(counts.max()) if len(targets) else 0
    boxes = targets.new_zeros((batch, most, 4))
    valid = torch.zeros((batch, most), dtype=torch.bool, device=targets.device)
    if most:
        order = torch.argsort(images, stable=True)
        sorted_images = images[order]
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(len(targets), device=targets.device) - starts[sorted_images]
        boxes[sorted_images, slot] = targets[order, 2:6]
        valid[sorted_images, slot] = True
    return boxes, valid
