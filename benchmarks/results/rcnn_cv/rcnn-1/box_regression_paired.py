"""Add a box regressor to each fold of a finished CV run (same fine-tuned AlexNet and SVM head)
and evaluate on the same test images: paired with/without comparison. Run as
``python box_regression_paired.py cv_rcnn-1`` with the synth300 data at the path below (the
artefact of this one measurement, kept beside its result)."""

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from calcsdk import Detector
from calcsdk.bundle import load_bundle
from calcsdk.pipelines.rcnn import RcnnSettings
from calcsdk.postprocess import PostprocessConfig
from calcsdk.proposals import ProposalConfig
from calcsdk.training.classifier.checkpoint import load_classifier
from calcsdk.training.classifier.inference import predict
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.detector_evaluation import evaluate_records
from calcsdk.training.rcnn.box_regression import (
    BoxRegressionConfig,
    fit_box_regressor,
    regression_pairs,
)
from calcsdk.training.rcnn.head import LinearSvmHead
from calcsdk.training.rcnn.samples import SampleConfig
from calcsdk.training.rcnn.train import RcnnTrainConfig, _stack, collect_samples, export_rcnn_bundle
from calcsdk.training.splits import paper_detector_split

run = Path(sys.argv[1])
recs = load_coco("/work/runs/synth300/annotations.json")
tr, te = paper_detector_split(recs, n_test=377, seed=0)
train_all = [recs[i] for i in tr]
test = [recs[i] for i in te]
t = time.perf_counter()
samples = collect_samples(train_all, SampleConfig())
print("samples", time.perf_counter() - t, flush=True)
index = {r.image_path: i for i, r in enumerate(train_all)}
out = {}
for k in range(1, 6):
    fold = run / f"fold{k}"
    info = json.loads((fold / "fold.json").read_text())
    fit = [samples[index[p]] for p in info["train_images"]]
    rows, deltas = regression_pairs(fit, (0, 1), 0.6)
    x, _ = _stack(fit)
    alexnet = load_classifier(fold / "finetune" / "best.pt")
    _, f = predict(alexnet, x[rows].astype(np.float32))
    reg = fit_box_regressor(f, deltas, BoxRegressionConfig())
    reg.save(fold / "box_regressor.npz")
    source = load_bundle(fold / "bundle")
    st = RcnnSettings.from_bundle(source)
    config = replace(
        RcnnTrainConfig(name=source.manifest["provenance"]["config"]["name"]),
        samples=replace(
            SampleConfig(), proposals=ProposalConfig.from_dict(source.section("proposals"))
        ),
        thresholds=PostprocessConfig(**source.section("thresholds")),
    )
    bdir = export_rcnn_bundle(
        alexnet,
        LinearSvmHead.load(fold / "head.npz"),
        config,
        fold / "bundle_bbox",
        name=source.manifest["name"] + "-bbox",
        provenance=source.manifest.get("provenance", {}),
        regressor=reg,
    )
    ev = evaluate_records(Detector(bdir), test, fold / "eval_bbox")
    t6 = ev["overall"]["table6"]
    out[k] = {
        "pairs": len(rows),
        "without": {m: info["test"][m] for m in ("precision", "recall", "f1", "map")},
        "with": {m: t6[m] for m in ("precision", "recall", "f1", "map")},
        "froc_with": [ev["overall"]["sensitivity_at_fp"]["any"][r] for r in ("0.5", "1.0", "2.0")],
        "froc_without": info["test"]["froc_at_0.5_1_2"],
    }
    print(k, json.dumps(out[k]), flush=True)
(run / "bbox_paired.json").write_text(json.dumps(out, indent=1))
