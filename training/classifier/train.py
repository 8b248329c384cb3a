"""Train the paper's ROI classifier (AlexNet, 3 classes) on 227x227 ROIs; resumable, DDP-ready.

One process: :func:`train_classifier`. Several (CPU: gloo, GPUs: nccl), same code::

    python -m torch.distributed.run --nproc_per_node 2 -m calcsdk.training.classifier.train \\
        --data rois.npz --out runs/rcnn-2 --config rcnn-2

The ``.npz`` holds ``x_train``, ``y_train``, ``x_val``, ``y_val`` (see :func:`train_classifier`).
Rank 0 writes the run's files (``checkpoint.py``) into ``out_dir``, which every rank must see.

Randomness: every stream of epoch ``e`` on rank ``r`` (shuffling, augmentation, dropout) is
seeded from ``(seed, e, r)``, as ``DistributedSampler.set_epoch`` does for shuffling, and the
initial weights from ``seed`` alone. The RNG state at an epoch boundary is therefore
``(seed, epoch)``, which the checkpoint holds: a resumed run replays exactly the epochs an
uninterrupted run would (same world size, device and thread count).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from calcsdk.training.classifier import distributed as ddp
from calcsdk.training.classifier.augment import augment_batch
from calcsdk.training.classifier.checkpoint import (
    RunFiles,
    TrainingState,
    load_checkpoint,
    save_epoch,
    start_log,
)
from calcsdk.training.classifier.config import ClassifierTrainConfig, get_config
from calcsdk.training.classifier.inference import as_batch, as_label_tensor, as_roi_tensor
from calcsdk.training.classifier.lr_schedule import lr_factor
from calcsdk.training.classifier.sampling import epoch_order
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig

logger = logging.getLogger(__name__)

# Stream ids mixed into the seed: each random stream gets its own.
_INIT, _SHUFFLE, _DROPOUT, _AUGMENT = range(4)
# Weights and batches in channels-last: with the conv-form LRN a full-width training step took
# 1.70 s instead of 2.08 s (batch 64, 2 cores; training/models/conv_lrn.py).
MEMORY_FORMAT = torch.channels_last


@dataclass(frozen=True)
class TrainResult:
    best_weights_path: Path  # best.pt: {"model": state_dict, "model_config": {...}, ...}
    last_checkpoint_path: Path  # last.pt: resumable; weights after the last trained epoch
    history: list[dict]  # one record per epoch, as in log.jsonl
    best_val_accuracy: float  # fraction in [0, 1]
    best_epoch: int  # 1-based epoch whose weights are in best.pt
    stopped_early: bool


def _seed(*parts: int) -> int:
    """A 32-bit seed mixing ``parts`` (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def _param_groups(model: AlexNet, config: ClassifierTrainConfig) -> list[dict]:
    """Base and last-layer learning rates; no weight decay on biases (as Caffe and MATLAB)."""
    last = {id(p) for p in model.last_layer.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        groups.setdefault((id(param) in last, name.endswith("bias")), []).append(param)
    return [
        {
            "params": params,
            "lr": config.learning_rate * (config.last_layer_lr_multiplier if is_last else 1.0),
            "weight_decay": 0.0 if is_bias else config.weight_decay,
        }
        for (is_last, is_bias), params in sorted(groups.items())
    ]


def _build_model(model_config: AlexNetConfig, config: ClassifierTrainConfig) -> AlexNet:
    """Seeded initial weights (identical on every rank), optionally fine-tuned from a file."""
    torch.manual_seed(_seed(config.seed, _INIT))
    model = AlexNet(model_config)
    if config.init_weights:
        saved = torch.load(config.init_weights, map_location="cpu", weights_only=True)
        saved = saved.get("model", saved)
        own = model.state_dict()
        kept = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(kept, strict=False)
        logger.info(
            "initialised from %s; left new (shape or name differs): %s",
            config.init_weights,
            sorted(own.keys() - kept.keys()),
        )
    return model


def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device
) -> list[float]:
    """``[summed loss, correct, count, correct of class 0..C-1, count of class 0..C-1]`` over
    this rank's ROIs, in eval mode (sums, so that ranks add up)."""
    model.eval()
    num_classes = model.config.num_classes
    loss_sum = 0.0
    hits = torch.zeros(num_classes, dtype=torch.float64)
    counts = torch.zeros(num_classes, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb, yb = (
                as_batch(x[start : start + batch_size], device),
                y[start : start + batch_size].to(device),
            )
            logits = model(xb)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            right = (logits.argmax(1) == yb).cpu().double()
            hits += torch.bincount(yb.cpu(), weights=right, minlength=num_classes)
            counts += torch.bincount(yb.cpu(), minlength=num_classes).double()
    return [loss_sum, float(hits.sum()), float(len(x)), *hits.tolist(), *counts.tolist()]


def _balanced_accuracy(class_hits: list[float], class_counts: list[float]) -> float:
    """Mean recall over the classes present (validation accuracy with every class weighted
    equally, whatever its count)."""
    recalls = [h / n for h, n in zip(class_hits, class_counts, strict=True) if n > 0]
    return sum(recalls) / len(recalls) if recalls else 0.0


def _biased_shard(
    y_train: torch.Tensor,
    config: ClassifierTrainConfig,
    epoch: int,
    context: ddp.DistributedContext,
) -> torch.Tensor:
    """This rank's share of one foreground-biased epoch (:func:`.sampling.epoch_order`): every
    rank draws the same global order from ``(seed, epoch)`` and takes every world_size-th row,
    the order cut to a multiple of world_size so that ranks step together."""
    rng = np.random.default_rng(_seed(config.seed, epoch, _SHUFFLE))
    order = epoch_order(y_train.numpy(), config.foreground_fraction, config.background_class, rng)
    order = order[: len(order) - len(order) % context.world_size]
    return torch.from_numpy(order[context.rank :: context.world_size].copy())


def _train_one_epoch(
    trained: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor,
    batch_size: int,
    config: ClassifierTrainConfig,
    augment_rng: torch.Generator,
    device: torch.device,
    bar: tqdm,
    set_lr: Callable[[int], None],
) -> list[float]:
    """One pass over ``indices`` (this rank's shard); ``[summed loss, correct, count]``.
    ``set_lr(i)`` sets the learning rates for the epoch's ``i``-th step before it is taken."""
    trained.train()
    sums = [0.0, 0.0, 0.0]
    for step, start in enumerate(range(0, len(indices), batch_size)):
        set_lr(step)
        batch = indices[start : start + batch_size]
        xb, yb = as_batch(x[batch], device), y[batch].to(device)
        if config.augment:
            xb = augment_batch(xb, config, augment_rng)
        xb = xb.contiguous(memory_format=MEMORY_FORMAT)
        logits = trained(xb)
        loss = F.cross_entropy(logits, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sums[0] += loss.item() * len(batch)
        sums[1] += float((logits.argmax(1) == yb).sum())
        sums[2] += len(batch)
        bar.set_postfix(loss=f"{sums[0] / sums[2]:.4f}", acc=f"{sums[1] / sums[2]:.3f}")
        bar.update()
    return sums


def train_classifier(
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    x_val: np.ndarray | torch.Tensor,
    y_val: np.ndarray | torch.Tensor,
    config: ClassifierTrainConfig,
    out_dir: str | os.PathLike,
    *,
    model_config: AlexNetConfig,
    resume: bool = False,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train AlexNet with SGD+momentum, augmentation and early stopping on validation accuracy.

    Args:
        x_train, x_val: float32 ROIs in [0, 1], ``(N, 227, 227)`` or ``(N, 1, 227, 227)``
            (warped 227x227 crops, pixel frame of the crop); both non-empty. float16 ROIs
            stay float16 in memory and are cast batch by batch.
        y_train, y_val: int64 ``(N,)``: malignant=0, benign=1, normal=2.
        config: optimiser, epochs, early stopping, augmentation, seed (``config.py``).
        out_dir: directory for checkpoints and logs; created if missing.
        model_config: the network (``AlexNetConfig()`` is the paper's).
        resume: continue from ``out_dir/last.pt``. Without it an existing ``last.pt`` raises
            ``FileExistsError`` rather than being overwritten.
        device: ``None`` = CUDA when present, else CPU. Under torchrun: DDP over all ranks,
            ``config.batch_size`` being the global batch.
    Returns:
        :class:`TrainResult`; under DDP the same on every rank.
    """
    x_train = as_roi_tensor(x_train, model_config.in_channels, "x_train")
    x_val = as_roi_tensor(x_val, model_config.in_channels, "x_val")
    y_train = as_label_tensor(y_train, len(x_train), model_config.num_classes, "y_train")
    y_val = as_label_tensor(y_val, len(x_val), model_config.num_classes, "y_val")
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"need training and validation ROIs, got {len(x_train)} and {len(x_val)}")
    files = RunFiles(Path(out_dir))
    if not resume and files.last.exists():
        raise FileExistsError(f"{files.last} exists: pass resume=True or choose another out_dir")

    context = ddp.setup_distributed(device)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        if config.batch_size % context.world_size:
            raise ValueError(
                f"batch_size {config.batch_size} does not split over {context.world_size} ranks"
            )
        if config.deterministic and context.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
        return _run(x_train, y_train, x_val, y_val, config, model_config, resume, context, files)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        ddp.teardown_distributed(context)


def _run(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    config: ClassifierTrainConfig,
    model_config: AlexNetConfig,
    resume: bool,
    context: ddp.DistributedContext,
    files: RunFiles,
) -> TrainResult:
    model = _build_model(model_config, config).to(context.device, memory_format=MEMORY_FORMAT)
    optimizer = torch.optim.SGD(
        _param_groups(model, config), lr=config.learning_rate, momentum=config.momentum
    )
    base_lrs = [group["lr"] for group in optimizer.param_groups]  # before a resumed state
    state = TrainingState()
    if resume:
        model_state, optimizer_state, state = load_checkpoint(files.last, config, model_config)
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        logger.info("resumed %s after epoch %d", files.last, state.epoch)
    if context.is_main:
        start_log(files, state)
    ddp.barrier(context)

    trained = DistributedDataParallel(model) if context.is_distributed else model
    shards = DistributedSampler(
        range(len(x_train)),
        context.world_size,
        context.rank,
        shuffle=True,
        seed=_seed(config.seed, _SHUFFLE),
    )
    local_batch = config.batch_size // context.world_size
    x_val, y_val = (
        x_val[context.rank :: context.world_size],
        y_val[context.rank :: context.world_size],
    )
    while state.epoch < config.epochs and not state.stopped_early:
        epoch, started = state.epoch, time.perf_counter()
        shards.set_epoch(epoch)
        torch.manual_seed(_seed(config.seed, epoch, context.rank, _DROPOUT))
        augment_rng = torch.Generator().manual_seed(
            _seed(config.seed, epoch, context.rank, _AUGMENT)
        )
        indices = (
            torch.tensor(list(shards), dtype=torch.int64)
            if config.foreground_fraction is None
            else _biased_shard(y_train, config, epoch, context)
        )
        steps_per_epoch = -(-len(indices) // local_batch)  # the same every epoch

        def factor_at(step: int, epoch: int = epoch, steps: int = steps_per_epoch) -> float:
            """Learning-rate factor of the epoch's ``step``-th step (lr_schedule.py)."""
            warmup = round(config.warmup_epochs * steps)
            return lr_factor(
                config.lr_schedule, epoch * steps + step, config.epochs * steps, warmup
            )

        def set_lr(step: int) -> None:
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor_at(step)

        with tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (config.progress and context.is_main),
            leave=False,
        ) as bar:
            train_sums = _train_one_epoch(
                trained,
                optimizer,
                x_train,
                y_train,
                indices,
                local_batch,
                config,
                augment_rng,
                context.device,
                bar,
                set_lr,
            )
        loss, correct, count = ddp.sum_over_ranks(train_sums, context)
        val_sums = _evaluate(model, x_val, y_val, config.eval_batch_size, context.device)
        val_loss, val_correct, val_count, *per_class = ddp.sum_over_ranks(val_sums, context)
        half = len(per_class) // 2
        factor = factor_at(steps_per_epoch - 1)
        record = {
            "epoch": epoch + 1,
            "loss": loss / count,
            "accuracy": correct / count,
            "val_loss": val_loss / val_count,
            "val_accuracy": val_correct / val_count,
            "val_balanced_accuracy": _balanced_accuracy(per_class[:half], per_class[half:]),
            "lr": config.learning_rate * factor,  # at the epoch's last step
            "last_layer_lr": config.learning_rate * config.last_layer_lr_multiplier * factor,
            "seconds": time.perf_counter() - started,
        }
        improved = state.finish_epoch(record, config.patience, "val_" + config.selection_metric)
        if context.is_main:
            save_epoch(files, model, optimizer, state, improved, config)
        logger.info(
            "epoch %d: loss %.4f acc %.3f val_loss %.4f val_acc %.3f val_bal_acc %.3f (%.1f s)",
            *(
                record[k]
                for k in (
                    "epoch",
                    "loss",
                    "accuracy",
                    "val_loss",
                    "val_accuracy",
                    "val_balanced_accuracy",
                    "seconds",
                )
            ),
        )
        ddp.barrier(context)

    if context.is_distributed:
        _check_replicas(model, context, files.replicas)
    return TrainResult(
        files.best,
        files.last,
        list(state.history),
        state.best_val_accuracy,
        state.best_epoch,
        state.stopped_early,
    )


def _check_replicas(model: nn.Module, context: ddp.DistributedContext, path: Path) -> None:
    """Rank 0 writes every rank's parameter digest; any difference raises on every rank."""
    digests = ddp.gather_parameter_digests(model, context)
    if context.is_main:
        path.write_text(json.dumps({"world_size": context.world_size, "digests": digests}))
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP replicas diverged: parameter digests {digests}")


def main(argv: list[str] | None = None) -> None:
    """Command line and torchrun entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Train the paper's AlexNet ROI classifier.")
    parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_val, y_val")
    parser.add_argument("--out", required=True, help="run directory (shared by all ranks)")
    parser.add_argument("--config", default="rcnn-2", help="rcnn-1 or rcnn-2 (default rcnn-2)")
    parser.add_argument("--width", type=float, default=1.0, help="AlexNet width multiplier")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch, split over ranks")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"))
    parser.add_argument("--warmup-epochs", type=float)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "lr_schedule": args.lr_schedule,
        "warmup_epochs": args.warmup_epochs,
        "patience": args.patience,
        "seed": args.seed,
        "augment": False if args.no_augment else None,
        "progress": False if args.no_progress else None,
    }
    config = get_config(args.config, **{k: v for k, v in overrides.items() if v is not None})
    with np.load(args.data) as data:
        arrays = {k: data[k] for k in ("x_train", "y_train", "x_val", "y_val")}
    result = train_classifier(
        **arrays,
        config=config,
        out_dir=args.out,
        model_config=AlexNetConfig(width=args.width, dropout=args.dropout),
        resume=args.resume,
        device=args.device,
    )
    logger.info(
        "best val accuracy %.4f at epoch %d: %s",
        result.best_val_accuracy,
        result.best_epoch,
        result.best_weights_path,
    )


if __name__ == "__main__":
    main()
