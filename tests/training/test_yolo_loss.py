"""YOLOv4 loss: the torch decoding mirrors the numpy one, CIoU values, ignore, normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from calcsdk.training.models.yolov4 import split_anchors
from calcsdk.training.yolo.loss import YoloLoss, box_iou_pairs, ciou, decode_boxes
from calcsdk.yolo_decode import decode_head, decode_yolo

ANCHORS = torch.tensor([[w, w * 1.25] for w in (4, 6, 8, 12, 16, 24, 32, 48, 64)])
NUM_CLASSES = 2


def _raw_outputs(batch: int = 2, size: int = 64, seed: int = 0, scale: float = 2.0):
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(batch, 3 * (5 + NUM_CLASSES), size // s, size // s, generator=generator)
            * scale
        )
        for s in (8, 16, 32)
    ]


@pytest.mark.parametrize(("stride", "k"), [(8, 1.2), (16, 1.1), (32, 1.05), (8, 1.0)])
def test_torch_decoding_mirrors_numpy(stride, k):
    raw = torch.randn(2, 21, 5, 3, generator=torch.Generator().manual_seed(stride)) * 4
    raw[0, 2, 0, 0] = 50.0  # beyond MAX_LOG_SCALE: both clamp
    anchors = ANCHORS[:3]
    p = split_anchors(raw, 3).permute(0, 1, 3, 4, 2)
    ours = decode_boxes(p, anchors, stride, k).reshape(2, -1, 4).numpy()
    reference, _ = decode_head(raw.numpy(), anchors.numpy(), stride, k)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("pred", "target", "expected"),
    [
        ([0, 0, 4, 4], [0, 0, 4, 4], 1.0),
        ([0, 0, 4, 2], [0, 0, 4, 4], 0.5 - 1 / 32),  # IoU 0.5, centres 1 apart in a 4x4 box
        ([0, 0, 2, 2], [10, 10, 12, 12], -(200 / 288)),  # disjoint: -rho^2/c^2 (same shape)
    ],
)
def test_ciou_values(pred, target, expected):
    value = ciou(
        torch.tensor([pred], dtype=torch.float32), torch.tensor([target], dtype=torch.float32)
    )
    if pred == [0, 0, 4, 2]:  # add the aspect-ratio term for the second case
        v = 4 / math.pi**2 * (math.atan(1.0) - math.atan(2.0)) ** 2
        expected -= v / (1 - 0.5 + v) * v
    assert float(value) == pytest.approx(expected, abs=1e-6)


def test_box_iou_pairs_shape_and_values():
    a = torch.tensor([[[0.0, 0, 2, 2], [0, 0, 4, 4]]])
    b = torch.tensor([[[0.0, 0, 2, 2]]])
    torch.testing.assert_close(box_iou_pairs(a, b), torch.tensor([[[1.0], [0.25]]]))


def test_without_targets_only_objectness_counts():
    loss = YoloLoss(ANCHORS, NUM_CLASSES)
    total, parts = loss(_raw_outputs(), torch.zeros((0, 6)), normalizer=2)
    assert parts["box"] == 0 and parts["cls"] == 0 and parts["obj"] > 0
    assert float(total) == pytest.approx(parts["obj"], rel=1e-6)


def test_normalizer_divides_and_gradients_are_finite():
    raws = [r.requires_grad_() for r in _raw_outputs()]
    targets = torch.tensor([[0, 1, 10, 12, 30, 36], [1, 0, 40, 8, 52, 20]], dtype=torch.float32)
    loss = YoloLoss(ANCHORS, NUM_CLASSES)
    one, parts_one = loss(raws, targets, normalizer=1)
    four, _ = loss(raws, targets, normalizer=4)
    assert float(four.detach()) == pytest.approx(float(one.detach()) / 4, rel=1e-6)
    assert all(v > 0 for v in parts_one.values())
    one.backward()
    assert all(torch.isfinite(r.grad).all() and r.grad.abs().sum() > 0 for r in raws)


def test_ignore_thresh_spares_overlapping_predictions():
    raws = _raw_outputs(scale=0.5)
    targets = torch.tensor([[0, 0, 8, 8, 40, 40]], dtype=torch.float32)
    penalise_all = YoloLoss(ANCHORS, NUM_CLASSES, ignore_thresh=1.0)(raws, targets, 1)[1]
    spare_any = YoloLoss(ANCHORS, NUM_CLASSES, ignore_thresh=0.0)(raws, targets, 1)[1]
    assert spare_any["obj"] < penalise_all["obj"]
    assert spare_any["box"] == pytest.approx(penalise_all["box"])


def test_matching_prediction_scores_lower_than_a_wrong_one():
    # one 16x16 box; the zero logits of the right cell decode to anchor 2 (8x10) at its centre
    targets = torch.tensor([[0, 1, 12, 12, 28, 28]], dtype=torch.float32)
    loss = YoloLoss(ANCHORS, NUM_CLASSES, iou_t=1.0)
    good = [torch.zeros(1, 21, 8 // (s // 8), 8 // (s // 8)) for s in (8, 16, 32)]
    for raw in good:
        raw.view(1, 3, 7, *raw.shape[-2:])[:, :, 4] = -8.0  # background everywhere
    bad = [r.clone() for r in good]
    # anchor 4 (16x20, head 1, anchor 1) at cell (1, 1): box, objectness, class 1
    head = good[1].view(1, 3, 7, 4, 4)
    head[0, 1, 3, 1, 1] = math.log(16 / 20)
    head[0, 1, 4:, 1, 1] = torch.tensor([8.0, -8.0, 8.0])
    total_good, _ = loss(good, targets, 1)
    total_bad, _ = loss(bad, targets, 1)
    assert float(total_good) < 0.2 * float(total_bad)


def test_numpy_decode_of_all_heads_matches_per_head():
    raws = [r.numpy() for r in _raw_outputs(batch=1)]
    boxes, _ = decode_yolo(raws, ANCHORS.numpy())
    first, _ = decode_head(raws[0], ANCHORS[:3].numpy(), 8, 1.2)
    np.testing.assert_array_equal(boxes[:, : first.shape[1]], first)
