"""YOLOv4 training data: whole mammograms in the working frame, cut into network inputs.

Each :class:`~calcsdk.training.datasets.ImageRecord` is read, then :func:`calcsdk.prepare.prepare_mammogram`
resamples it to ``working_spacing_mm``, finds the breast and normalises it to [0, 1], exactly
as the SDK does. Its boxes go to the working frame (``working = original * scale``), and
:func:`calcsdk.tiling.plan_tiles` cuts it into the same tiles the SDK pipeline will see (tiles
without breast are dropped). A training sample is one tile, shifted at random by up to half the
overlap, then augmented (``augment.py``).

Tiles at 0.2 mm, not a letterbox: measured
-----------------------------------------
Chain: an image at 0.1 mm (2048 x 2560, 204.8 x 256 mm, the synthetic default) ->
``resample_to_spacing`` -> :func:`tile_input`. A calcification is a disc drawn by area
coverage; "peak" is its brightest pixel as a fraction of its true contrast, averaged over random
sub-pixel positions. "synth" columns use the calcifications of 160 images from
``calcsdk synth`` (123 clusters, 1,257 calcifications; malignant median size 0.41 mm, median
WIDTH 0.17 mm): discs of each calcification's size / of its width (a pessimistic stand-in for
thin linear casts). Tiles per image: breast-mask tiles of 40 synthetic images. GFLOP: full-size
network, 1 channel, 2 classes (torch flop counter: 89.9 / 126.8 / 359.5 per 512 / 608 / 1024
input).

=====================  ======  =========  =========  ==========  ===============  ========  ======
layout                 mm/px   0.3 mm     1 cm       peak 0.3    peak synth all/   tiles     GFLOP
                               calc, px   cluster    mm (worst)  malignant, size   per       per
                                                                 | width           image     image
=====================  ======  =========  =========  ==========  ===============  ========  ======
letterbox 608          0.421   0.71       24 px      0.27 (0.16) .67/.51 | .32/.11  1         127
letterbox 1024         0.250   1.20       40 px      0.58 (0.34) .81/.69 | .49/.26  1         360
**tile 512, 0.2 mm**   0.200   1.50       50 px      0.80 (0.65) .87/.82 | .57/.38  9.7 (12)  870
tile 512, 0.1 mm       0.100   3.00       100 px     1.00 (1.00) .99/.98 | .85/.78  34.9 (47) 3140
=====================  ======  =========  =========  ==========  ===============  ========  ======

A 1/f^3 parenchymal texture keeps its standard deviation through every chain (1.00-1.01), so a
calcification's contrast against the tissue falls as its peak does. Letterboxing a whole breast
into YOLO's usual 608 pixels leaves a 0.3 mm calcification a quarter of its contrast under one
pixel and a malignant synthetic calcification half (a ninth, by width): faint clusters vanish.
Tiles at 0.2 mm keep a 0.3 mm calcification at 80 % (at worst 65 %) and put a 1 cm cluster on
6 stride-8 cells, for 7x the letterbox's compute; tiles at 0.1 mm keep nearly everything but
cost 3.6x more again (35 tiles). Default: 512-pixel tiles at 0.2 mm (``working_spacing_mm=0.1``
is the sharper, costlier option). The overlap is 256 pixels (51.2 mm): synthetic cluster boxes
measure 11.7 mm (median), 27 mm (90th percentile), 46 mm (max; 13 % exceed 25.6 mm), and a box
up to the overlap is always seen whole by the tile that keeps it. ``layout="letterbox"`` stays
available. No training comparison of the layouts was run (too costly on the 2 shared CPU cores
this was written on).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calcsdk.boxes import scale_boxes
from calcsdk.image import read_mammogram
from calcsdk.prepare import prepare_mammogram
from calcsdk.tiling import Tile, boxes_to_tile, plan_tiles, tile_input
from calcsdk.training.datasets.record import ImageRecord
from calcsdk.training.yolo.augment import augment_sample, clip_to_region, mosaic
from calcsdk.training.yolo.config import YoloTrainConfig

logger = logging.getLogger(__name__)

__all__ = ["PreparedImage", "YoloTileDataset", "collate_samples", "prepare_record"]


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One training image in the working frame.

    Attributes:
        image_path: the record's image.
        shape: ``(h, w)`` working pixels.
        boxes: ``(M, 4)`` float32 xyxy working pixels; labels ``(M,)`` int64.
        tiles: the tiles of the SDK's layout that hold breast.
        image01: ``(h, w)`` float32 [0, 1] when kept in memory, else ``None``.
        cache_path: float16 ``.npy`` of the image (memory-mapped) when cached on disk.
    """

    image_path: str
    shape: tuple[int, int]
    boxes: np.ndarray
    labels: np.ndarray
    tiles: tuple[Tile, ...]
    image01: np.ndarray | None = None
    cache_path: str | None = None

    def load(self) -> np.ndarray:
        """The working image, ``(h, w)`` float32 or float16 (memory-mapped) in [0, 1]."""
        if self.image01 is not None:
            return self.image01
        return np.load(self.cache_path, mmap_mode="r")


