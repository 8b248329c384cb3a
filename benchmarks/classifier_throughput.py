"""Training and inference throughput of the paper's ROI classifier (full AlexNet) on CPU.

What one training step times is what ``training/classifier/train.py`` does per batch: batch
augmentation (``augment_batch``), forward, cross-entropy, backward and an SGD-momentum step
with weight decay, with ``torch.use_deterministic_algorithms`` on as in training. Inputs are
random float32 ROIs ``(B, 1, 227, 227)`` in [0, 1] already in memory (no PNG decoding). The
optimizer takes plain parameter groups (the trainer's per-layer learning rates cost the same).
Also timed: the eval-mode forward pass (validation and ``predict``) and one checkpoint write
(model + optimizer state, as ``last.pt`` each epoch). Each figure is the median of ``steps``
timed repetitions after ``warmup`` untimed ones. The machine may be shared: the load average
before and after is recorded.

``--compare-plain`` also times the same step with ``nn.LocalResponseNorm`` and contiguous
(NCHW) weights, the trainer before session 5, interleaved with the trainer's own step in one run.

From these, :func:`estimate_cv_seconds` bounds the paper's full experiment (5,000 ROIs, 1,000
test, 5 folds of 3,200 train / 800 validation, 3 representations), assuming every fold runs
all its epochs (early stopping can only shorten it).

    python -m calcsdk.benchmarks.classifier_throughput \\
        --json benchmarks/results/classifier_throughput.json
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F

from calcsdk.benchmarks.environment import cpu_model, cpu_simd
from calcsdk.training.classifier.augment import augment_batch
from calcsdk.training.classifier.config import get_config
from calcsdk.training.classifier.train import MEMORY_FORMAT
from calcsdk.training.models.alexnet import INPUT_SIZE, AlexNet, AlexNetConfig

PAPER_EPOCHS = {"rcnn-1": 50, "rcnn-2": 100}


def _median_seconds(step, steps: int, warmup: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def measure_training(
    batch_size: int = 128,
    micro_batch: int | None = None,
    steps: int = 5,
    warmup: int = 1,
    width: float = 1.0,
    seed: int = 0,
    plain: bool = False,
) -> dict:
    """Seconds per optimizer step of ``batch_size`` ROIs and ROIs/s (training).

    ``micro_batch``: accumulate gradients over micro-batches of this size (same arithmetic,
    less memory); None = the whole batch in one pass. ``plain``: time the pre-session-5 layer
    instead (``nn.LocalResponseNorm``, contiguous NCHW) rather than the trainer's (conv-form
    LRN, ``MEMORY_FORMAT`` weights and batches).
    """
    config = get_config("rcnn-1", seed=seed)
    micro = micro_batch or batch_size
    if batch_size % micro:
        raise ValueError(f"micro_batch {micro} should divide batch_size {batch_size}")
    torch.manual_seed(seed)
    model = AlexNet(AlexNetConfig(width=width)).train()
    layout = torch.contiguous_format if plain else MEMORY_FORMAT
    if plain:
        for name in ("norm1", "norm2"):
            setattr(model.features, name, torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0))
    model = model.to(memory_format=layout)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    x = torch.rand(
        batch_size, 1, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(1)
    )
    y = torch.randint(0, 3, (batch_size,), generator=torch.Generator().manual_seed(2))
    augment_rng = torch.Generator().manual_seed(3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        for start in range(0, batch_size, micro):
            xb = augment_batch(x[start : start + micro], config, augment_rng)
            xb = xb.contiguous(memory_format=layout)
            loss = F.cross_entropy(model(xb), y[start : start + micro]) * (micro / batch_size)
            loss.backward()
        optimizer.step()

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    try:
        median, times = _median_seconds(step, steps, warmup)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    buffer = io.BytesIO()
    started = time.perf_counter()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    checkpoint_seconds = time.perf_counter() - started
    return {
        "layer": "nn.LocalResponseNorm, NCHW" if plain else f"ConvLRN, {MEMORY_FORMAT}",
        "batch_size": batch_size,
        "micro_batch": micro,
        "steps_timed": steps,
        "warmup_steps": warmup,
        "seconds_per_step": times,
        "median_seconds_per_step": median,
        "rois_per_second": batch_size / median,
        "checkpoint_bytes": buffer.getbuffer().nbytes,
        "checkpoint_serialise_seconds": checkpoint_seconds,
    }


def measure_inference(
    batch_size: int = 256, steps: int = 3, warmup: int = 1, width: float = 1.0
) -> dict:
    """Seconds per eval-mode forward pass of ``batch_size`` ROIs and ROIs/s."""
    model = AlexNet(AlexNetConfig(width=width)).eval()
    x = torch.rand(
        batch_size, 1, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(4)
    )

    def step() -> None:
        with torch.no_grad():
            model(x)

    median, times = _median_seconds(step, steps, warmup)
    return {
        "batch_size": batch_size,
        "seconds_per_batch": times,
        "median_seconds_per_batch": median,
        "rois_per_second": batch_size / median,
    }


def estimate_cv_seconds(
    train_rois_per_second: float,
    eval_rois_per_second: float,
    checkpoint_seconds: float,
    epochs: int,
    n_rois: int = 5000,
    n_test: int = 1000,
    n_folds: int = 5,
    val_fraction: float = 0.2,
    representations: int = 3,
) -> dict:
    """Upper bound (all epochs run) of the cross-validation's wall-clock seconds.

    Per fold: ``epochs`` x (train pass + validation pass + checkpoint write), then predictions
    on the validation and test ROIs.
    """
    pool = n_rois - n_test
    n_val = round(pool * val_fraction)
    n_train = pool - n_val
    epoch = n_train / train_rois_per_second + n_val / eval_rois_per_second + checkpoint_seconds
    fold = epochs * epoch + (n_val + n_test) / eval_rois_per_second
    total = fold * n_folds * representations
    return {
        "rois": {"train": n_train, "val": n_val, "test": n_test},
        "epochs": epochs,
        "seconds_per_epoch": epoch,
        "seconds_per_fold": fold,
        "folds": n_folds * representations,
        "total_seconds": total,
        "total_hours": total / 3600,
    }


def _machine() -> dict:
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "simd": cpu_simd(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def _versions() -> dict:
    names = ("torch", "numpy", "calcsdk")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _load() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def run(
    batch_size: int = 128,
    micro_batch: int | None = None,
    steps: int = 5,
    threads: int = 2,
    width: float = 1.0,
    compare_plain: bool = False,
) -> dict:
    """Every measurement and the CV estimates, as one JSON-safe dict."""
    torch.set_num_threads(threads)
    load_before = _load()
    training = measure_training(batch_size, micro_batch, steps=steps, width=width)
    comparison = None
    if compare_plain:
        plain = measure_training(batch_size, micro_batch, steps=steps, width=width, plain=True)
        again = measure_training(batch_size, micro_batch, steps=steps, width=width)
        ours = statistics.median(training["seconds_per_step"] + again["seconds_per_step"])
        comparison = {
            "plain": plain,
            "trainer_again": again,
            "speedup_median": plain["median_seconds_per_step"] / ours,
        }
    inference = measure_inference(steps=max(3, steps // 2), width=width)
    estimates = {
        name: estimate_cv_seconds(
            training["rois_per_second"],
            inference["rois_per_second"],
            training["checkpoint_serialise_seconds"],
            epochs,
        )
        for name, epochs in PAPER_EPOCHS.items()
    }
    return {
        "benchmark": "classifier_throughput",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "network": f"AlexNet width {width}, 1 input channel, 3 classes",
        "includes": "augment_batch + forward + cross-entropy + backward + SGD-momentum step; "
        "ROIs already in memory; deterministic algorithms on, as in training",
        "machine": _machine(),
        "versions": _versions(),
        "load_average_before": load_before,
        "load_average_after": _load(),
        "training": training,
        "training_vs_plain": comparison,
        "inference": inference,
        "cv_estimate_upper_bound": estimates,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=128, help="paper: 128")
    parser.add_argument("--micro-batch", type=int, help="accumulate over micro-batches")
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--width", type=float, default=1.0, help="AlexNet width (1.0 = paper)")
    parser.add_argument(
        "--compare-plain", action="store_true", help="also time nn.LocalResponseNorm + NCHW"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    result = run(
        args.batch_size,
        args.micro_batch,
        args.steps,
        args.threads,
        args.width,
        compare_plain=args.compare_plain,
    )
    result["command"] = "python -m calcsdk.benchmarks.classifier_throughput " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
