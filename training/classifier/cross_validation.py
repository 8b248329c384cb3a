"""The paper's ROI-classifier experiment: k-fold cross-validation over the ROI representations.

Protocol (paper, Methods): of 5,000 ROIs per representation, 1,000 are held out for test and
the other 4,000 are split 80 % train / 20 % validation in each of five folds
(:func:`calcsdk.training.splits.paper_roi_protocol`; with fewer ROIs the test count is scaled
down). ONE split, computed from the labels and patients, serves every representation, so the
representations are compared on the same ROIs. Each fold trains an AlexNet
(:func:`~calcsdk.training.classifier.train.train_classifier`, early stopping on validation
accuracy); its ``best.pt`` then predicts the fold's validation ROIs and the held-out test ROIs.
The fold with the highest VALIDATION accuracy (ties: the lowest fold number) is the
representation's selected model; its test predictions give the Table 3 / Figure 4 analogues.
Predicted class = argmax of the softmax probabilities (ties: the lowest class index).

Files under ``out_dir`` (:class:`CvRunFiles`)::

    cv.json                          settings: configs, data set digest, representations
    split.npz                        test, fold<k>_train, fold<k>_val (indices into the ROIs
                                     given), source_rows (each ROI's row in the data set)
    <representation>/fold<k>/        the trainer's run folder (last.pt, best.pt, log.jsonl)
        predictions_val.npz          indices, y_true (int64), probs (float32 (N, 3))
        predictions_test.npz         the same for the held-out test ROIs
        fold.json                    written last: the fold is finished (timings, epochs)
    <representation>/best.pt         copy of the selected fold's best.pt
    <representation>/selection.json  the selected fold and every fold's validation accuracy

Resume: a fold with ``fold.json`` is never retrained; an interrupted fold continues from its
``last.pt``. The split, the data set, the network and the training settings must be those of
the first run (``checkpoint.RESUMABLE_CHANGES`` excepted); other representations may be added.
One process runs the whole experiment (not under torchrun: every rank would write the files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calcsdk.representations import REPRESENTATIONS
from calcsdk.training.classifier.checkpoint import RESUMABLE_CHANGES, RunFiles, load_classifier
from calcsdk.training.classifier.config import ClassifierTrainConfig
from calcsdk.training.classifier.cv_files import (  # noqa: F401  (re-exported)
    PARTS,
    CvRunFiles,
    _atomic_write_bytes,
    _write_json,
    _write_npz,
    accuracy_of,
    load_predictions,
    predicted_classes,
)
from calcsdk.training.classifier.distributed import resolve_device
from calcsdk.training.classifier.inference import predict
from calcsdk.training.classifier.train import train_classifier
from calcsdk.training.models.alexnet import AlexNetConfig
from calcsdk.training.roi_dataset import ROI_LABELS
from calcsdk.training.splits import PAPER_ROI_TEST, RoiProtocol, paper_roi_protocol

logger = logging.getLogger(__name__)

CV_FORMAT = 1


@dataclass(frozen=True)
class CrossValidationConfig:
    representations: tuple[str, ...] = REPRESENTATIONS  # ROI datasets to run, in this order
    n_folds: int = 5  # paper
    n_test: int = PAPER_ROI_TEST  # held-out test ROIs at the paper's 5,000 (scaled when fewer)
    val_fraction: float = 0.2  # paper: 80 % train / 20 % validation inside each fold
    seed: int = 0  # seed of the split (the training seed is ClassifierTrainConfig.seed)

    def __post_init__(self) -> None:
        names = self.representations
        if not names or len(set(names)) != len(names) or not set(names) <= set(REPRESENTATIONS):
            raise ValueError(
                f"representations should be distinct names from {REPRESENTATIONS}, got {names}"
            )
        if self.n_folds < 2:
            raise ValueError(f"n_folds should be >= 2, got {self.n_folds}")
        if self.n_test < 1:
            raise ValueError(f"n_test should be >= 1, got {self.n_test}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction should be in (0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class FoldResult:
    representation: str
    fold: int  # 1-based ("AlexNet<fold>" in the paper's Table 2)
    val_accuracy: float  # fraction in [0, 1], of best.pt on the fold's validation ROIs
    test_accuracy: float  # fraction in [0, 1], of best.pt on the held-out test ROIs
    best_epoch: int  # 1-based epoch whose weights are in best.pt
    epochs_trained: int
    stopped_early: bool
    seconds_per_epoch: tuple[float, ...]  # wall-clock seconds of each epoch (train + validation)
    run_dir: Path


@dataclass(frozen=True)
class RepresentationResult:
    representation: str
    folds: tuple[FoldResult, ...]
    selected_fold: int  # 1-based: highest validation accuracy, ties to the lowest fold
    # <representation>/best.pt, a copy of the selected fold's; None when that fold's best.pt
    # is absent (a run folder copied without its weights, as the recorded runs are)
    selected_weights_path: Path | None


@dataclass(frozen=True)
class CrossValidationResult:
    out_dir: Path
    protocol: RoiProtocol  # indices into the ROIs given to run_cross_validation
    representations: dict[str, RepresentationResult]


def select_best_fold(val_accuracies: Sequence[float]) -> int:
    """1-based number of the fold with the highest validation accuracy (ties: the lowest).

    Raises:
        ValueError: no folds, or an accuracy that is not a finite value in [0, 1].
    """
    values = np.asarray(val_accuracies, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("need at least one fold to select from")
    if not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
        raise ValueError(f"validation accuracies should be in [0, 1], got {values.tolist()}")
    return int(np.argmax(values)) + 1


def _dataset_digest(labels: np.ndarray, groups: Sequence | None, source_rows: np.ndarray) -> str:
    digest = hashlib.sha256(labels.astype("<i8").tobytes())
    digest.update(source_rows.astype("<i8").tobytes())
    if groups is not None:
        digest.update("\x1f".join(map(str, groups)).encode())
    return digest.hexdigest()


def _settings(
    cv_config: CrossValidationConfig,
    train_config: ClassifierTrainConfig,
    model_config: AlexNetConfig,
    labels: np.ndarray,
    groups: Sequence | None,
    source_rows: np.ndarray,
) -> dict:
    counts = np.bincount(labels, minlength=len(ROI_LABELS))
    return {
        "format": CV_FORMAT,
        "class_names": list(ROI_LABELS),
        "cv_config": dataclasses.asdict(cv_config),
        "train_config": dataclasses.asdict(train_config),
        "model_config": dataclasses.asdict(model_config),
        "dataset": {
            "rois": len(labels),
            "class_counts": dict(zip(ROI_LABELS, counts.tolist())),
            "patients": None if groups is None else len(set(groups)),
            "digest": _dataset_digest(labels, groups, source_rows),
        },
    }


def _check_resumable(saved: dict, now: dict, path: Path) -> None:
    """Raise ``ValueError`` when a resumed run would mix incompatible settings."""
    if saved.get("format") != CV_FORMAT:
        raise ValueError(f"{path}: format {saved.get('format')!r}, expected {CV_FORMAT}")
    problems = []
    if saved["dataset"]["digest"] != now["dataset"]["digest"]:
        problems.append("the ROIs (labels, patients or rows) differ")
    if saved["model_config"] != now["model_config"]:
        problems.append(f"model_config {saved['model_config']} != {now['model_config']}")
    for key in ("n_folds", "n_test", "val_fraction", "seed"):
        if saved["cv_config"][key] != now["cv_config"][key]:
            problems.append(f"{key} {saved['cv_config'][key]} != {now['cv_config'][key]}")
    # a field newer than cv.json takes its default, which is the behaviour the run had then
    defaults = json.loads(json.dumps(dataclasses.asdict(ClassifierTrainConfig())))
    before = {**defaults, **saved["train_config"]}
    for key, value in now["train_config"].items():
        json_value = json.loads(json.dumps(value))
        if key not in RESUMABLE_CHANGES and before.get(key) != json_value:
            problems.append(f"train_config.{key} {before.get(key)} != {value}")
    if problems:
        raise ValueError(f"{path}: cannot resume: " + "; ".join(problems))


def _start_run(
    files: CvRunFiles, settings: dict, protocol: RoiProtocol, source_rows: np.ndarray, resume: bool
) -> None:
    """Write (or, on resume, check and extend) ``cv.json`` and ``split.npz``."""
    split = {"test": protocol.test, "source_rows": source_rows}
    for k, (train, val) in enumerate(protocol.folds, start=1):
        split[f"fold{k}_train"], split[f"fold{k}_val"] = train, val
    if files.settings.exists():
        if not resume:
            raise FileExistsError(
                f"{files.settings} exists: pass resume=True (--resume) or choose another folder"
            )
        saved = json.loads(files.settings.read_text())
        _check_resumable(saved, settings, files.settings)
        with np.load(files.split) as old:
            same = set(old.files) == set(split) and all(
                np.array_equal(old[k], v) for k, v in split.items()
            )
        if not same:
            raise ValueError(f"{files.split}: the recomputed split differs; cannot resume")
        done = saved["cv_config"]["representations"]
        wanted = settings["cv_config"]["representations"]
        union = [r for r in REPRESENTATIONS if r in done or r in wanted]
        settings = {**settings, "cv_config": {**settings["cv_config"], "representations": union}}
    files.out_dir.mkdir(parents=True, exist_ok=True)
    _write_npz(files.split, **split)
    _write_json(files.settings, settings)


@dataclass(frozen=True)
class _Experiment:
    """What every fold of one run shares."""

    files: CvRunFiles
    labels: np.ndarray  # int64 (N,)
    protocol: RoiProtocol
    train_config: ClassifierTrainConfig
    model_config: AlexNetConfig
    resume: bool
    device: str | None


def _run_fold(run: _Experiment, x: np.ndarray, representation: str, fold: int) -> None:
    """Train one fold (or finish its interrupted training), predict, then write ``fold.json``."""
    (train, val), test, labels = run.protocol.folds[fold - 1], run.protocol.test, run.labels
    run_dir = run.files.fold_dir(representation, fold)
    resume = run.resume and RunFiles(run_dir).last.exists()
    sizes = f"{len(train)} train, {len(val)} val, {len(test)} test ROIs"
    logger.info("%s fold %d: %s%s", representation, fold, sizes, " (resuming)" * resume)
    result = train_classifier(
        *(x[train], labels[train], x[val], labels[val]),
        run.train_config,
        run_dir,
        model_config=run.model_config,
        resume=resume,
        device=run.device,
    )
    device = resolve_device(run.device)  # the one train_classifier used (single process)
    model = load_classifier(result.best_weights_path, device=device)
    for part, indices in zip(PARTS, (val, test)):
        probs, _ = predict(model, x[indices], batch_size=run.train_config.eval_batch_size)
        _write_npz(
            run.files.predictions(representation, fold, part),
            indices=indices.astype(np.int64),
            y_true=labels[indices].astype(np.int64),
            probs=probs.astype(np.float32),
        )
    seconds = [float(record["seconds"]) for record in result.history]
    record = {
        "representation": representation,
        "fold": fold,
        "rois": {"train": len(train), "val": len(val), "test": len(test)},
        "best_epoch": result.best_epoch,
        "epochs_trained": len(result.history),
        "stopped_early": result.stopped_early,
        "trainer_best_val_accuracy": result.best_val_accuracy,
        "seconds_per_epoch": seconds,
        "median_seconds_per_epoch": statistics.median(seconds) if seconds else None,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    _write_json(run.files.fold_record(representation, fold), record)


def fold_result(files: CvRunFiles, representation: str, fold: int) -> FoldResult:
    """A finished fold's result, recomputed from its saved predictions and ``fold.json``."""
    record = json.loads(files.fold_record(representation, fold).read_text())
    return FoldResult(
        representation=representation,
        fold=fold,
        val_accuracy=accuracy_of(files.predictions(representation, fold, "val")),
        test_accuracy=accuracy_of(files.predictions(representation, fold, "test")),
        best_epoch=int(record["best_epoch"]),
        epochs_trained=int(record["epochs_trained"]),
        stopped_early=bool(record["stopped_early"]),
        seconds_per_epoch=tuple(record["seconds_per_epoch"]),
        run_dir=files.fold_dir(representation, fold),
    )


