"""Training configurations of the ROI classifier (AlexNet on 227x227 ROIs), named as in the paper.

The paper (Table 4) trains two configurations, both with batch 128:

* ``rcnn-1``: learning rate 0.001, 50 epochs;
* ``rcnn-2``: learning rate 0.0001, 100 epochs (the paper's best model).

Everything else below is our choice where the paper is silent, explained beside each default.
``get_config(name, **overrides)`` returns a frozen copy with some fields replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from calcsdk.training.classifier.lr_schedule import LR_SCHEDULES

SELECTION_METRICS = ("accuracy", "balanced_accuracy")


@dataclass(frozen=True)
class ClassifierTrainConfig:
    name: str = "rcnn-1"  # label written into checkpoints and logs
    learning_rate: float = 1e-3  # paper, RCNN-1 (SGD with momentum, MATLAB's 'sgdm')
    batch_size: int = 128  # paper; the GLOBAL batch, split evenly over DDP ranks
    epochs: int = 50  # paper, RCNN-1; an upper bound when early stopping is on
    momentum: float = 0.9  # MATLAB sgdm's default, as in Krizhevsky
    weight_decay: float = 5e-4  # Krizhevsky's L2 weight decay
    last_layer_lr_multiplier: float = (
        10.0  # new fc8 learns faster ("increased for quicker adaptation")
    )
    patience: int = 10  # early stop after this many epochs without a better val accuracy; 0 = never
    seed: int = 0  # one seed derives every random stream (init, shuffling, augmentation, dropout)
    augment: bool = True  # batch augmentation below, training batches only
    flip_probability: float = 0.5  # per image, independently for left-right and up-down flips
    max_rotation_degrees: float = 15.0  # uniform in +-this; small, so calcification shape survives
    gamma_range: tuple[float, float] = (0.8, 1.25)  # intensity gamma, log-uniform in this range
    contrast_range: tuple[float, float] = (0.85, 1.15)  # contrast scale about the image mean
    eval_batch_size: int = 256  # ROIs per forward pass in validation and predict()
    init_weights: str | None = (
        None  # .pt state dict to fine-tune from; mismatched shapes (fc8) stay new
    )
    deterministic: bool = True  # torch.use_deterministic_algorithms during training
    progress: bool = True  # tqdm bar on rank 0
    foreground_fraction: float | None = None  # R-CNN fine-tuning: share of each epoch drawn
    # from the non-background classes (R-CNN: 32 of 128 = 0.25; sampling.py). None = uniform
    # shuffling, as the ROI classifier (its classes are balanced) and the paper use
    background_class: int = 2  # the label that foreground_fraction counts as background
    lr_schedule: str = "constant"  # "constant" (the paper's MATLAB sgdm) or "cosine": decay to
    # zero over `epochs`, step by step (lr_schedule.py); for the short schedules 2 CPU cores force
    warmup_epochs: float = 0.0  # linear warmup from ~0 to the base rate over this many epochs
    selection_metric: str = "accuracy"  # "accuracy" (the paper's) or "balanced_accuracy" (mean
    # per-class recall) on validation: picks best.pt and drives early stopping

    def __post_init__(self) -> None:
        positive = ("learning_rate", "batch_size", "epochs", "eval_batch_size")
        for field in positive:
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} should be > 0, got {getattr(self, field)}")
        non_negative = (
            "momentum",
            "weight_decay",
            "last_layer_lr_multiplier",
            "patience",
            "warmup_epochs",
        )
        for field in non_negative:
            if getattr(self, field) < 0:
                raise ValueError(f"{field} should be >= 0, got {getattr(self, field)}")
        if not 0.0 <= self.flip_probability <= 1.0:
            raise ValueError(f"flip_probability should be in [0, 1], got {self.flip_probability}")
        if not 0.0 <= self.max_rotation_degrees <= 180.0:
            raise ValueError(
                f"max_rotation_degrees should be in [0, 180], got {self.max_rotation_degrees}"
            )
        if self.foreground_fraction is not None and not 0.0 < self.foreground_fraction < 1.0:
            raise ValueError(
                f"foreground_fraction should be in (0, 1) or None, got {self.foreground_fraction}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule should be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if self.selection_metric not in SELECTION_METRICS:
            raise ValueError(
                f"selection_metric should be one of {SELECTION_METRICS}, got "
                f"{self.selection_metric!r}"
            )
        for field in ("gamma_range", "contrast_range"):
            low, high = getattr(self, field)
            if not 0.0 < low <= high:
                raise ValueError(
                    f"{field} should be (low, high) with 0 < low <= high, got {(low, high)}"
                )


CONFIGS: dict[str, ClassifierTrainConfig] = {
    "rcnn-1": ClassifierTrainConfig(name="rcnn-1", learning_rate=1e-3, batch_size=128, epochs=50),
    "rcnn-2": ClassifierTrainConfig(name="rcnn-2", learning_rate=1e-4, batch_size=128, epochs=100),
}


def get_config(name: str, **overrides: object) -> ClassifierTrainConfig:
    """The named paper configuration with ``overrides`` applied.

    Raises:
        ValueError: unknown ``name``.
        TypeError: an override that is not a field of :class:`ClassifierTrainConfig`.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown classifier config {name!r}; expected one of {sorted(CONFIGS)}")
    fields = {f.name for f in dataclasses.fields(ClassifierTrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown ClassifierTrainConfig fields {unknown}")
    return dataclasses.replace(CONFIGS[name], **overrides)
