"""YOLOv4 target assignment: best anchor over all heads plus anchors above iou_t, cell of the centre."""

from __future__ import annotations

import pytest
import torch

from calcsdk.training.yolo.targets import build_targets, wh_iou

# 9 anchors, squares of side 4, 8, ..., 1024 (wh-IoU between neighbours: 1/4 > 0.213)
ANCHORS = torch.tensor([[4.0 * 2**i] * 2 for i in range(9)])
GRIDS = [(8, 8), (4, 4), (2, 2)]
STRIDES = (8, 16, 32)


def _targets(*rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


def _assigned(heads):
    return sorted(
        (h, int(a), int(r), int(c), int(i), int(label))
        for h, t in enumerate(heads)
        for a, r, c, i, label in zip(t.anchor, t.row, t.col, t.image, t.labels)
    )


@pytest.mark.parametrize(
    ("row", "iou_t", "expected"),
    [
        # a 16x16 box centred at (20, 36): best anchor 2 (head 0), neighbours 1 and 3 have IoU 1/4
        (
            (0, 1, 12, 28, 28, 44),
            0.213,
            [(0, 1, 4, 2, 0, 1), (0, 2, 4, 2, 0, 1), (1, 0, 2, 1, 0, 1)],
        ),
        ((0, 1, 12, 28, 28, 44), 1.0, [(0, 2, 4, 2, 0, 1)]),
        ((0, 1, 12, 28, 28, 44), 0.3, [(0, 2, 4, 2, 0, 1)]),
        # a 64x64 box in image 3: anchor 4 = head 1, anchor 1; neighbours 3 (head 1) and 5 (head 1)
        ((3, 0, 0, 0, 64, 64), 0.213, [(1, 0, 2, 2, 3, 0), (1, 1, 2, 2, 3, 0), (1, 2, 2, 2, 3, 0)]),
        # a 2x2 box: anchor 0 (IoU 1/4) only; anchor 1 has IoU 1/16
        ((1, 0, 62, 62, 64, 64), 0.213, [(0, 0, 7, 7, 1, 0)]),
    ],
)
def test_assignment_table(row, iou_t, expected):
    heads = build_targets(_targets(row), ANCHORS, GRIDS, STRIDES, iou_t)
    assert _assigned(heads) == expected
    for head in heads:
        assert head.boxes.shape == (len(head), 4)


def test_centre_outside_grid_is_clamped():
    heads = build_targets(_targets((0, 0, 60, 60, 80, 80)), ANCHORS, GRIDS, STRIDES, 1.0)
    assert _assigned(heads) == [(0, 2, 7, 7, 0, 0)]


def test_no_targets_give_empty_heads():
    heads = build_targets(torch.zeros((0, 6)), ANCHORS, GRIDS, STRIDES, 0.213)
    assert [len(h) for h in heads] == [0, 0, 0]


@pytest.mark.parametrize(
    ("targets", "anchors", "message"),
    [(torch.zeros((2, 5)), ANCHORS, "T, 6"), (torch.zeros((1, 6)), ANCHORS[:6], "anchors")],
)
def test_bad_inputs_raise(targets, anchors, message):
    with pytest.raises(ValueError, match=message):
        build_targets(targets, anchors, GRIDS, STRIDES, 0.213)


def test_wh_iou():
    iou = wh_iou(torch.tensor([[4.0, 4.0], [2.0, 8.0]]), torch.tensor([[4.0, 4.0], [8.0, 2.0]]))
    torch.testing.assert_close(iou, torch.tensor([[1.0, 8 / 24], [8 / 24, 4 / 28]]))
