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
)
from calcsdk.image import read_mammogram


def export_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Re-export ``run_dir``'s fine-tuned AlexNet and SVM head into a bundle."""
    from dataclasses import replace

    from calcsdk.pipelines.rcnn import RcnnSettings
    from calcsdk.postprocess import PostprocessConfig
    from calcsdk.proposals import ProposalConfig
    from calcsdk.training.classifier.checkpoint import load_classifier
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
        ours.append(pipeline.finish(working, boxes, pipeline.score(working, boxes), 0.0))
        refs.append(reference(mammogram, 0.0, proposals=boxes))
    report["detections"] = detection_agreement(ours, refs)
    if data:
        by_path = {r.image_path: r for r in load_coco(data)}
        records = [by_path[p] for p in test_paths if p in by_path]
        if len(records) == len(test_paths):
            report["map"] = map_delta(ours, refs, records_to_ground_truth(records))
    worst = max(v["max_rel"] for v in report["fc7"].values())
    report["fp32_ok"] = bool(worst <= FP32_RTOL and report["head"]["max_rel"] <= FP32_RTOL)
    path = bundle_path.parent / "parity.json"
    path.write_text(json.dumps(report, indent=2))
    report["path"] = str(path)
    return report