def _select(
    files: CvRunFiles, representation: str, folds: list[FoldResult]
) -> tuple[int, Path | None]:
    """Pick the fold by validation accuracy; copy its ``best.pt``; write ``selection.json``.

    Returns the 1-based fold and the copy's path. The path is None when the fold's ``best.pt``
    is absent (a run folder copied without weights, then resumed): the choice is still recorded.
    """
    selected = select_best_fold([f.val_accuracy for f in folds])
    source = RunFiles(files.fold_dir(representation, selected)).best
    copy = files.selected_weights(representation)
    target = copy if source.exists() else None
    if target is not None:
        _atomic_write_bytes(target, lambda tmp: shutil.copyfile(source, tmp))
    else:
        logger.warning("%s: %s is absent; selection kept without weights", representation, source)
        copy.unlink(missing_ok=True)  # never leave an earlier choice's weights under that name
    _write_json(
        files.selection(representation),
        {
            "selected_fold": selected,
            "criterion": "highest validation accuracy; ties go to the lowest fold",
            "val_accuracies": [f.val_accuracy for f in folds],
            "weights": None if target is None else str(target),
            "source": str(source),
        },
    )
    return selected, target


def run_cross_validation(
    load_rois: Callable[[str], np.ndarray],
    labels: np.ndarray,
    out_dir: str | os.PathLike,
    train_config: ClassifierTrainConfig,
    *,
    model_config: AlexNetConfig,
    cv_config: CrossValidationConfig | None = None,
    groups: Sequence | None = None,
    source_rows: np.ndarray | None = None,
    resume: bool = False,
    device: str | None = None,
    on_fold_done: Callable[[str, int], None] | None = None,
) -> CrossValidationResult:
    """Run the paper's k-fold protocol for each representation (see the module docstring).

    Args:
        load_rois: representation name -> float32 ROIs in [0, 1], ``(N, 227, 227)`` (warped
            227x227 crops, pixel frame of the crop), row i being ROI i of ``labels``. Called
            once per representation that still has unfinished folds.
        labels: int64 ``(N,)``: malignant=0, benign=1, normal=2.
        out_dir: run folder (layout in the module docstring).
        train_config: the trainer's settings (``get_config("rcnn-1"|"rcnn-2", ...)``).
        model_config: the network (``AlexNetConfig()`` is the paper's).
        cv_config: representations, folds, test count, validation share, split seed.
        groups: ``(N,)`` patient of each ROI, or None; no patient is split across parts.
        source_rows: ``(N,)`` each ROI's row in its data set (default ``arange(N)``), saved in
            ``split.npz`` so predictions map back to the data set's index.
        resume: continue a run in ``out_dir``; without it an existing run raises
            ``FileExistsError``.
        device: ``"cpu"``, ``"cuda"`` or None (CUDA when present).
        on_fold_done: called with ``(representation, fold)`` after each finished fold (e.g. to
            rewrite the report).
    Returns:
        :class:`CrossValidationResult`; every accuracy recomputed from the saved predictions.
    Raises:
        ValueError: bad labels or ROIs, or a resume with different settings.
        FileExistsError: ``out_dir`` holds a run and ``resume`` is False.
    """
    cv_config = cv_config or CrossValidationConfig()
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels should be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(ROI_LABELS)):
        raise ValueError(f"labels should be in [0, {len(ROI_LABELS)}), got {np.unique(labels)}")
    labels = labels.astype(np.int64)
    groups = None if groups is None else list(groups)
    source_rows = np.arange(len(labels)) if source_rows is None else np.asarray(source_rows)
    if source_rows.shape != labels.shape:
        raise ValueError(f"source_rows should have shape {labels.shape}, got {source_rows.shape}")
    protocol = paper_roi_protocol(
        labels,
        groups,
        seed=cv_config.seed,
        n_test=cv_config.n_test,
        n_folds=cv_config.n_folds,
        val_fraction=cv_config.val_fraction,
    )
    files = CvRunFiles(Path(out_dir))
    settings = _settings(cv_config, train_config, model_config, labels, groups, source_rows)
    _start_run(files, settings, protocol, source_rows, resume)
    run = _Experiment(files, labels, protocol, train_config, model_config, resume, device)

    results = {}
    for representation in cv_config.representations:
        folds = range(1, cv_config.n_folds + 1)
        pending = [k for k in folds if not files.fold_record(representation, k).exists()]
        if pending:
            x = load_rois(representation)
            if len(x) != len(labels):
                raise ValueError(
                    f"load_rois({representation!r}) gave {len(x)} ROIs for {len(labels)} labels"
                )
            for k in pending:
                _run_fold(run, x, representation, k)
                if on_fold_done is not None:
                    on_fold_done(representation, k)
            del x
        fold_results = [fold_result(files, representation, k) for k in folds]
        selected, weights = _select(files, representation, fold_results)
        chosen = fold_results[selected - 1]
        logger.info(
            "%s: fold %d selected (val accuracy %.4f, test accuracy %.4f)",
            *(representation, selected, chosen.val_accuracy, chosen.test_accuracy),
        )
        results[representation] = RepresentationResult(
            representation, tuple(fold_results), selected, weights
        )
    return CrossValidationResult(files.out_dir, protocol, results)