def _cache_name(record: ImageRecord, config: YoloTrainConfig) -> str:
    key = f"{os.path.abspath(record.image_path)}|{record.spacing_mm}|{config.working_spacing_mm}"
    key += f"|{config.fallback_spacing_mm}|{os.path.getmtime(record.image_path)}"
    return hashlib.sha1(key.encode()).hexdigest()[:20] + ".npy"


def prepare_record(
    record: ImageRecord, config: YoloTrainConfig, cache_dir: str | os.PathLike | None = None
) -> PreparedImage:
    """Read, resample, mask and normalise one record; plan its tiles (see module docstring).

    With ``cache_dir`` the working image is written there as float16 ``.npy`` (reused when
    present) and memory-mapped when used; without, it is kept in memory as float32.
    """
    mammogram = read_mammogram(record.image_path, spacing_mm=record.spacing_mm)
    working = prepare_mammogram(mammogram, config.working_spacing_mm, config.fallback_spacing_mm)
    sy, sx = working.scale
    boxes = scale_boxes(record.boxes, sx, sy) if len(record.boxes) else np.zeros((0, 4), np.float32)
    tiles = plan_tiles(
        working.image01.shape,
        config.network_size,
        layout=config.layout,
        overlap=config.tile_overlap,
        mask=working.mask,
        min_mask_fraction=config.min_breast_fraction,
    )
    image01, cache_path = working.image01, None
    if cache_dir is not None:
        path = Path(cache_dir) / _cache_name(record, config)
        if not path.exists():
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, working.image01.astype(np.float16))
            os.replace(tmp, path)
        image01, cache_path = None, str(path)
    return PreparedImage(
        record.image_path,
        working.image01.shape,
        boxes,
        record.labels.copy(),
        tuple(tiles),
        image01,
        cache_path,
    )


def _prepare_args(args: tuple) -> PreparedImage:
    return prepare_record(*args)


