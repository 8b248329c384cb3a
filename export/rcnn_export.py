"""Export and verify an R-CNN training run (see :mod:`calcsdk.export.command`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.backends.base import create_backend
from calcsdk.bundle import load_bundle
from calcsdk.detector import Detector
from calcsdk.export.parity import (
    FP32_RTOL,
    detection_agreement,
    fc7_parity,
    head_parity,
    map_delta,
    tensor_error,
)
from calcsdk.image import read_mammogram
from calcsdk.model_io import BOX_INPUT, BOX_OUTPUT, FC7_INPUT, FC7_OUTPUT


def export_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    int8: bool = False,
    calibration_images: int = 16,
    calibration_crops_n: int = 256,
) -> Path:
    """Re-export ``run_dir``'s fine-tuned AlexNet and SVM head into a bundle.

    With ``int8``, also add ``fc7@int8`` (:func:`calcsdk.export.quantize.add_int8_fc7`),
    calibrated on ``calibration_crops_n`` real proposal crops of ``calibration_images``
    training images (the run's data minus its held-out ``split.json`` images).
    """
    bundle = _export_fp32(run_dir, out)
    if int8:
        from calcsdk.export.quantize import add_int8_fc7, calibration_crops

        images = _training_images(Path(run_dir), bundle, calibration_images)
        crops = calibration_crops(images, bundle, n=calibration_crops_n)
        if len(crops) == 0:
            raise ValueError(f"no proposal crops in {len(images)} training images to calibrate")
        add_int8_fc7(bundle, crops)
    return bundle


def _training_images(run: Path, bundle_dir: Path, count: int) -> list:
    """``count`` records of the run's data that are not held out, spread over the list."""
    from calcsdk.training.datasets.coco import load_coco

    data = load_bundle(bundle_dir).manifest.get("provenance", {}).get("data")
    if not data:
        raise ValueError(f"{bundle_dir}: no provenance.data to draw calibration images from")
    held_out = set(json.loads((run / "split.json").read_text()).get("test", []))
    records = [r for r in load_coco(data) if r.image_path not in held_out]
    picks = np.unique(np.linspace(0, len(records) - 1, min(count, len(records))).astype(int))
    return [records[i] for i in picks] if records else []


def _export_fp32(run_dir: str | Path, out: str | Path | None) -> Path:
    from dataclasses import replace

    from calcsdk.pipelines.rcnn import RcnnSettings
    from calcsdk.postprocess import PostprocessConfig
    from calcsdk.proposals import ProposalConfig
    from calcsdk.training.classifier.checkpoint import load_classifier
    from calcsdk.training.rcnn.box_regression import BoxRegressor
    from calcsdk.training.rcnn.head import LinearSvmHead
    from calcsdk.training.rcnn.samples import SampleConfig
    from calcsdk.training.rcnn.train import RcnnTrainConfig, export_rcnn_bundle

    run = Path(run_dir)
    target = Path(out) if out else run / "bundle"
    source = load_bundle(run / "bundle")
    if target.resolve() == (run / "bundle").resolve():
        return target  # training already exported this exact bundle
    # the settings are read back from the run's own bundle, so the re-export is identical
    settings = RcnnSettings.from_bundle(source)
    config = replace(
        RcnnTrainConfig(),
        samples=replace(
            SampleConfig(),
            working_spacing_mm=settings.working_spacing_mm,
            fallback_spacing_mm=settings.fallback_spacing_mm,
            representation=settings.representation,
            crop_size=settings.crop_size,
            context_pad=settings.context_pad,
            proposals=ProposalConfig.from_dict(source.section("proposals")),
        ),
        thresholds=PostprocessConfig(**source.section("thresholds")),
    )
    manifest = source.manifest
    return export_rcnn_bundle(
        load_classifier(run / "finetune" / "best.pt"),
        LinearSvmHead.load(run / "head.npz"),
        config,
        target,
        name=manifest["name"],
        provenance=manifest.get("provenance", {}),
        version=manifest["version"],
        regressor=(
            BoxRegressor.load(run / "box_regressor.npz") if "bbox" in source.models else None
        ),
    )


def verify_run(run_dir: str | Path, bundle_dir: str | Path, n_images: int = 8) -> dict[str, Any]:
    """Write ``parity.json`` beside the bundle (see :mod:`calcsdk.export.parity`)."""
    from calcsdk.training.datasets.coco import load_coco
    from calcsdk.training.datasets.record import records_to_ground_truth
    from calcsdk.training.rcnn.reference import ReferencePipeline

    run, bundle_path = Path(run_dir), Path(bundle_dir)
    bundle = load_bundle(bundle_path)
    reference = ReferencePipeline.from_run(run)
    backend = create_backend("onnxruntime", device="cpu")
    fc7 = backend.load(bundle.model_path("fc7"))
    head = backend.load(bundle.model_path("head"))
    report: dict[str, Any] = {"bundle": bundle.version}
    report["fc7"] = fc7_parity(reference.alexnet, fc7)
    features = np.random.default_rng(1).random((33, reference.head.mean.shape[0]), np.float32)
    report["head"] = head_parity(reference.head, head, features * 4)
    if reference.regressor is not None:
        deltas = backend.load(bundle.model_path("bbox")).run({BOX_INPUT: features * 4})
        report["bbox"] = tensor_error(deltas[BOX_OUTPUT], reference.regressor.deltas(features * 4))

    # detections on held-out images, with the same proposals for both pipelines
    split = json.loads((run / "split.json").read_text())
    data = bundle.manifest.get("provenance", {}).get("data")
    test_paths = split["test"][:n_images]
    detector = Detector(bundle_path)
    pipeline = detector._pipeline
    ours, refs = [], []
    for path in test_paths:
        mammogram = read_mammogram(path)
        working = pipeline.prepare(mammogram)
        boxes = pipeline.propose(working)
        ours.append(pipeline.back((working, boxes), 0.0))
        refs.append(reference(mammogram, 0.0, proposals=boxes))
    report["detections"] = detection_agreement(ours, refs)
    records = []
    if data:
        by_path = {r.image_path: r for r in load_coco(data)}
        records = [by_path[p] for p in test_paths if p in by_path]
        if len(records) == len(test_paths):
            report["map"] = map_delta(ours, refs, records_to_ground_truth(records))
    if "int8" in bundle.precisions("fc7"):
        report["int8"] = _int8_report(bundle_path, test_paths, ours, refs, records, data)
    worst = max(v["max_rel"] for v in report["fc7"].values())
    linear = [report[k] for k in ("head", "bbox") if k in report]  # the ONNX Gemm heads
    report["fp32_ok"] = bool(worst <= FP32_RTOL and all(h["max_rel"] <= FP32_RTOL for h in linear))
    path = bundle_path.parent / "parity.json"
    path.write_text(json.dumps(report, indent=2))
    report["path"] = str(path)
    return report


def _int8_report(bundle_path, test_paths, fp32_detections, reference, records, data) -> dict:
    """The accuracy cost of ``fc7@int8``: fc7 error against the fp32 graph on real proposal
    crops of the held-out images, and the int8 pipeline's detections against the fp32 SDK
    pipeline's (same proposals), plus both mAPs against ground truth."""
    from calcsdk.export.quantize import calibration_crops
    from calcsdk.training.datasets.record import records_to_ground_truth

    bundle = load_bundle(bundle_path)
    backend = create_backend("onnxruntime", device="cpu")
    crops = calibration_crops(test_paths, bundle, n=128, seed=1)
    fp32 = backend.load(bundle.model_path("fc7")).run({FC7_INPUT: crops})[FC7_OUTPUT]
    int8 = backend.load(bundle.model_path("fc7", "int8")).run({FC7_INPUT: crops})[FC7_OUTPUT]
    cosine = (fp32 * int8).sum(1) / np.maximum(
        np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1), 1e-12
    )
    report: dict[str, Any] = {
        "fc7_vs_fp32": {
            **tensor_error(int8, fp32),
            "mean_abs_rel": float(np.abs(int8 - fp32).mean() / max(np.abs(fp32).max(), 1e-12)),
            "min_cosine": float(cosine.min()) if len(cosine) else 1.0,
            "crops": len(crops),
        }
    }
    pipeline = Detector(bundle_path, precision="int8")._pipeline
    ours = []
    for path in test_paths:
        working = pipeline.prepare(read_mammogram(path))
        ours.append(pipeline.back((working, pipeline.propose(working)), 0.0))
    report["detections_vs_fp32"] = detection_agreement(ours, fp32_detections)
    report["detections_vs_reference"] = detection_agreement(ours, reference)
    if data and len(records) == len(test_paths):
        report["map_vs_fp32"] = map_delta(ours, fp32_detections, records_to_ground_truth(records))
    return report
