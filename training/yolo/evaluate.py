"""Evaluate a YOLOv4 model on whole mammograms as the SDK runs it: the paper's Tables 5 and 6
and a FROC curve.

A torch model is wrapped as a backend session (:class:`TorchYoloSession`, raw head outputs)
under :class:`calcsdk.pipelines.yolo.YoloPipeline`, so tiling, the numpy decoding and the
post-processing are the SDK's own; detections come back in ORIGINAL pixels and are scored
against the records' boxes with :func:`calcsdk.metrics.evaluate_detections` (confidence
threshold ``None`` = the paper's "No CF", and 0.5 = "CF 0.5") and :func:`calcsdk.froc.froc`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from calcsdk.detections import Detections
from calcsdk.froc import FrocCurve, froc
from calcsdk.image import read_mammogram
from calcsdk.metrics import DetectionReport, evaluate_detections
from calcsdk.model_io import YOLO_INPUT
from calcsdk.pipelines.yolo import YoloPipeline, YoloSettings
from calcsdk.postprocess import PostprocessConfig
from calcsdk.training.datasets.record import CLASS_NAMES, ImageRecord, records_to_ground_truth
from calcsdk.yolo_decode import RAW_OUTPUTS

__all__ = [
    "TorchYoloSession",
    "YoloEvaluation",
    "detect_records",
    "evaluate_test_split",
    "evaluate_yolo",
    "score_detections",
]


class TorchYoloSession:
    """The backend ``Session`` protocol over a torch YOLOv4 returning its raw heads.

    ``run({"images": (B, 1, S, S) float32})`` -> ``{"raw_stride8": ..., ...}`` numpy float32.
    """

    input_names = (YOLO_INPUT,)
    output_names = RAW_OUTPUTS

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu"):
        self.model = model
        self.device = torch.device(device)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                outputs = self.model(
                    torch.from_numpy(np.asarray(feeds[YOLO_INPUT])).to(self.device)
                )
        finally:
            self.model.train(was_training)
        return {name: out.float().cpu().numpy() for name, out in zip(RAW_OUTPUTS, outputs)}


@dataclass(frozen=True)
class YoloEvaluation:
    """Scores of one model on one set of images.

    ``no_cf`` / ``cf_05``: :class:`DetectionReport` counting all detections / those with score
    >= 0.5 (AP and mAP rank all detections either way); ``froc``: class-agnostic FROC;
    ``froc_per_class``: one FROC per class.
    """

    no_cf: DetectionReport
    cf_05: DetectionReport
    froc: FrocCurve
    froc_per_class: Mapping[str, FrocCurve]

    def table5(self) -> dict[str, dict[str, float]]:
        """Paper Table 5: per class precision and recall without / with the 0.5 threshold."""
        return {
            m.class_name: {
                "precision_no_cf": m.precision,
                "precision_cf_0.5": c.precision,
                "recall_no_cf": m.recall,
                "recall_cf_0.5": c.recall,
            }
            for m, c in zip(self.no_cf.per_class, self.cf_05.per_class)
        }

    def table6(self) -> dict[str, float]:
        """Paper Table 6: class-averaged (macro) precision, recall and F1 at CF 0.5, and mAP."""
        macro = self.cf_05.macro
        return {
            "precision": macro.precision,
            "recall": macro.recall,
            "f1": macro.f1,
            "mAP": self.cf_05.mean_average_precision,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: both tables, the full reports and the FROC curves."""
        return {
            "table5": self.table5(),
            "table6": self.table6(),
            "no_cf": self.no_cf.to_dict(),
            "cf_0.5": self.cf_05.to_dict(),
            "froc": self.froc.to_dict(),
            "froc_per_class": {k: v.to_dict() for k, v in self.froc_per_class.items()},
        }


def detect_records(pipeline: YoloPipeline, records: Sequence[ImageRecord]) -> list[Detections]:
    """Every scored detection (confidence 0, after the pipeline's candidate floor and NMS) of
    each record's image, boxes in original pixels."""
    detections = []
    for record in records:
        mammogram = read_mammogram(record.image_path, spacing_mm=record.spacing_mm)
        detections.append(pipeline(mammogram, confidence=0.0))
    return detections


def score_detections(
    detections: Sequence[Detections], records: Sequence[ImageRecord], iou_threshold: float = 0.5
) -> YoloEvaluation:
    """Tables 5/6 and FROC of ``detections`` (one per record, same order) against the records."""
    truths = records_to_ground_truth(records)
    return YoloEvaluation(
        no_cf=evaluate_detections(detections, truths, iou_threshold=iou_threshold),
        cf_05=evaluate_detections(
            detections, truths, iou_threshold=iou_threshold, conf_threshold=0.5
        ),
        froc=froc(detections, truths, iou_threshold=iou_threshold),
        froc_per_class={
            name: froc(detections, truths, iou_threshold=iou_threshold, class_name=name)
            for name in truths[0].class_names
        }
        if truths
        else {},
    )


def evaluate_yolo(
    model: nn.Module,
    records: Sequence[ImageRecord],
    settings: YoloSettings,
    *,
    post_config: PostprocessConfig | None = None,
    device: str | torch.device = "cpu",
    iou_threshold: float = 0.5,
) -> YoloEvaluation:
    """Run ``model`` (raw-output YOLOv4, e.g. the EMA weights) over ``records`` through the SDK
    pipeline with ``settings`` and score it (module docstring). ``records`` must be non-empty."""
    if not records:
        raise ValueError("evaluate_yolo needs at least one record")
    session = TorchYoloSession(model, device)
    pipeline = YoloPipeline.from_session(session, settings, CLASS_NAMES, post_config)
    return score_detections(detect_records(pipeline, records), records, iou_threshold)


def evaluate_test_split(
    weights: str | Path,
    settings: YoloSettings,
    records: Sequence[ImageRecord],
    out_dir: str | Path,
    *,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """The R-CNN's held-out report (Tables 5/6, FROC, by density) for trained YOLOv4 weights.

    ``weights`` (``best.pt`` or ``last.pt``'s EMA) run in torch on ``device`` (``None``: CUDA
    when present) under the SDK's YOLO pipeline with ``settings``; the tables come from
    :func:`calcsdk.training.detector_evaluation.evaluate_predictions`, as for the R-CNN, and go
    to ``out_dir/evaluation.{json,md}``.
    """
    from calcsdk.training.detector_evaluation import evaluate_predictions, predict_with
    from calcsdk.training.yolo.train import load_trained_yolo

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, _ = load_trained_yolo(weights)
    session = TorchYoloSession(model.to(device), device)
    pipeline = YoloPipeline.from_session(session, settings, CLASS_NAMES)

    preds, median_s = predict_with(lambda r: detect_records(pipeline, [r])[0], records)
    name = f"yolov4 torch {Path(weights).name} ({device.type})"
    return evaluate_predictions(preds, records, name, median_s, out_dir)