class YoloTileDataset(torch.utils.data.Dataset):
    """Tiles of prepared images as network inputs with their boxes.

    ``dataset[i]`` -> ``(image (1, S, S) float32 tensor, boxes (M, 4) float32 tensor in network
    pixels, labels (M,) int64 tensor)``. With ``train=True`` tiles are jittered and augmented;
    the randomness of item ``i`` is drawn from ``(seed, epoch, i)`` alone (:meth:`set_epoch`),
    so worker processes never change a sample.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        config: YoloTrainConfig,
        *,
        train: bool,
        cache_dir: str | os.PathLike | None = None,
        images: Sequence[PreparedImage] | None = None,
    ):
        self.config = config
        self.train = train
        self.epoch = 0
        if images is None:
            if cache_dir is not None:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
            jobs = [(record, config, cache_dir) for record in records]
            if config.num_workers > 0 and len(jobs) > 1:
                with ProcessPoolExecutor(config.num_workers) as pool:
                    images = list(pool.map(_prepare_args, jobs, chunksize=4))
            else:
                images = [_prepare_args(job) for job in jobs]
        self.images = list(images)
        self.items = [
            (i, t) for i, image in enumerate(self.images) for t in range(len(image.tiles))
        ]
        self.positive = np.array([self._has_target(i, t) for i, t in self.items], dtype=bool)

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _has_target(self, image_index: int, tile_index: int) -> bool:
        image = self.images[image_index]
        tile = image.tiles[tile_index]
        in_tile = boxes_to_tile(image.boxes, tile)
        height, width = tile.input_size
        kept, _ = clip_to_region(
            in_tile, image.labels, (0, 0, width, height), self.config.min_visible_fraction
        )
        return len(kept) > 0

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """Item indices of ``epoch`` in training order (shuffled; with ``negative_tile_ratio``,
        every cluster tile plus that many background tiles per cluster tile)."""
        rng = np.random.default_rng([self.config.seed, epoch, 0x5EED])
        indices = np.arange(len(self.items))
        ratio = self.config.negative_tile_ratio
        if ratio is not None:
            positives, negatives = indices[self.positive], indices[~self.positive]
            count = min(len(negatives), round(ratio * len(positives)))
            indices = np.concatenate([positives, rng.choice(negatives, count, replace=False)])
        return rng.permutation(indices)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, self.epoch, int(index), 0xA06])

    def _tile_sample(
        self, index: int, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The network input of item ``index`` (jittered when ``rng`` is given) and its boxes."""
        image_index, tile_index = self.items[index]
        image = self.images[image_index]
        tile = image.tiles[tile_index]
        if rng is not None and self.config.tile_jitter and self.config.layout == "tile":
            half = self.config.tile_overlap // 2
            height, width = image.shape
            x0 = int(np.clip(tile.x0 + rng.integers(-half, half + 1), 0, width - tile.width))
            y0 = int(np.clip(tile.y0 + rng.integers(-half, half + 1), 0, height - tile.height))
            tile = Tile(x0, y0, tile.width, tile.height)
        size = self.config.network_size
        pixels = tile_input(image.load(), tile, size)
        in_tile = boxes_to_tile(image.boxes, tile)
        height, width = tile.input_size
        boxes, labels = clip_to_region(
            in_tile, image.labels, (0, 0, width, height), self.config.min_visible_fraction
        )
        return pixels, boxes, labels

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``index`` as numpy ``(image (S, S), boxes (M, 4), labels (M,))``."""
        if not self.train:
            return self._tile_sample(index, None)
        rng = self._rng(index)
        config = self.config
        if config.mosaic and rng.random() < config.mosaic_probability:
            others = rng.integers(len(self.items), size=3)
            parts = [self._tile_sample(i, rng) for i in (index, *others)]
            current = mosaic(parts, rng, config.min_visible_fraction)
        else:
            current = self._tile_sample(index, rng)
        return augment_sample(current, rng, config) if config.augment else current

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, boxes, labels = self.sample(index)
        return (
            torch.from_numpy(np.ascontiguousarray(image, np.float32))[None],
            torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)),
            torch.from_numpy(np.asarray(labels, np.int64).reshape(-1)),
        )

    def box_sizes_network(self) -> np.ndarray:
        """``(M, 2)`` float64 (w, h) of every training box in network pixels (tile scale)."""
        sizes = [np.zeros((0, 2))]
        for image in self.images:
            if not image.tiles:
                continue
            tile = image.tiles[0]
            wh = (image.boxes[:, 2:] - image.boxes[:, :2]).astype(np.float64)
            sizes.append(wh * np.array([tile.scale_x, tile.scale_y]))
        return np.concatenate(sizes)

    def network_scale(self) -> float:
        """Median network pixels per working pixel over the images (1 for tiles)."""
        scales = [image.tiles[0].scale_x for image in self.images if image.tiles]
        return float(np.median(scales)) if scales else 1.0


def collate_samples(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images (B, 1, S, S), targets (T, 6))`` with target rows ``(image index, label, x1,
    y1, x2, y2)`` network pixels (the format of ``targets.py``)."""
    images = torch.stack([item[0] for item in batch])
    rows = [torch.zeros((0, 6))]
    for index, (_, boxes, labels) in enumerate(batch):
        column = torch.full((len(boxes), 1), float(index))
        rows.append(torch.cat([column, labels[:, None].float(), boxes], dim=1))
    return images, torch.cat(rows)
