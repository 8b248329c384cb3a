"""Files of a cross-validation run (layout in :mod:`.cross_validation`): their paths, the saved
predictions and atomic writes, so a run killed mid-write never leaves a half file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calcsdk.classification_metrics import classification_report
from calcsdk.training.roi_dataset import ROI_LABELS

PARTS = ("val", "test")  # the prediction files of a fold


@dataclass(frozen=True)
class CvRunFiles:
    """Paths of one cross-validation run's files inside ``out_dir``."""

    out_dir: Path

    @property
    def settings(self) -> Path:
        return self.out_dir / "cv.json"

    @property
    def split(self) -> Path:
        return self.out_dir / "split.npz"

    def representation_dir(self, representation: str) -> Path:
        return self.out_dir / representation

    def fold_dir(self, representation: str, fold: int) -> Path:
        """Folder of 1-based ``fold``: the trainer's run folder plus predictions."""
        return self.representation_dir(representation) / f"fold{fold}"

    def predictions(self, representation: str, fold: int, part: str) -> Path:
        return self.fold_dir(representation, fold) / f"predictions_{part}.npz"

    def fold_record(self, representation: str, fold: int) -> Path:
        return self.fold_dir(representation, fold) / "fold.json"

    def selected_weights(self, representation: str) -> Path:
        return self.representation_dir(representation) / "best.pt"

    def selection(self, representation: str) -> Path:
        return self.representation_dir(representation) / "selection.json"


def predicted_classes(probs: np.ndarray) -> np.ndarray:
    """int64 ``(N,)`` argmax of float ``(N, K)`` class probabilities (ties: the lowest class)."""
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs should have shape (N, K), got {probs.shape}")
    return probs.argmax(axis=1).astype(np.int64) if len(probs) else np.zeros(0, np.int64)


def load_predictions(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indices int64 (N,), y_true int64 (N,), probs float32 (N, K))`` of a predictions file."""
    with np.load(path) as saved:
        return saved["indices"], saved["y_true"], saved["probs"]


def accuracy_of(path: str | os.PathLike) -> float:
    """Accuracy (fraction) of the argmax predictions saved in ``path``."""
    _, y_true, probs = load_predictions(path)
    return classification_report(y_true, predicted_classes(probs), ROI_LABELS).accuracy


def _atomic_write_bytes(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    _atomic_write_bytes(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    _atomic_write_bytes(path, write)
