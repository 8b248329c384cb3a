"""What a classifier training run writes and reads back: checkpoints, best weights, epoch log.

Files in the run directory:

* ``last.pt``: resumable checkpoint after the last finished epoch: model and optimizer state,
  :class:`TrainingState` (epoch, history, best metric, early-stopping counter), both configs,
  and the RNG state (the seed from which every epoch's streams are derived; see ``train.py``).
* ``best.pt``: model state of the epoch with the best validation accuracy, with its configs.
* ``log.jsonl``: one JSON object per finished epoch (rewritten from the history on resume).
* ``replicas.json``: under DDP, each rank's final parameter digest.

Files are written to a temporary name and renamed, so an interrupted write leaves the previous
version intact.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from calcsdk.training.classifier.config import ClassifierTrainConfig
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig

CHECKPOINT_FORMAT = 1
# Config fields that may change on resume: they do not alter the epochs already trained.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "progress", "eval_batch_size"})


@dataclass(frozen=True)
class RunFiles:
    """Paths of one run's files inside ``out_dir``."""

    out_dir: Path

    @property
    def last(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def log(self) -> Path:
        return self.out_dir / "log.jsonl"

    @property
    def replicas(self) -> Path:
        return self.out_dir / "replicas.json"


@dataclass
class TrainingState:
    """Progress of a run; everything besides weights that a resume needs."""

    epoch: int = 0  # finished epochs
    history: list[dict] = field(default_factory=list)  # one record per finished epoch
    best_val_accuracy: float = -1.0  # best value of the selection metric (config.selection_metric)
    best_epoch: int = 0  # 1-based; 0 before the first epoch
    epochs_without_improvement: int = 0
    stopped_early: bool = False

    def finish_epoch(self, record: dict, patience: int, metric: str = "val_accuracy") -> bool:
        """Append ``record``, update best and early stopping; True when ``record[metric]`` (the
        selection metric, kept in ``best_val_accuracy``) improved."""
        self.epoch = record["epoch"]
        self.history.append(record)
        improved = record[metric] > self.best_val_accuracy
        if improved:
            self.best_val_accuracy = record[metric]
            self.best_epoch = record["epoch"]
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        self.stopped_early = 0 < patience <= self.epochs_without_improvement
        return improved


def _save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def start_log(files: RunFiles, state: TrainingState) -> None:
    """Create the run directory and (re)write ``log.jsonl`` from ``state.history``."""
    files.out_dir.mkdir(parents=True, exist_ok=True)
    files.log.write_text("".join(json.dumps(record) + "\n" for record in state.history))


def save_epoch(
    files: RunFiles,
    model: AlexNet,
    optimizer: torch.optim.Optimizer,
    state: TrainingState,
    improved: bool,
    config: ClassifierTrainConfig,
) -> None:
    """Write best weights (if ``improved``), then the checkpoint, then the epoch's log line."""
    model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    configs = {
        "config": dataclasses.asdict(config),
        "model_config": dataclasses.asdict(model.config),
    }
    if improved:
        best = {"model": model_state, "epoch": state.epoch, "val_accuracy": state.best_val_accuracy}
        _save_atomic({**best, **configs}, files.best)
    rng = {"seed": config.seed, "next_epoch": state.epoch}
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model": model_state,
        "optimizer": optimizer.state_dict(),
        "state": dataclasses.asdict(state),
        "rng": rng,
        **configs,
    }
    _save_atomic(checkpoint, files.last)
    with files.log.open("a") as log:
        log.write(json.dumps(state.history[-1]) + "\n")


def load_checkpoint(
    path: Path, config: ClassifierTrainConfig, model_config: AlexNetConfig
) -> tuple[dict, dict, TrainingState]:
    """Model state, optimizer state and :class:`TrainingState` from a ``last.pt``.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: unknown format, a different network, or config fields changed other than
            those in ``RESUMABLE_CHANGES``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: format {saved.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    if saved["model_config"] != dataclasses.asdict(model_config):
        raise ValueError(f"{path}: model_config {saved['model_config']} differs from the given one")
    # a field newer than the checkpoint takes its default, which is the behaviour it had then
    before = {**dataclasses.asdict(ClassifierTrainConfig()), **saved["config"]}
    now = dataclasses.asdict(config)
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k) != now[k])
    if changed:
        raise ValueError(f"{path}: cannot resume with changed config fields {changed}")
    return saved["model"], saved["optimizer"], TrainingState(**saved["state"])


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> AlexNet:
    """An :class:`AlexNet` in eval mode from a run's ``best.pt`` or ``last.pt``."""
    saved = torch.load(path, map_location=device, weights_only=True)
    model = AlexNet(AlexNetConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    return model.to(device).eval()
