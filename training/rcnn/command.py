"""``calcsdk train rcnn``: train, export and evaluate the paper's R-CNN on a COCO dataset.

    calcsdk train rcnn --data synth/ --classifier runs/cls/grayscale/best.pt \\
        --config rcnn-2 --out runs/rcnn-2

The data folder holds ``annotations.json`` (COCO with per-image ``spacing_mm``, as written by
``calcsdk synth``). The paper's split (2,888 train / 377 test of 3,265, scaled to the data) is
patient-level and stratified; a share of the training images validates fine-tuning and
calibrates the SVM scores. Outputs: ``bundle/`` (the deployable model), ``finetune/`` (torch
checkpoints), ``head.npz``, ``rcnn_train.json``, ``eval/`` (Tables 5/6 analogues, FROC).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="folder with annotations.json")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--config", default="rcnn-2", choices=("rcnn-1", "rcnn-2"))
    parser.add_argument(
        "--classifier", type=Path, help="best.pt of the ROI classifier to start from"
    )
    parser.add_argument("--width", type=float, default=1.0, help="AlexNet width (1.0 = paper)")
    parser.add_argument("--epochs", type=int, help="override the config's fine-tuning epochs")
    parser.add_argument("--batch-size", type=int, help="override the config's batch size")
    parser.add_argument("--max-images", type=int, help="use at most this many images in all")
    parser.add_argument(
        "--test-images", type=int, default=377, help="held-out images at paper scale"
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.15, help="share of train for validation"
    )
    parser.add_argument("--max-boxes", type=int, help="EdgeBoxes proposals per image")
    parser.add_argument("--negatives-per-image", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--samples-cache",
        type=Path,
        help="folder caching the training samples on disk: resumable, shared by configs and"
        " folds, crops memory-mapped (paper-scale runs)",
    )
    parser.add_argument(
        "--sample-workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that make the training samples (proposals and warps); same samples",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=1,
        help="k-fold cross-validation over the training images (paper: 5); 1 = one split",
    )
    parser.add_argument(
        "--box-regression",
        action="store_true",
        help="add R-CNN's class-agnostic box regressor on fc7 to the bundle (off: no gain measured)",
    )
    parser.add_argument(
        "--mine-images",
        type=int,
        help="refit the SVMs with hard negatives mined over every proposal of this many"
        " training images (R-CNN's mining; off by default)",
    )
    parser.add_argument(
        "--mine-per-image", type=int, default=500, help="hard negatives kept per mined image"
    )
    parser.add_argument("--svm-c", type=float, help="override the SVMs' C (default 1e-3)")
    parser.add_argument(
        "--svm-rounds", type=int, help="rounds of SVM hard-negative mining (default 3)"
    )
    parser.add_argument(
        "--svm-negatives-per-round",
        type=int,
        help="hard negatives added per class and round (default 4,000)",
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the test-set evaluation")


def _head_config(args: argparse.Namespace):
    """HeadConfig with the command line's SVM overrides."""
    from dataclasses import replace

    from calcsdk.training.rcnn.head import HeadConfig

    overrides = {
        "svm_c": args.svm_c,
        "hard_negative_rounds": args.svm_rounds,
        "negatives_per_round": args.svm_negatives_per_round,
    }
    return replace(HeadConfig(), **{k: v for k, v in overrides.items() if v is not None})


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    import sys
    import time
    from dataclasses import replace

    from calcsdk.detector import Detector
    from calcsdk.proposals import ProposalConfig
    from calcsdk.training.datasets.coco import load_coco
    from calcsdk.training.detector_evaluation import evaluate_records, markdown_tables
    from calcsdk.training.models.alexnet import AlexNetConfig
    from calcsdk.training.rcnn.box_regression import BoxRegressionConfig
    from calcsdk.training.rcnn.cv_report import write_report
    from calcsdk.training.rcnn.mining import MiningConfig
    from calcsdk.training.rcnn.samples import SampleConfig
    from calcsdk.training.rcnn.train import RcnnTrainConfig, collect_samples, fit_rcnn
    from calcsdk.training.splits import paper_detector_split, patient_stratified_split

    if args.folds < 1:
        raise SystemExit(f"calcsdk train rcnn: --folds should be >= 1, got {args.folds}")
    counts = ("epochs", "batch_size", "mine_images", "mine_per_image", "svm_rounds",
              "svm_negatives_per_round", "sample_workers")  # fmt: skip
    for name in counts:
        value = getattr(args, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise SystemExit(f"calcsdk train rcnn: {flag} should be >= 1, got {value}")
    if args.svm_c is not None and not args.svm_c > 0:
        raise SystemExit(f"calcsdk train rcnn: --svm-c should be > 0, got {args.svm_c}")
    logging.getLogger("calcsdk").setLevel(logging.INFO)
    annotations = args.data / "annotations.json" if args.data.is_dir() else args.data
    records = load_coco(annotations)
    if args.max_images:
        records = records[: args.max_images]
    train_idx, test_idx = paper_detector_split(records, n_test=args.test_images, seed=args.seed)
    train_all = [records[i] for i in train_idx]
    fit_idx, val_idx = patient_stratified_split(
        [r.group_id for r in train_all],
        [r.image_label for r in train_all],
        args.val_fraction,
        args.seed,
    )
    overrides = {
        k: v
        for k, v in {"epochs": args.epochs, "batch_size": args.batch_size}.items()
        if v is not None
    }
    overrides["progress"] = sys.stderr.isatty()  # no progress bar in logs and CI
    proposals = ProposalConfig() if not args.max_boxes else ProposalConfig(max_boxes=args.max_boxes)
    config = RcnnTrainConfig(
        name=args.config,
        samples=replace(
            SampleConfig(),
            proposals=proposals,
            negatives_per_image=args.negatives_per_image,
            seed=args.seed,
        ),
        finetune_overrides=overrides,
        box_regression=BoxRegressionConfig() if args.box_regression else None,
        head=_head_config(args),
        mining=(
            MiningConfig(images=args.mine_images, per_image=args.mine_per_image)
            if args.mine_images
            else None
        ),
        seed=args.seed,
    )
    provenance = {
        "data": str(annotations),
        "images": {"train": len(fit_idx), "val": len(val_idx), "test": len(test_idx)},
        "classifier": str(args.classifier) if args.classifier else None,
    }
    if args.folds > 1:
        return _cross_validate(args, config, train_all, [records[i] for i in test_idx], provenance)
    # samples numbered by position in train_all, as --folds numbers them: one --samples-cache
    # serves a one-split run and a cross-validation of the same data
    started = time.perf_counter()
    samples = collect_samples(
        train_all, config.samples, cache_dir=args.samples_cache, workers=args.sample_workers
    )
    result = fit_rcnn(
        [samples[i] for i in fit_idx],
        [samples[i] for i in val_idx],
        config,
        args.out,
        classifier_weights=args.classifier,
        model_config=AlexNetConfig(width=args.width),
        bundle_name=f"calcsdk-{args.config}",
        provenance=provenance,
        seconds={"samples": time.perf_counter() - started},
        mining_records=[train_all[i] for i in fit_idx],
    )
    split = {
        "train": [train_all[i].image_path for i in fit_idx],
        "val": [train_all[i].image_path for i in val_idx],
        "test": [records[i].image_path for i in test_idx],
    }
    (args.out / "split.json").write_text(json.dumps(split, indent=1))
    print(f"bundle: {result.bundle_dir} ({result.seconds['total']:.0f} s)")
    if not args.no_eval:
        test_records = [records[i] for i in test_idx]
        evaluation = evaluate_records(Detector(result.bundle_dir), test_records, args.out / "eval")
        print(markdown_tables(evaluation))
        report = write_report(args.out, test_records, proposal_config=config.samples.proposals)
        print(f"report: {report}")
    return 0


def _cross_validate(args, config, train_all, test_records, provenance) -> int:
    """``--folds K``: K R-CNNs, Tables 5/6 with ranges, the selected fold's bundle, report."""
    from calcsdk.training.models.alexnet import AlexNetConfig
    from calcsdk.training.rcnn.cross_validation import cross_validate_rcnn
    from calcsdk.training.rcnn.cv_report import write_report

    provenance = {**provenance, "images": {"train+val": len(train_all), "test": len(test_records)}}
    summary = cross_validate_rcnn(
        train_all,
        test_records,
        config,
        args.out,
        n_folds=args.folds,
        classifier_weights=args.classifier,
        model_config=AlexNetConfig(width=args.width),
        bundle_name=f"calcsdk-{args.config}",
        provenance=provenance,
        samples_cache=args.samples_cache,
        sample_workers=args.sample_workers,
    )
    t6 = summary["table6"]
    print(f"bundle: {summary['bundle']} (fold {summary['selected_fold']} of {args.folds})")
    for metric, spread in t6.items():
        if spread["mean"] is not None:
            print(f"{metric}: {spread['mean']:.3f} ({spread['min']:.3f}-{spread['max']:.3f})")
    if not args.no_eval:
        print(
            f"report: {write_report(args.out, test_records, proposal_config=config.samples.proposals)}"
        )
    return 0
