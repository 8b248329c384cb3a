"""``calcsdk train yolo``: train the YOLOv4 baseline on a COCO dataset (e.g. ``calcsdk synth``).

    calcsdk train yolo --data data/synth --config yolov4-2 --out runs/yolov4-2 [--resume]

Standard-library imports only at module level; torch is imported in :func:`run`. The same
options serve ``python -m calcsdk.training.yolo.train``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# config fields settable from the command line, with their types
OPTIONS = {"epochs": int, "max_steps": int, "micro_batch_size": int, "batch_size": int,
           "learning_rate": float, "width": float, "depth": float, "network_size": int,
           "working_spacing_mm": float, "num_workers": int, "seed": int, "layout": str,
           "tile_overlap": int, "autocast": str, "max_minutes": float, "warmup_epochs": float,
           "negative_tile_ratio": float, "eval_every_epochs": int,
           "checkpoint_every_steps": int, "precise_bn_tiles": int}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", "--coco", dest="coco", required=True,
        help="COCO JSON of the training images, or a folder holding annotations.json",
    )  # fmt: skip
    parser.add_argument("--val-coco", help="COCO JSON of validation images")
    parser.add_argument(
        "--split",
        help="JSON {train, val, test: [image paths]} of another run (e.g. an R-CNN's split.json),"
        " matched by file name: train on train, validate on val, then evaluate on test",
    )
    parser.add_argument("--val-fraction", type=float, default=0.1, help="without --val-coco")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--config", default="yolov4-1", choices=("yolov4-1", "yolov4-2"))
    parser.add_argument("--cache-dir", help="keep prepared working images here")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    for name, kind in OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind)
    parser.add_argument(
        "--no-validation", action="store_true",
        help="never validate (no best.pt): for a run whose only evaluation is --split's test"
        " images, which then score last.pt's EMA weights",
    )  # fmt: skip
    parser.add_argument("--mosaic", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from calcsdk.training.datasets import load_coco
    from calcsdk.training.splits import patient_stratified_split
    from calcsdk.training.yolo.config import get_config
    from calcsdk.training.yolo.train import train_yolo

    logging.getLogger("calcsdk").setLevel(logging.INFO)
    overrides = {k: getattr(args, k) for k in OPTIONS if getattr(args, k) is not None}
    overrides.update({"mosaic": True} if args.mosaic else {})
    overrides.update({"progress": False} if args.no_progress else {})
    config = get_config(args.config, **overrides)
    coco = Path(args.coco)
    records = load_coco(coco / "annotations.json" if coco.is_dir() else coco)
    test_records = []
    if args.split:
        if args.val_coco:
            raise SystemExit("--split and --val-coco exclude each other")
        parts = split_records(records, json.loads(Path(args.split).read_text()), args.split)
        train_records, val_records = parts["train"], parts["val"]
        test_records = parts.get("test", [])
    elif args.val_coco:
        train_records, val_records = records, load_coco(args.val_coco)
    else:
        groups = [r.group_id for r in records]
        train, val = patient_stratified_split(
            groups, [r.image_label for r in records], args.val_fraction, seed=config.seed
        )
        train_records, val_records = [records[i] for i in train], [records[i] for i in val]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    split = {"train": [str(r.image_path) for r in train_records]}
    split["val"] = [str(r.image_path) for r in val_records]
    if test_records:
        split["test"] = [str(r.image_path) for r in test_records]
    (out / "split.json").write_text(json.dumps(split, indent=1) + "\n")  # for int8 calibration
    result = train_yolo(
        train_records,
        config,
        args.out,
        val_records=None if args.no_validation else val_records,
        resume=args.resume,
        device=args.device,
        cache_dir=args.cache_dir,
    )
    print(f"done after {result.global_step} steps: {result.last_checkpoint_path}")
    if test_records:
        from calcsdk.training.yolo.evaluate import evaluate_test_split

        weights = result.best_weights_path or result.last_checkpoint_path
        evaluation = evaluate_test_split(weights, result.settings, test_records, out / "eval",
                                         device=args.device)  # fmt: skip
        table6 = evaluation["overall"]["table6"]
        print(f"test ({len(test_records)} images, {weights.name}): " + ", ".join(
            f"{k} {v:.3f}" for k, v in table6.items()))  # fmt: skip
    return 0


def split_records(records, split: dict, source: str = "split") -> dict[str, list]:
    """``records`` grouped by ``split``'s lists of image paths, matched by file name.

    Raises:
        SystemExit: a listed image is not among ``records``, or is listed twice.
    """
    by_name = {Path(r.image_path).name: r for r in records}
    parts, seen = {}, set()
    for part, paths in split.items():
        names = [Path(p).name for p in paths]
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SystemExit(f"{source}: {len(missing)} {part} images are not in --data, e.g. "
                             f"{missing[:3]}")  # fmt: skip
        twice = seen.intersection(names)
        if twice or len(set(names)) != len(names):
            raise SystemExit(f"{source}: images listed twice, e.g. {sorted(twice)[:3]}")
        seen.update(names)
        parts[part] = [by_name[n] for n in names]
    for needed in ("train", "val"):
        if not parts.get(needed):
            raise SystemExit(f"{source}: no {needed!r} images")
    return parts
