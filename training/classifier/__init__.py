"""The paper's ROI classifier: AlexNet trained on 227x227 ROIs (malignant, benign, normal).

``config``: the paper's ``rcnn-1``/``rcnn-2`` settings; ``augment``: batch augmentation;
``train``: the (DDP-ready) training loop; ``checkpoint``: the run's files; ``inference``:
``predict``. Modules other than ``config`` are imported lazily, so that
``python -m calcsdk.training.classifier.train`` runs ``train`` once, as ``__main__``.
"""

from __future__ import annotations

from importlib import import_module

from calcsdk.training.classifier.config import CONFIGS, ClassifierTrainConfig, get_config

_LAZY = {
    "TrainResult": "calcsdk.training.classifier.train",
    "train_classifier": "calcsdk.training.classifier.train",
    "predict": "calcsdk.training.classifier.inference",
    "load_classifier": "calcsdk.training.classifier.checkpoint",
    "augment_batch": "calcsdk.training.classifier.augment",
}

__all__ = ["CONFIGS", "ClassifierTrainConfig", "get_config", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
