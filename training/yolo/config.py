"""Training configurations of the YOLOv4 baseline, named as in the paper.

The paper (Table 4) trains two configurations, both with batch 128:

* ``yolov4-1``: learning rate 0.001, 50 epochs;
* ``yolov4-2``: learning rate 0.0001, 100 epochs.

Everything else is darknet's ``cfg/yolov4.cfg`` where it applies, or our choice where the paper
is silent, explained beside each default. ``get_config(name, **overrides)`` returns a frozen
copy with some fields replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from calcsdk.pipelines.yolo import YoloSettings
from calcsdk.tiling import LAYOUTS
from calcsdk.yolo_decode import DEFAULT_SCALE_X_Y

AUTOCAST_MODES = ("off", "bf16")  # bf16 needs no loss scaling, unlike fp16


@dataclass(frozen=True)
class YoloTrainConfig:
    name: str = "yolov4-1"  # label written into checkpoints and logs
    # --- optimisation (paper Table 4; darknet cfg/yolov4.cfg) ------------------------------
    learning_rate: float = 1e-3  # paper, YOLOv4-1 (darknet's lr is per image: loss / batch)
    batch_size: int = 128  # paper: samples per optimizer step (darknet "batch")
    micro_batch_size: int = 8  # samples per forward/backward; gradients accumulate over
    #                            batch_size / micro_batch_size of them (darknet "subdivisions")
    epochs: int = 50  # paper, YOLOv4-1; an epoch is one pass over the training tiles
    momentum: float = 0.949  # darknet cfg/yolov4.cfg
    weight_decay: float = 5e-4  # darknet cfg/yolov4.cfg "decay"; conv weights only
    warmup_epochs: float = 1.0  # darknet burn_in: lr * (step / warmup_steps) ** 4 at the start;
    #                             in epochs because darknet's 1000 steps exceed a short run
    warmup_power: float = 4.0  # darknet cfg/yolov4.cfg "power"
    lr_steps: tuple[float, ...] = (0.8, 0.9)  # darknet policy=steps at 80% and 90% of training
    lr_step_factor: float = 0.1  # darknet "scales=.1,.1"
    ema_decay: float = 0.9999  # EMA of the weights (ramped, see ema.py); evaluated and exported
    precise_bn_tiles: int = 256  # training tiles that re-estimate the EMA's BatchNorm statistics
    # before each validation and at the end (precise_bn.py); 0 keeps the averaged statistics
    grad_clip_norm: float = 0.0  # max gradient L2 norm per step; 0 = off, as darknet (the
    #                              summed loss has norms in the thousands at the start)
    # --- data: working frame and network input (see data.py for the measured choice) ------
    working_spacing_mm: float = 0.2  # mm per pixel of the working frame
    fallback_spacing_mm: float | None = None  # for images whose spacing is unknown
    layout: str = "tile"  # "tile" (scale 1, keeps mm) or "letterbox" (whole image)
    network_size: int = 512  # network input side, pixels (a multiple of 32)
    tile_overlap: int = 256  # pixels: 51.2 mm at 0.2 mm, more than a cluster's extent
    min_breast_fraction: float = 0.0  # tiles with no more breast than this are skipped
    tile_jitter: bool = True  # shift each training tile by up to +-overlap/2 pixels
    negative_tile_ratio: float | None = None  # background tiles per cluster tile drawn each
    #                                           epoch; None keeps every tile (a true epoch)
    min_visible_fraction: float = 0.6  # a cluster cut by a tile edge stays a target if this
    #                                    fraction of its box area is inside
    # --- augmentation (augment.py) ----------------------------------------------------------
    augment: bool = True  # flips and intensity jitter on training samples
    mosaic: bool = False  # darknet mosaic=1: 4 samples in the quadrants around a random centre
    mosaic_probability: float = 0.5  # share of training samples made by mosaic when on
    flip_probability: float = 0.5  # per sample, independently left-right and up-down
    gamma_range: tuple[float, float] = (0.8, 1.25)  # intensity gamma, log-uniform
    contrast_range: tuple[float, float] = (0.85, 1.15)  # contrast scale about the mean
    brightness_shift: float = 0.05  # uniform in +-this, added to [0, 1] intensities
    noise_std: float = 0.01  # maximum std of added Gaussian noise ([0, 1] intensities)
    # --- model and loss (darknet cfg/yolov4.cfg [yolo] sections) ----------------------------
    width: float = 1.0  # YOLOv4 channel multiplier (1 = the paper's CSPDarknet53)
    depth: float = 1.0  # residual-block multiplier
    anchor_count: int = 9  # k-means anchors, 3 per head
    scale_x_y: tuple[float, float, float] = DEFAULT_SCALE_X_Y  # grid sensitivity
    iou_t: float = 0.213  # darknet iou_thresh: extra anchors with wh-IoU above this
    ignore_thresh: float = 0.7  # no objectness penalty where a prediction overlaps a GT more
    iou_normalizer: float = 0.07  # CIoU box loss weight
    obj_normalizer: float = 1.0  # objectness BCE weight
    cls_normalizer: float = 1.0  # class BCE weight
    objectness_prior: float = 0.01  # initial objectness probability (bias init), for stability
    # --- run -------------------------------------------------------------------------------
    seed: int = 0  # one seed derives every random stream (init, order, augmentation)
    num_workers: int = 0  # DataLoader worker processes (0: load in the training process)
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs, timing)
    max_minutes: float | None = None  # stop after this much training wall time (a GPU lease)
    checkpoint_every_steps: int = 0  # also checkpoint inside an epoch every N steps (0: off)
    eval_every_epochs: int = 5  # validation mAP (EMA weights) every N epochs and at the end
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower)
    autocast: str = "off"  # "bf16": the forward pass in bfloat16 autocast (loss in float32)
    progress: bool = True  # tqdm bar

    def __post_init__(self) -> None:
        for name in ("learning_rate", "batch_size", "micro_batch_size", "epochs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} should be > 0, got {getattr(self, name)}")
        if self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size {self.batch_size} should be a multiple of micro_batch_size "
                f"{self.micro_batch_size}"
            )
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout should be one of {LAYOUTS}, got {self.layout!r}")
        if self.network_size < 32 or self.network_size % 32:
            raise ValueError(f"network_size should be a multiple of 32, got {self.network_size}")
        if not 0 <= self.tile_overlap < self.network_size:
            raise ValueError(
                f"tile_overlap should be in [0, network_size), got {self.tile_overlap}"
            )
        for name in ("mosaic_probability", "flip_probability", "min_visible_fraction", "iou_t"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} should be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.objectness_prior < 1.0:
            raise ValueError(f"objectness_prior should be in (0, 1), got {self.objectness_prior}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay should be in [0, 1), got {self.ema_decay}")
        if self.anchor_count != 9:
            raise ValueError("anchor_count should be 9 (3 anchors for each of the 3 heads)")
        for name in ("gamma_range", "contrast_range"):
            low, high = getattr(self, name)
            if not 0.0 < low <= high:
                raise ValueError(
                    f"{name} should be (low, high), 0 < low <= high, got {(low, high)}"
                )
        if self.negative_tile_ratio is not None and self.negative_tile_ratio < 0:
            raise ValueError("negative_tile_ratio should be None or >= 0")
        if self.autocast not in AUTOCAST_MODES:
            raise ValueError(f"autocast should be one of {AUTOCAST_MODES}, got {self.autocast!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes should be None or > 0, got {self.max_minutes}")
        if self.precise_bn_tiles < 0:
            raise ValueError(f"precise_bn_tiles should be >= 0, got {self.precise_bn_tiles}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps should be None or >= 1, got {self.max_steps}")

    @property
    def accumulation_steps(self) -> int:
        """Micro-batches per optimizer step."""
        return self.batch_size // self.micro_batch_size

    def learning_rate_at(self, step: int, steps_per_epoch: int) -> float:
        """Darknet's schedule at optimizer step ``step`` (0-based): burn-in
        ``lr * ((step + 1) / warmup_steps) ** warmup_power``, then ``lr`` times
        ``lr_step_factor`` for each fraction of ``lr_steps`` of all steps passed."""
        total = self.epochs * steps_per_epoch
        warmup = max(1, round(self.warmup_epochs * steps_per_epoch))
        if step < warmup:
            return self.learning_rate * ((step + 1) / warmup) ** self.warmup_power
        passed = sum(step >= fraction * total for fraction in self.lr_steps)
        return self.learning_rate * self.lr_step_factor**passed

    def pipeline_settings(self, anchors: np.ndarray) -> YoloSettings:
        """The SDK settings matching how this config trains (``anchors`` ``(9, 2)`` network
        pixels): what evaluation runs and what the bundle's manifest records."""
        return YoloSettings(
            anchors=tuple(tuple(float(v) for v in a) for a in np.asarray(anchors)),
            working_spacing_mm=self.working_spacing_mm,
            fallback_spacing_mm=self.fallback_spacing_mm,
            layout=self.layout,
            network_size=self.network_size,
            tile_overlap=self.tile_overlap,
            min_breast_fraction=self.min_breast_fraction,
            scale_x_y=self.scale_x_y,
        )


CONFIGS: dict[str, YoloTrainConfig] = {
    "yolov4-1": YoloTrainConfig(name="yolov4-1", learning_rate=1e-3, batch_size=128, epochs=50),
    "yolov4-2": YoloTrainConfig(name="yolov4-2", learning_rate=1e-4, batch_size=128, epochs=100),
}


def get_config(name: str, **overrides: object) -> YoloTrainConfig:
    """The named paper configuration with ``overrides`` applied.

    Raises:
        ValueError: unknown ``name``.
        TypeError: an override that is not a field of :class:`YoloTrainConfig`.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown YOLOv4 config {name!r}; expected one of {sorted(CONFIGS)}")
    fields = {f.name for f in dataclasses.fields(YoloTrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown YoloTrainConfig fields {unknown}")
    return dataclasses.replace(CONFIGS[name], **overrides)
