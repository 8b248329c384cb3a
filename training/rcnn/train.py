"""``calcsdk train rcnn``: the paper's R-CNN, trained end to end on whole mammograms.

1. Labelled, warped proposals of the training and validation images (:mod:`.samples`).
2. Fine-tune the ROI classifier's best AlexNet on them (malignant / benign / background=normal)
   with the paper's config (``rcnn-1``: lr 1e-3, 50 epochs; ``rcnn-2``: lr 1e-4, 100 epochs;
   batch 128), with R-CNN's foreground-biased batches (a quarter foreground), early-stopped
   on balanced validation accuracy.
3. fc7 features; one-vs-rest linear SVMs with hard-negative mining on the training images
   (positives: the ground-truth boxes, as R-CNN, or with ``svm_positives="overlap"`` every
   crop at IoU >= 0.5; negatives: background proposals). With ``mining`` (off by default) the
   SVMs are refitted with the hardest background proposals of whole training images
   (:mod:`.mining`), as R-CNN mined over all proposals.
4. Platt calibration on the validation images' proposals, so 0.5 means 50%.
   Optionally (``box_regression``, off by default) a class-agnostic box regressor on fc7
   (:mod:`.box_regression`), applied to every proposal before NMS.
5. Export: fc7 extractor, the folded head (and regressor) to ONNX, packed with the manifest
   into a bundle.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from calcsdk.bundle import write_bundle
from calcsdk.export.onnx_fc7 import OPSET as FC7_OPSET
from calcsdk.export.onnx_fc7 import export_fc7
from calcsdk.export.onnx_head import OPSET as HEAD_OPSET
from calcsdk.export.onnx_head import export_box_regressor, export_head, fold_head
from calcsdk.model_io import (
    BOX_INPUT,
    BOX_OUTPUT,
    FC7_INPUT,
    FC7_OUTPUT,
    HEAD_INPUT,
    HEAD_OUTPUT,
)
from calcsdk.postprocess import PostprocessConfig
from calcsdk.training.classifier.checkpoint import load_classifier
from calcsdk.training.classifier.config import get_config
from calcsdk.training.classifier.inference import predict
from calcsdk.training.classifier.train import train_classifier
from calcsdk.training.datasets.record import CLASS_NAMES, ImageRecord
from calcsdk.training.models.alexnet import AlexNetConfig
from calcsdk.training.rcnn.box_regression import (
    BoxRegressionConfig,
    BoxRegressor,
    fit_box_regressor,
    regression_pairs,
)
from calcsdk.training.rcnn.head import HeadConfig, LinearSvmHead, train_head
from calcsdk.training.rcnn.mining import MiningConfig, mine_background
from calcsdk.training.rcnn.sample_store import cached_samples
from calcsdk.training.rcnn.samples import BACKGROUND, ImageSamples, SampleConfig, image_samples
from calcsdk.training.worker_pool import parallel_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RcnnTrainConfig:
    name: str = "rcnn-2"  # the paper's best config; "rcnn-1" is the other
    samples: SampleConfig = field(default_factory=SampleConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    thresholds: PostprocessConfig = field(  # nested boxes of one cluster suppressed: on the
        # shipped tiny model's 18 held-out images P 0.11 -> 0.17, F1 0.16 -> 0.21, recall same.
        # Box voting at IoU 0.3 (chosen on RCNN-1 fold 4's 48 validation images: F1 0.26 ->
        # 0.37) raised F1 and mAP on two unseen sets too (BENCHMARKS.md, "Box voting").
        default_factory=lambda: PostprocessConfig(nms_containment=0.7, vote_iou=0.3)
    )
    finetune_overrides: dict = field(default_factory=dict)  # e.g. {"epochs": 5} on 2 CPU cores
    # R-CNN's fine-tuning batches: 32 of 128 windows foreground (sampling.py). Uniform shuffling
    # of our ~14:1 background:malignant samples left the fine-tuned net calling 71% of its own
    # malignant training crops "normal"; selection then uses balanced validation accuracy, since
    # plain accuracy on such data mostly measures background
    # SVM positives: "gt" = the ground-truth boxes only (R-CNN); "overlap" = every training crop
    # at IoU >= 0.5 (ground truth, jittered copies, proposals). On the full-width run's 40
    # validation images "overlap" doubled malignant AP (0.053 -> 0.105; benign 0.71 -> 0.80);
    # not yet measured on detection, so R-CNN's choice stays the default
    svm_positives: str = "gt"
    finetune_foreground_fraction: float | None = 0.25
    finetune_selection_metric: str = "balanced_accuracy"
    # off by default: on the 5 RCNN-1 folds of benchmarks/results/rcnn_cv (same AlexNet and
    # SVMs, paired) it moved mean test mAP 0.062 -> 0.060 and F1 0.090 -> 0.094, i.e. nothing
    box_regression: BoxRegressionConfig | None = None
    # SVM negatives mined over every proposal of training images (.mining). Off by default:
    # measured so far only in a simulation on cached validation features (BENCHMARKS.md)
    mining: MiningConfig | None = None
    seed: int = 0

    def __post_init__(self) -> None:  # fail before hours of fine-tuning, not after
        _check_svm_positives(self.svm_positives)


@dataclass(frozen=True)
class RcnnResult:
    bundle_dir: Path
    finetune_weights: Path
    head: LinearSvmHead
    seconds: dict


def collect_samples(
    records: Sequence[ImageRecord],
    config: SampleConfig,
    offset: int = 0,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> list[ImageSamples]:
    """Samples of every record (see :func:`.samples.image_samples`), in order; record ``i`` is
    sample index ``offset + i``. With ``cache_dir`` they are read from / written to that disk
    cache (:mod:`.sample_store`: resumable, crops memory-mapped). ``workers`` > 1 makes them
    in that many processes, with the same result."""
    if cache_dir is not None:
        return cached_samples(records, config, cache_dir, offset, workers)
    if workers > 1:
        arguments = [(offset + i, record, config) for i, record in enumerate(records)]
        return list(parallel_map(image_samples, arguments, workers))
    out = []
    for i, record in enumerate(records):
        out.append(image_samples(offset + i, record, config))
        if (i + 1) % 25 == 0:
            log.info("samples: %d/%d images", i + 1, len(records))
    return out


def _weights(samples: ImageSamples) -> np.ndarray:
    """(N,) float32 sample weights (ones for samples made before weights existed)."""
    if samples.weights is None:
        return np.ones(len(samples.labels), np.float32)
    return samples.weights


def _stack(samples: Sequence[ImageSamples], rows=None) -> tuple[np.ndarray, np.ndarray]:
    crops = np.concatenate([s.crops for s in samples]) if samples else np.zeros((0, 1, 227, 227))
    labels = np.concatenate([s.labels for s in samples]) if samples else np.zeros(0, np.int64)
    return crops, labels


def train_rcnn(
    train_records: Sequence[ImageRecord],
    val_records: Sequence[ImageRecord],
    config: RcnnTrainConfig,
    out_dir: str | Path,
    **options,
) -> RcnnResult:
    """Train and export an R-CNN bundle to ``out_dir/bundle`` (see the module doc): collect the
    records' samples (train records numbered first, then val), then :func:`fit_rcnn` with
    ``options`` (its keyword arguments)."""
    t = time.perf_counter()
    train = collect_samples(train_records, config.samples)
    val = collect_samples(val_records, config.samples, offset=len(train_records))
    return fit_rcnn(
        train, val, config, out_dir, seconds={"samples": time.perf_counter() - t}, **options
    )


def fit_rcnn(
    train: Sequence[ImageSamples],
    val: Sequence[ImageSamples],
    config: RcnnTrainConfig,
    out_dir: str | Path,
    *,
    classifier_weights: str | Path | None,
    model_config: AlexNetConfig,
    bundle_name: str = "calcsdk-rcnn",
    provenance: dict | None = None,
    seconds: dict | None = None,
    mining_records: Sequence[ImageRecord] = (),
) -> RcnnResult:
    """Steps 2-5 of the module doc on samples already collected (:func:`collect_samples`):
    ``train`` fine-tunes and fits the SVMs, ``val`` early-stops and calibrates. Resumes the
    fine-tuning from ``out_dir/finetune/last.pt`` when it exists. With ``config.mining``, the
    SVMs are refitted with hard negatives mined over every proposal of ``mining_records`` (the
    training images ``train`` was made from; :mod:`.mining`)."""
    if config.mining is not None and not mining_records:
        raise ValueError("config.mining is set, but no mining_records were given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds = dict(seconds or {})

    # 2. fine-tune on warped proposals (background = the classifier's "normal")
    t = time.perf_counter()
    x_train, y_train = _stack(train)
    x_val, y_val = _stack(val)
    init = str(classifier_weights) if classifier_weights else None
    ft_config = get_config(
        config.name,
        seed=config.seed,
        init_weights=init,
        foreground_fraction=config.finetune_foreground_fraction,
        selection_metric=config.finetune_selection_metric,
        **config.finetune_overrides,
    )
    result = train_classifier(
        x_train,  # float16 (ImageSamples' crops): cast to float32 batch by batch
        y_train,
        x_val,
        y_val,
        ft_config,
        out / "finetune",
        model_config=model_config,
        resume=(out / "finetune" / "last.pt").exists(),
    )
    alexnet = load_classifier(result.best_weights_path)
    seconds["finetune"] = time.perf_counter() - t

    # 3. fc7 features -> SVMs (positives per config.svm_positives), 4. Platt on validation
    t = time.perf_counter()
    is_gt = np.concatenate([s.is_gt for s in train])
    svm_rows = _svm_rows(is_gt, y_train, config.svm_positives)
    fc7_train = _fc7(alexnet, x_train, svm_rows)
    val_rows = ~np.concatenate([s.is_gt for s in val])  # calibrate on proposals, as deployed
    fc7_val = _fc7(alexnet, x_val, val_rows)
    # background samples weighted back to the deployed proposal mix (~1 in 30 is kept)
    val_weights = np.concatenate([_weights(s) for s in val])[val_rows]
    fit_head = partial(
        train_head,
        num_classes=len(CLASS_NAMES),
        config=config.head,
        calib_features=fc7_val,
        calib_labels=y_val[val_rows],
        calib_weights=val_weights,
    )
    head = fit_head(fc7_train, y_train[svm_rows])
    seconds["svm"] = time.perf_counter() - t
    mined = 0
    if config.mining is not None:
        t = time.perf_counter()
        negatives = mine_background(
            alexnet, head, mining_records, config.samples, config.mining,
            cache=out / "mined_background.npz",
        )  # fmt: skip
        mined = len(negatives)
        head = fit_head(
            np.concatenate([fc7_train, negatives]),
            np.concatenate([y_train[svm_rows], np.full(mined, BACKGROUND, np.int64)]),
        )
        seconds["mining"] = time.perf_counter() - t
    head.save(out / "head.npz")
    regressor = None
    if config.box_regression is not None:
        t = time.perf_counter()
        rows, deltas = regression_pairs(
            train, range(len(CLASS_NAMES)), config.box_regression.min_iou
        )
        if len(rows) >= 2:
            fc7_pairs = _fc7(alexnet, x_train, rows)
            regressor = fit_box_regressor(fc7_pairs, deltas, config.box_regression)
            regressor.save(out / "box_regressor.npz")
        else:
            log.warning("box regression skipped: %d training pairs", len(rows))
        seconds["box_regression"] = time.perf_counter() - t

    # 5. export and pack
    bundle_dir = export_rcnn_bundle(
        alexnet,
        head,
        config,
        out / "bundle",
        name=bundle_name,
        provenance=provenance,
        regressor=regressor,
    )
    seconds["total"] = sum(seconds.values())
    (out / "rcnn_train.json").write_text(
        json.dumps(
            {
                "config": _jsonable(asdict(config)),
                "seconds": seconds,
                "train_samples": len(y_train),
                "val_samples": len(y_val),
                "mined_negatives": mined,
                "finetune_best_val_accuracy": result.best_val_accuracy,
            },
            indent=2,
        )
    )
    return RcnnResult(bundle_dir, result.best_weights_path, head, seconds)


def _fc7(alexnet: torch.nn.Module, crops: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """fc7 features (len(rows), D) float32 of ``crops[rows]`` (rows: bool mask or indices),
    a chunk at a time, so that no float32 copy of a paper-scale crop array is made."""
    index = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
    parts = [np.zeros((0, alexnet.fc7_dim), np.float32)]
    for start in range(0, len(index), _FC7_CHUNK):
        _, fc7 = predict(alexnet, crops[index[start : start + _FC7_CHUNK]])
        parts.append(fc7)
    return np.concatenate(parts)


_FC7_CHUNK = 4096  # crops per chunk: 0.4 GB as float16 at 227x227


def _svm_rows(is_gt: np.ndarray, labels: np.ndarray, positives: str) -> np.ndarray:
    """(N,) bool: the training rows the SVMs see. Background always; positives per
    ``RcnnTrainConfig.svm_positives`` ("gt" or "overlap")."""
    _check_svm_positives(positives)
    return is_gt | (labels == BACKGROUND) if positives == "gt" else labels >= 0


def _check_svm_positives(positives: str) -> None:
    if positives not in ("gt", "overlap"):
        raise ValueError(f"svm_positives should be 'gt' or 'overlap', got {positives!r}")


def export_rcnn_bundle(
    alexnet: torch.nn.Module,
    head: LinearSvmHead,
    config: RcnnTrainConfig,
    bundle_dir: Path,
    *,
    name: str,
    provenance: dict | None = None,
    version: str = "0.1.0",
    regressor: BoxRegressor | None = None,
) -> Path:
    """Export the fc7 extractor and the folded SVM head, and write the bundle."""
    staging = bundle_dir.parent / (bundle_dir.name + ".staging")
    staging.mkdir(parents=True, exist_ok=True)
    s = config.samples
    meta = {
        "calcsdk.classes": ",".join(CLASS_NAMES),
        "calcsdk.working_spacing_mm": str(s.working_spacing_mm),
        "calcsdk.representation": s.representation,
        "calcsdk.version": version,
    }
    export_fc7(alexnet, staging / "alexnet_fc7.onnx", metadata=meta)
    weight, bias = fold_head(
        head.weight, head.bias, head.mean, head.scale, head.platt_a, head.platt_b
    )
    export_head(weight, bias, staging / "svm_head.onnx", metadata=meta)
    if regressor is not None:
        export_box_regressor(
            regressor.weight, regressor.bias, staging / "box_regressor.onnx", metadata=meta
        )
    manifest = {
        "name": name,
        "version": version,
        "pipeline": "rcnn",
        "class_names": list(CLASS_NAMES),
        "roi_class_names": [*CLASS_NAMES, "normal"],
        "preprocess": {
            "working_spacing_mm": s.working_spacing_mm,
            "fallback_spacing_mm": s.fallback_spacing_mm,
            "normalization": "percentiles 0.5-100 inside the breast mask",
            "representation": s.representation,
            "crop_size": s.crop_size,
            "context_pad": s.context_pad,
        },
        "proposals": s.proposals.to_dict(),
        "thresholds": asdict(config.thresholds),
        "models": {
            "fc7": {
                "file": "alexnet_fc7.onnx",
                "inputs": [FC7_INPUT],
                "outputs": [FC7_OUTPUT],
                "precision": "fp32",
                "opset": FC7_OPSET,
                "width": float(alexnet.config.width),
            },
            "head": {
                "file": "svm_head.onnx",
                "inputs": [HEAD_INPUT],
                "outputs": [HEAD_OUTPUT],
                "precision": "fp32",
                "opset": HEAD_OPSET,
            },
        },
        "provenance": {"config": _jsonable(asdict(config)), **(provenance or {})},
        "metrics": {},
    }
    files = {
        "alexnet_fc7.onnx": staging / "alexnet_fc7.onnx",
        "svm_head.onnx": staging / "svm_head.onnx",
    }
    if regressor is not None:
        files["box_regressor.onnx"] = staging / "box_regressor.onnx"
        manifest["models"]["bbox"] = {
            "file": "box_regressor.onnx",
            "inputs": [BOX_INPUT],
            "outputs": [BOX_OUTPUT],
            "precision": "fp32",
            "opset": HEAD_OPSET,
        }
    write_bundle(bundle_dir, manifest, files)
    for f in files.values():
        f.unlink()
    staging.rmdir()
    return bundle_dir


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
