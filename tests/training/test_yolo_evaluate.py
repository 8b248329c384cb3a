"""Evaluation of YOLOv4 detections: the paper's Table 5/6 views and FROC, and the torch session."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calcsdk.detections import Detections
from calcsdk.training.datasets import ImageRecord
from calcsdk.training.models import YOLOv4, YOLOv4Config
from calcsdk.training.yolo.evaluate import TorchYoloSession, score_detections
from calcsdk.yolo_decode import RAW_OUTPUTS

RECORDS = [
    ImageRecord("a.png", [[10, 10, 30, 30], [50, 50, 70, 80]], [0, 1]),
    ImageRecord("b.png", np.zeros((0, 4)), []),
]


def _detections(boxes, scores, labels):
    return Detections(
        np.asarray(boxes, np.float32).reshape(-1, 4), scores, np.asarray(labels, np.int64)
    )


def test_tables_count_with_and_without_the_confidence_threshold():
    preds = [
        _detections([[10, 10, 30, 30], [50, 50, 70, 80], [0, 0, 5, 5]], [0.9, 0.3, 0.6], [0, 1, 0]),
        _detections([[1, 1, 9, 9]], [0.2], [1]),
    ]
    evaluation = score_detections(preds, RECORDS)
    table5 = evaluation.table5()
    # malignant: TP 0.9, FP 0.6 (both >= 0.5); benign: TP 0.3 (< 0.5), FP 0.2
    assert table5["malignant"] == {
        "precision_no_cf": 0.5,
        "precision_cf_0.5": 0.5,
        "recall_no_cf": 1.0,
        "recall_cf_0.5": 1.0,
    }
    assert table5["benign"]["precision_no_cf"] == 0.5 and table5["benign"]["recall_cf_0.5"] == 0.0
    table6 = evaluation.table6()
    assert table6["recall"] == pytest.approx(0.5) and 0 < table6["mAP"] <= 1
    assert evaluation.froc.n_lesions == 2 and set(evaluation.froc_per_class) == {
        "malignant",
        "benign",
    }
    summary = evaluation.to_dict()
    assert set(summary) >= {"table5", "table6", "no_cf", "cf_0.5", "froc", "froc_per_class"}


def test_no_detections_score_zero():
    preds = [Detections.empty(), Detections.empty()]
    table6 = score_detections(preds, RECORDS).table6()
    assert table6["precision"] == 0 and table6["recall"] == 0 and table6["mAP"] == 0


def test_torch_session_returns_named_raw_heads_and_keeps_training_mode():
    torch.manual_seed(0)
    model = YOLOv4(YOLOv4Config(num_classes=2, in_channels=1, width=1 / 16, depth=1 / 8)).train()
    session = TorchYoloSession(model)
    outputs = session.run({"images": np.zeros((2, 1, 64, 32), np.float32)})
    assert tuple(outputs) == RAW_OUTPUTS
    assert [o.shape for o in outputs.values()] == [(2, 21, 8, 4), (2, 21, 4, 2), (2, 21, 2, 1)]
    assert model.training  # restored after the eval-mode forward
