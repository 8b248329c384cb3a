"""Train the YOLOv4 baseline on whole mammograms (tiles in the working frame); resumable.

    python -m calcsdk.training.yolo.train --coco data/annotations.json --out runs/yolov4-1 \\
        --config yolov4-1 [--val-fraction 0.1] [--cache-dir runs/cache] [--resume]

Files in ``out_dir``:

* ``last.pt``: resumable checkpoint (model, EMA, optimizer, :class:`RunState`, configs,
  anchors), written at every epoch end, every ``checkpoint_every_steps`` steps and when
  ``max_steps`` stops the run; ``best.pt``: EMA weights with the best validation mAP;
* ``settings.json``: the SDK pipeline settings (:class:`calcsdk.pipelines.yolo.YoloSettings`
  as manifest sections, anchors included) that export and evaluation use;
* ``log.jsonl``: one JSON object per finished (or interrupted) epoch.

Randomness: initial weights come from ``seed``; epoch ``e``'s order and every sample's
augmentation from ``(seed, e, index)`` (``data.py``), so a resumed run replays the steps an
uninterrupted one would, even from inside an epoch (the state records the steps done in it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from calcsdk.pipelines.yolo import YoloSettings
from calcsdk.training.datasets.record import ImageRecord
from calcsdk.training.models.yolov4 import YOLOv4, YOLOv4Config
from calcsdk.training.yolo.anchors import fit_anchors
from calcsdk.training.yolo.config import YoloTrainConfig
from calcsdk.training.yolo.data import YoloTileDataset, collate_samples
from calcsdk.training.yolo.ema import ModelEMA
from calcsdk.training.yolo.evaluate import evaluate_yolo
from calcsdk.training.yolo.loss import YoloLoss
from calcsdk.training.yolo.precise_bn import recalibrate_batchnorm

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
# Config fields that may change on resume: they do not alter the steps already trained.
RESUMABLE_CHANGES = frozenset(
    {
        "epochs",
        "max_steps",
        "max_minutes",
        "progress",
        "num_workers",
        "eval_every_epochs",
        "checkpoint_every_steps",
        "autocast",
        "precise_bn_tiles",  # acts on the EMA copy before validation and export only
    }
)


@dataclass
class RunState:
    """Progress of a run: everything besides weights that a resume needs."""

    epoch: int = 0  # finished epochs
    step_in_epoch: int = 0  # optimizer steps done in the unfinished epoch
    global_step: int = 0  # optimizer steps done in all
    history: list[dict] = field(default_factory=list)  # log.jsonl records
    best_map: float = -1.0
    best_epoch: int = 0


@dataclass(frozen=True)
class YoloTrainResult:
    last_checkpoint_path: Path  # resumable; its "ema" entry holds the weights to export
    best_weights_path: Path | None  # best validation mAP (EMA weights); None without validation
    settings: YoloSettings  # SDK pipeline settings, anchors in network pixels
    history: list[dict]  # as log.jsonl
    global_step: int


def model_config_of(config: YoloTrainConfig) -> YOLOv4Config:
    """One grayscale input channel, the two classes, the configured width and depth."""
    return YOLOv4Config(num_classes=2, in_channels=1, width=config.width, depth=config.depth)


def build_criterion(config: YoloTrainConfig, anchors: np.ndarray) -> YoloLoss:
    """The training loss of ``config`` for ``anchors`` ``(9, 2)`` (network pixels)."""
    return YoloLoss(
        torch.as_tensor(np.asarray(anchors, np.float32)),
        model_config_of(config).num_classes,
        scale_x_y=config.scale_x_y,
        iou_t=config.iou_t,
        ignore_thresh=config.ignore_thresh,
        iou_normalizer=config.iou_normalizer,
        obj_normalizer=config.obj_normalizer,
        cls_normalizer=config.cls_normalizer,
    )


def build_model(config: YoloTrainConfig) -> YOLOv4:
    """Seeded initial weights; objectness biases start at ``objectness_prior`` (so the summed
    background BCE of thousands of cells starts small instead of at log 2 each)."""
    torch.manual_seed(config.seed)
    model = YOLOv4(model_config_of(config))
    prior = math.log(config.objectness_prior / (1 - config.objectness_prior))
    with torch.no_grad():
        for head in model.heads:
            bias = head.predict.bias.view(model.config.num_anchors, -1)
            bias[:, 4] = prior
    return model


def _param_groups(model: nn.Module, config: YoloTrainConfig) -> list[dict]:
    """Weight decay on conv weights only (darknet), not on BatchNorm parameters or biases."""
    decayed = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    return [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]


def _save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _check_resumable(saved: dict, config: YoloTrainConfig, path: Path) -> None:
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: format {saved.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    now = dataclasses.asdict(config)
    changed = sorted(
        k for k, v in saved["config"].items() if k not in RESUMABLE_CHANGES and now.get(k) != v
    )
    if changed:
        raise ValueError(f"{path}: cannot resume with changed config fields {changed}")


def train_yolo(
    records: Sequence[ImageRecord],
    config: YoloTrainConfig,
    out_dir: str | os.PathLike,
    *,
    val_records: Sequence[ImageRecord] | None = None,
    anchors: np.ndarray | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> YoloTrainResult:
    """Train YOLOv4 with SGD, darknet's schedule, gradient accumulation and EMA weights.

    Args:
        records: training images with boxes (original pixels) and labels 0/1.
        config: see ``config.py`` (``get_config("yolov4-1")`` is the paper's first setting).
        out_dir: run directory (module docstring); created if missing.
        val_records: scored every ``eval_every_epochs`` epochs and at the end (EMA weights,
            whole images through the SDK pipeline); best mAP -> ``best.pt``.
        anchors: ``(9, 2)`` network pixels; ``None`` fits them by k-means on ``records``.
        resume: continue from ``out_dir/last.pt``; without it an existing ``last.pt`` raises
            ``FileExistsError``.
        device: ``None`` = CUDA when present, else CPU.
        cache_dir: keep the prepared working images there (float16 .npy) for later runs.
    """
    out = Path(out_dir)
    if not resume and (out / "last.pt").exists():
        raise FileExistsError(f"{out / 'last.pt'} exists: pass resume=True or another out_dir")
    if not records:
        raise ValueError("train_yolo needs at least one training record")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out.mkdir(parents=True, exist_ok=True)
    dataset = YoloTileDataset(records, config, train=True, cache_dir=cache_dir)
    if not resume and anchors is None:
        anchors = fit_anchors(
            records,
            config.working_spacing_mm,
            network_scale=dataset.network_scale(),
            k=config.anchor_count,
            seed=config.seed,
            fallback_spacing_mm=config.fallback_spacing_mm,
        )
    trainer = _Trainer(dataset, config, out, device, anchors, resume)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    try:
        stopped = False
        while trainer.state.epoch < config.epochs and not stopped:
            stopped = trainer.run_epoch(val_records)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    return YoloTrainResult(
        last_checkpoint_path=trainer.last_path,
        best_weights_path=trainer.best_path if trainer.best_path.exists() else None,
        settings=trainer.settings,
        history=list(trainer.state.history),
        global_step=trainer.state.global_step,
    )


class _Trainer:
    """The objects of one run (model, EMA, optimizer, loss, data, state) and its epoch loop."""

    def __init__(
        self,
        dataset: YoloTileDataset,
        config: YoloTrainConfig,
        out: Path,
        device: torch.device,
        anchors: np.ndarray | None,
        resume: bool,
    ):
        self.dataset, self.config, self.device = dataset, config, device
        self.last_path, self.best_path, self.log_path = (
            out / "last.pt",
            out / "best.pt",
            out / "log.jsonl",
        )
        self.steps_per_epoch = math.ceil(len(dataset.epoch_indices(0)) / config.batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError("no training tile (with breast, or with a cluster) to train on")
        self.model = build_model(config).to(device)
        self.optimizer = torch.optim.SGD(
            _param_groups(self.model, config), lr=config.learning_rate, momentum=config.momentum
        )
        self.ema = ModelEMA(self.model, config.ema_decay)
        self.state = RunState()
        self.started = time.perf_counter()  # for max_minutes: this process's training time
        if resume:
            saved = torch.load(self.last_path, map_location="cpu", weights_only=True)
            _check_resumable(saved, config, self.last_path)
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.ema.load_state_dict(saved["ema"])
            self.state = RunState(**saved["state"])
            anchors = saved["anchors"]
            logger.info("resumed %s at step %d", self.last_path, self.state.global_step)
        self.anchors = np.asarray(anchors, np.float32)
        self.settings = config.pipeline_settings(self.anchors)
        (out / "settings.json").write_text(json.dumps(self.settings.to_manifest(), indent=2) + "\n")
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in self.state.history))
        self.criterion = build_criterion(config, self.anchors)

    def checkpoint(self) -> None:
        _save_atomic(
            {
                "format": CHECKPOINT_FORMAT,
                "model": self.model.state_dict(),
                "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "state": dataclasses.asdict(self.state),
                "config": dataclasses.asdict(self.config),
                "model_config": dataclasses.asdict(self.model.config),
                "anchors": self.anchors.tolist(),
            },
            self.last_path,
        )

    def _step(self, micro_batches, step_samples: int, sums: dict[str, float]) -> float:
        """One optimizer step over ``step_samples`` samples (several micro-batches)."""
        config, state = self.config, self.state
        lr = config.learning_rate_at(state.global_step, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        done = 0
        while done < step_samples:
            images, targets = next(micro_batches)
            with torch.autocast(
                self.device.type, torch.bfloat16, enabled=config.autocast == "bf16"
            ):
                outputs = self.model(images.to(self.device, non_blocking=True))
            outputs = [output.float() for output in outputs]  # the loss in float32
            loss, parts = self.criterion(outputs, targets, normalizer=step_samples)
            loss.backward()
            done += len(images)
            sums["loss"] += float(loss.detach()) * step_samples
            for key, value in parts.items():
                sums[key] += value * step_samples
        if config.grad_clip_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip_norm)
        self.optimizer.step()
        self.ema.update(self.model)
        state.step_in_epoch += 1
        state.global_step += 1
        return lr

    def run_epoch(self, val_records: Sequence[ImageRecord] | None) -> bool:
        """Train the rest of the current epoch (or until ``max_steps``); True when stopped."""
        config, state, dataset = self.config, self.state, self.dataset
        epoch, started = state.epoch, time.perf_counter()
        dataset.set_epoch(epoch)
        order = dataset.epoch_indices(epoch)
        loader = DataLoader(
            dataset,
            batch_size=config.micro_batch_size,
            sampler=order[state.step_in_epoch * config.batch_size :].tolist(),
            num_workers=config.num_workers,
            collate_fn=collate_samples,
        )
        micro_batches = iter(loader)
        sums, images_seen, stopped, lr = (
            dict.fromkeys(("loss", "box", "obj", "cls"), 0.0),
            0,
            False,
            0.0,
        )
        self.model.train()
        with tqdm(
            total=self.steps_per_epoch,
            initial=state.step_in_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not config.progress,
            leave=False,
        ) as bar:
            while state.step_in_epoch < self.steps_per_epoch and not stopped:
                first = state.step_in_epoch * config.batch_size
                step_samples = len(order[first : first + config.batch_size])
                lr = self._step(micro_batches, step_samples, sums)
                images_seen += step_samples
                bar.set_postfix(loss=f"{sums['loss'] / images_seen:.3f}", lr=f"{lr:.2e}")
                bar.update()
                every = config.checkpoint_every_steps
                if every and state.global_step % every == 0:
                    self.checkpoint()
                stopped = (
                    config.max_steps is not None and state.global_step >= config.max_steps
                ) or (
                    config.max_minutes is not None
                    and time.perf_counter() - self.started >= 60 * config.max_minutes
                )
        seconds = time.perf_counter() - started
        finished = state.step_in_epoch >= self.steps_per_epoch
        record = {
            "epoch": epoch + 1,
            "partial": not finished,
            "global_step": state.global_step,
            **{k: v / max(images_seen, 1) for k, v in sums.items()},
            "lr": lr,
            "images": images_seen,
            "seconds": seconds,
            "images_per_second": images_seen / seconds if seconds > 0 else 0.0,
        }
        if finished:
            state.epoch, state.step_in_epoch = epoch + 1, 0
        last = state.epoch >= config.epochs or stopped
        validating = bool(val_records) and (
            last or (finished and state.epoch % config.eval_every_epochs == 0)
        )
        if validating or last:
            record["precise_bn_tiles"] = self.recalibrate_ema()
        if validating:
            self.validate(val_records, record)
        state.history.append(record)
        self.checkpoint()
        with self.log_path.open("a") as log:
            log.write(json.dumps(record) + "\n")
        logger.info("epoch %d: %s", epoch + 1, json.dumps(record))
        return stopped

    def recalibrate_ema(self) -> int:
        """Re-estimate the EMA weights' BatchNorm statistics (:mod:`.precise_bn`) on
        ``precise_bn_tiles`` training tiles drawn, without replacement, from the current epoch's
        mix of cluster and background tiles (augmented as in training; seeded by the step).
        The checkpoint then stores them, so validation, ``best.pt`` and export use them.
        Returns the number of tiles used (0: off)."""
        config, dataset = self.config, self.dataset
        order = dataset.epoch_indices(self.state.epoch)
        count = min(config.precise_bn_tiles, len(order))
        if count == 0:
            return 0
        rng = np.random.default_rng([config.seed, 0xB4, self.state.global_step])
        picks = rng.choice(order, size=count, replace=False)
        size = config.micro_batch_size
        batches = (
            collate_samples([dataset[int(i)] for i in picks[start : start + size]])[0].to(
                self.device
            )
            for start in range(0, count, size)
        )
        started = time.perf_counter()
        recalibrate_batchnorm(self.ema.module, batches)  # keeps the EMA copy in eval mode
        logger.info("precise BN: %d tiles in %.0f s", count, time.perf_counter() - started)
        return count

    def validate(self, val_records: Sequence[ImageRecord], record: dict) -> None:
        """Score the EMA weights; keep them in ``best.pt`` when the mAP improves."""
        evaluation = evaluate_yolo(self.ema.module, val_records, self.settings, device=self.device)
        record["val"] = evaluation.table6()
        val_map = record["val"]["mAP"]
        if np.isfinite(val_map) and val_map > self.state.best_map:
            self.state.best_map, self.state.best_epoch = val_map, record["epoch"]
            _save_atomic(
                {
                    "model": self.ema.module.state_dict(),
                    "model_config": dataclasses.asdict(self.model.config),
                    "anchors": self.anchors.tolist(),
                    "epoch": record["epoch"],
                    "val": record["val"],
                },
                self.best_path,
            )


def load_trained_yolo(path: str | os.PathLike) -> tuple[YOLOv4, np.ndarray]:
    """``(model in eval mode, anchors (9, 2) network px)`` from ``last.pt`` (its EMA weights)
    or ``best.pt``. The BatchNorm statistics are those re-estimated at the run's last
    validation or end (``precise_bn_tiles``); a ``last.pt`` saved inside an epoch holds the
    EMA's averaged ones, which may not match its weights (:mod:`.precise_bn`)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = YOLOv4(YOLOv4Config(**saved["model_config"]))
    weights = saved["ema"]["module"] if "ema" in saved else saved["model"]
    model.load_state_dict(weights)
    return model.eval(), np.asarray(saved["anchors"], np.float32)


def main(argv: list[str] | None = None) -> None:
    """Command line: the options of ``calcsdk train yolo`` (:mod:`.command`)."""
    from calcsdk.training.yolo import command

    parser = argparse.ArgumentParser(description="Train the YOLOv4 baseline.")
    command.add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command.run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
