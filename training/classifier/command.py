"""``calcsdk train classifier``: the paper's ROI-classifier experiment (k-fold CV, Tables 2/3).

    calcsdk train classifier --rois synth/rois --out runs/cls --representation all \\
        --config rcnn-2 --folds 5

``--rois`` is the ROI data set written by ``calcsdk synth`` (``index.csv`` plus one folder per
representation), or the folder above it. The run folder receives the per-fold training runs,
their saved predictions, ``<representation>/best.pt`` (the selected model, the input of
``calcsdk train rcnn --classifier``) and the report (``report.md``, ``report.json``,
``confusion_<representation>.png``), rewritten after every finished fold. ``--resume``
continues an interrupted run without retraining finished folds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPRESENTATION_CHOICES = ("grayscale", "binary", "filtered", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rois", type=Path, required=True, help="ROI folder with index.csv (or its parent)"
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (paper: 5)")
    parser.add_argument(
        "--representation",
        default="all",
        choices=REPRESENTATION_CHOICES,
        help="ROI representation to run, or all three (default)",
    )
    parser.add_argument(
        "--config",
        default="rcnn-2",
        choices=("rcnn-1", "rcnn-2"),
        help="paper: rcnn-1 = lr 0.001, 50 epochs; rcnn-2 = lr 0.0001, 100 epochs (default)",
    )
    parser.add_argument("--width", type=float, default=1.0, help="AlexNet width (1.0 = paper)")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument(
        "--lr",
        type=float,
        help="override the config's learning rate (the paper fine-tunes ImageNet weights; "
        "training from scratch may need more)",
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        help="constant (the paper's, default) or cosine decay to zero over the epochs",
    )
    parser.add_argument(
        "--warmup-epochs", type=float, help="linear learning-rate warmup over these epochs"
    )
    parser.add_argument("--patience", type=int, help="early-stopping patience (0 = never)")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size (128)")
    parser.add_argument(
        "--max-rois",
        type=int,
        help="use a stratified, patient-level subset of about this many ROIs",
    )
    parser.add_argument(
        "--test-rois", type=int, default=1000, help="held-out test ROIs at the paper's 5,000"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="validation share in each fold"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--no-progress", action="store_true", help="no per-epoch progress bar")


def _roi_root(path: Path) -> Path:
    """``path`` when it holds ``index.csv``, else ``path/rois`` when that does."""
    if not (path / "index.csv").is_file() and (path / "rois" / "index.csv").is_file():
        return path / "rois"
    return path


def run(args: argparse.Namespace) -> int:
    import logging

    import numpy as np

    from calcsdk.representations import REPRESENTATIONS
    from calcsdk.training.classifier.config import get_config
    from calcsdk.training.classifier.cross_validation import (
        CrossValidationConfig,
        run_cross_validation,
    )
    from calcsdk.training.classifier.report import write_report
    from calcsdk.training.models.alexnet import AlexNetConfig
    from calcsdk.training.roi_dataset import ROI_LABELS, load_roi_dataset, read_roi_index
    from calcsdk.training.splits import patient_stratified_split

    logging.getLogger("calcsdk").setLevel(logging.INFO)
    root = _roi_root(args.rois)
    rows = read_roi_index(root)
    unknown = sorted({row["label"] for row in rows} - set(ROI_LABELS))
    if unknown:
        raise ValueError(f"{root}: unknown ROI labels {unknown}; expected {ROI_LABELS}")
    labels = np.array([ROI_LABELS.index(row["label"]) for row in rows], dtype=np.int64)
    groups = [row["patient_id"] or row["roi_id"] for row in rows]
    selected = np.arange(len(rows))
    if args.max_rois is not None:
        if args.max_rois < 1:
            raise ValueError(f"--max-rois should be >= 1, got {args.max_rois}")
        if args.max_rois < len(rows):
            _, selected = patient_stratified_split(groups, labels, args.max_rois, args.seed)

    def load_rois(representation: str) -> np.ndarray:
        x, y, _ = load_roi_dataset(root, representation)
        if not np.array_equal(y, labels):
            raise ValueError(f"{root}: labels of {representation} differ from index.csv")
        return x if len(selected) == len(x) else x[selected]

    overrides = {
        "epochs": args.epochs,
        "learning_rate": args.lr,
        "lr_schedule": args.lr_schedule,
        "warmup_epochs": args.warmup_epochs,
        "patience": args.patience,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "progress": False if args.no_progress else None,
    }
    train_config = get_config(args.config, **{k: v for k, v in overrides.items() if v is not None})
    chosen = REPRESENTATIONS if args.representation == "all" else (args.representation,)
    cv_config = CrossValidationConfig(
        representations=tuple(chosen),
        n_folds=args.folds,
        n_test=args.test_rois,
        val_fraction=args.val_fraction,
        seed=args.seed,
    )
    result = run_cross_validation(
        load_rois,
        labels[selected],
        args.out,
        train_config,
        model_config=AlexNetConfig(width=args.width),
        cv_config=cv_config,
        groups=[groups[i] for i in selected],
        source_rows=selected,
        resume=args.resume,
        device=args.device,
        on_fold_done=lambda representation, fold: write_report(args.out),
    )
    files = write_report(args.out)
    for name, entry in result.representations.items():
        chosen_fold = entry.folds[entry.selected_fold - 1]
        print(
            f"{name}: AlexNet{entry.selected_fold} selected, validation accuracy "
            f"{chosen_fold.val_accuracy:.4f}, test accuracy {chosen_fold.test_accuracy:.4f}: "
            f"{entry.selected_weights_path or 'weights absent'}"
        )
    print(f"report: {files.markdown}")
    return 0
