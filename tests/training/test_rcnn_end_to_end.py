"""The paper's R-CNN end to end on a few small synthetic mammograms: samples -> fine-tuning ->
linear SVMs + Platt -> ONNX bundle -> calcsdk.Detector -> evaluation, against a trivial baseline
(the same EdgeBoxes proposals, scored and labelled at random)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from calcsdk import Detector
from calcsdk.detections import Detections
from calcsdk.image import read_mammogram
from calcsdk.metrics import evaluate_detections
from calcsdk.proposals import ProposalConfig
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.datasets.record import records_to_ground_truth
from calcsdk.training.detector_evaluation import evaluate_records
from calcsdk.training.models.alexnet import AlexNetConfig
from calcsdk.training.rcnn.box_regression import BoxRegressionConfig
from calcsdk.training.rcnn.head import HeadConfig
from calcsdk.training.rcnn.reference import ReferencePipeline
from calcsdk.training.rcnn.samples import SampleConfig
from calcsdk.training.rcnn.train import RcnnTrainConfig, train_rcnn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_detection_data):
    data = tiny_detection_data
    records = load_coco(data / "annotations.json")
    train, val, test = records[:16], records[16:20], records[20:]
    config = RcnnTrainConfig(
        name="rcnn-1",
        samples=SampleConfig(
            working_spacing_mm=0.1,
            proposals=ProposalConfig(max_boxes=300),
            negatives_per_image=24,
            jitter_per_gt=6,
        ),
        head=HeadConfig(initial_negatives=500, negatives_per_round=500, hard_negative_rounds=2),
        box_regression=BoxRegressionConfig(),
        finetune_overrides={
            "epochs": 4,
            "batch_size": 32,
            "patience": 0,
            "progress": False,
            "learning_rate": 3e-3,
        },
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train_rcnn(
            train,
            val,
            config,
            tmp_path_factory.mktemp("rcnn-run"),
            classifier_weights=None,
            model_config=AlexNetConfig(width=1 / 16),
            bundle_name="tiny-rcnn",
        )
    finally:
        torch.set_num_threads(threads)
    return result, records, test


def test_bundle_is_verified_and_detects_in_original_pixels(run):
    result, _, test = run
    detector = Detector(result.bundle_dir)
    assert detector.model_version == "tiny-rcnn@0.1.0"
    det = detector.detect(test[0].image_path, conf=0.0)
    assert isinstance(det, Detections)
    if len(det):
        h, w = 800, 600  # 60 x 80 mm at 0.1 mm
        assert det.boxes[:, 2].max() <= w and det.boxes[:, 3].max() <= h


def test_beats_random_scores_on_the_same_proposals(run):
    """Plumbing check on the training images (too few held-out ones for a stable figure)."""
    result, records, _ = run
    detector = Detector(result.bundle_dir)
    truths = records_to_ground_truth(records)
    pipeline = detector._pipeline
    rng = np.random.default_rng(0)
    ours, baseline = [], []
    for record in records:
        mammogram = read_mammogram(record.image_path)
        working = pipeline.prepare(mammogram)
        boxes = pipeline.propose(working)
        ours.append(pipeline.finish(working, boxes, pipeline.score(working, boxes), 0.0))
        random_scores = rng.random((len(boxes), 2)).astype(np.float32)
        baseline.append(pipeline.finish(working, boxes, random_scores, 0.0))
    ours_ap = evaluate_detections(ours, truths, iou_threshold=0.3).mean_average_precision
    base_ap = evaluate_detections(baseline, truths, iou_threshold=0.3).mean_average_precision
    assert ours_ap > base_ap + 0.02, (ours_ap, base_ap)


def test_sdk_matches_the_pytorch_reference_on_the_same_proposals(run):
    result, _, test = run
    reference = ReferencePipeline.from_run(result.bundle_dir.parent)
    detector = Detector(result.bundle_dir)
    pipeline = detector._pipeline
    mammogram = read_mammogram(test[0].image_path)
    working = pipeline.prepare(mammogram)
    boxes = pipeline.propose(working)[:40]
    ours = pipeline.score(working, boxes)
    theirs = reference.score(working, boxes)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_evaluation_tables(run, tmp_path: Path):
    result, _, test = run
    evaluation = evaluate_records(Detector(result.bundle_dir), test, tmp_path)
    overall = evaluation["overall"]
    assert set(overall["table5"]) == {"malignant", "benign"}
    assert {"precision", "recall", "f1", "map"} <= set(overall["table6"])
    assert (tmp_path / "evaluation.md").read_text().startswith("# Evaluation of tiny-rcnn@0.1.0")


def test_export_verify_parity_report(run):
    """`calcsdk export rcnn --run DIR --verify`: tensors within 1e-4, same detections as the
    PyTorch reference on held-out images with the same proposals."""
    import json

    from calcsdk.export.rcnn_export import export_run, verify_run

    result, _, test = run
    run_dir = result.bundle_dir.parent
    (run_dir / "split.json").write_text(json.dumps({"test": [r.image_path for r in test]}))
    assert export_run(run_dir) == run_dir / "bundle"
    copy = export_run(run_dir, run_dir / "reexported")
    assert Detector(copy).model_version == "tiny-rcnn@0.1.0"
    report = verify_run(run_dir, copy, n_images=2)
    assert report["fp32_ok"], report
    assert all(v["max_rel"] <= 1e-4 for v in report["fc7"].values())
    assert report["detections"]["matched_share"] == 1.0
    assert report["bbox"]["max_rel"] <= 1e-4  # the ONNX box regressor vs numpy
    assert report["detections"]["max_score_diff"] < 1e-4
    assert json.loads((run_dir / "parity.json").read_text())["fp32_ok"] is True


def test_detect_applies_the_box_regressor(run):
    """The bundle carries the regressor; detect() = proposals moved by their deltas, then NMS."""
    result, _, test = run
    detector = Detector(result.bundle_dir)
    assert "bbox" in detector.bundle.models
    pipeline = detector._pipeline
    working = pipeline.prepare(read_mammogram(test[0].image_path))
    boxes = pipeline.propose(working)
    scores, deltas = pipeline.score_and_deltas(working, boxes)
    assert deltas.shape == (len(boxes), 4) and np.abs(deltas).max() > 0
    refined = pipeline.refine(working, boxes, deltas)
    assert refined.shape == boxes.shape and not np.allclose(refined, boxes)
    expected = pipeline.finish(working, refined, scores, 0.0)
    ours = detector.detect(test[0].image_path, conf=0.0)
    np.testing.assert_array_equal(ours.boxes, expected.boxes)
    np.testing.assert_array_equal(ours.scores, expected.scores)
