"""The one geometry between a working-frame image and YOLOv4's square input, and back.

A :class:`Tile` is a window of the working image (``x0, y0, width, height`` in working pixels)
resampled by ``(scale_x, scale_y)`` into the TOP-LEFT ``round(width * scale_x) x
round(height * scale_y)`` pixels of a ``network_size x network_size`` input; the rest of the
input is padding (``pad_value``, 0 = the dark background of a normalised mammogram). A point
maps as ``u = (x - x0) * scale_x``, ``v = (y - y0) * scale_y`` (network pixels), so boxes go
back with :func:`boxes_from_tile`. Training (:mod:`calcsdk.training.yolo.data`), the SDK
pipeline and the export checks all use these functions.

Two layouts (:func:`plan_tiles`):

``"tile"``  scale 1 (a network pixel IS a working pixel, so sizes in mm are kept). Windows of
            ``network_size`` start every ``network_size - overlap`` pixels, the last one flush
            with the image's end; an image narrower than the network makes one padded window.
            Each tile owns a *core*: the tiles' cores partition the image (their borders run
            through the middle of each overlap), and a detection is kept only by the tile whose
            core holds its centre, so a box up to ``overlap`` pixels wide is always seen whole
            by the tile that keeps it.
``"letterbox"`` one window, the whole image, scaled by ``min(S / height, S / width)`` (the
            effective per-axis factors absorb the rounding to whole pixels).

Boxes follow :mod:`calcsdk.boxes` (xyxy float32, x2/y2 exclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import cv2
import numpy as np

from calcsdk.boxes import as_box_array

__all__ = [
    "LAYOUTS",
    "Tile",
    "boxes_from_tile",
    "boxes_to_tile",
    "in_core",
    "plan_tiles",
    "tile_input",
    "tile_positions",
]

LAYOUTS = ("tile", "letterbox")


@dataclass(frozen=True)
class Tile:
    """A window of the working image and its mapping into the network input.

    Attributes:
        x0, y0: top-left of the window, working pixels.
        width, height: window size, working pixels (its image fits in the network input).
        scale_x, scale_y: network pixels per working pixel (1 for the ``"tile"`` layout).
        core: ``(x1, y1, x2, y2)`` working pixels; detections whose centre lies in
            ``[x1, x2) x [y1, y2)`` belong to this tile. Defaults to the window.
    """

    x0: int
    y0: int
    width: int
    height: int
    scale_x: float = 1.0
    scale_y: float = 1.0
    core: tuple[float, float, float, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or self.x0 < 0 or self.y0 < 0:
            raise ValueError(
                f"a tile needs x0, y0 >= 0 and a size >= 1 pixel, got x0={self.x0}, "
                f"y0={self.y0}, {self.width}x{self.height}"
            )
        if not (self.scale_x > 0 and self.scale_y > 0):
            raise ValueError(f"tile scales should be > 0, got {self.scale_x}, {self.scale_y}")
        if self.core is None:
            object.__setattr__(self, "core", tuple(float(v) for v in self.window))

    @property
    def window(self) -> tuple[int, int, int, int]:
        """``(x1, y1, x2, y2)`` of the window, working pixels."""
        return (self.x0, self.y0, self.x0 + self.width, self.y0 + self.height)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the resampled window inside the network input, pixels."""
        return (round(self.height * self.scale_y), round(self.width * self.scale_x))


def tile_positions(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``size`` pixels covering ``[0, length)``.

    Every ``size - overlap`` pixels, the last flush with ``length``; ``[0]`` when
    ``length <= size``. ``0 <= overlap < size`` is required.
    """
    if not 0 <= overlap < size:
        raise ValueError(f"overlap should be in [0, {size}), got {overlap}")
    if length <= size:
        return [0]
    last = length - size
    starts = list(range(0, last, size - overlap))
    return [*starts, last] if starts[-1] != last else starts


def _cores(starts: list[int], size: int, length: int) -> list[tuple[float, float]]:
    """Core interval of each window: borders in the middle of each overlap; ends 0, length."""
    bounds = [(b + a + size) / 2.0 for a, b in pairwise(starts)]
    edges = [0.0, *bounds, float(length)]
    return list(pairwise(edges))


def plan_tiles(
    image_shape: tuple[int, int],
    network_size: int,
    *,
    layout: str = "tile",
    overlap: int = 0,
    mask: np.ndarray | None = None,
    min_mask_fraction: float = 0.0,
) -> list[Tile]:
    """Tiles of a working image of ``image_shape = (height, width)`` pixels.

    Args:
        network_size: side ``S`` of the square network input, pixels (a multiple of 32).
        layout: ``"tile"`` or ``"letterbox"`` (module docstring).
        overlap: pixels shared by neighbouring tiles (``"tile"`` only), ``0 <= overlap < S``.
        mask: ``(height, width)`` bool breast mask; with it, tiles whose window holds a
            fraction of mask pixels ``<= min_mask_fraction`` are skipped (with 0: tiles
            without any breast pixel). ``None`` keeps every tile.
    Returns:
        Tiles in row-major order (may be empty when the mask leaves none).
    """
    height, width = (int(v) for v in image_shape)
    if height < 1 or width < 1:
        raise ValueError(f"image_shape should be (height, width) >= 1, got {image_shape}")
    if network_size < 32 or network_size % 32:
        raise ValueError(f"network_size should be a multiple of 32 pixels, got {network_size}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout should be one of {LAYOUTS}, got {layout!r}")
    if not 0.0 <= min_mask_fraction < 1.0:
        raise ValueError(f"min_mask_fraction should be in [0, 1), got {min_mask_fraction}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (height, width):
            raise ValueError(
                f"mask should be bool of shape {(height, width)}, got {mask.dtype} {mask.shape}"
            )
    if layout == "letterbox":
        factor = min(network_size / height, network_size / width)
        out_h = min(network_size, max(1, round(height * factor)))
        out_w = min(network_size, max(1, round(width * factor)))
        tiles = [Tile(0, 0, width, height, out_w / width, out_h / height)]
    else:
        xs, ys = (tile_positions(n, network_size, overlap) for n in (width, height))
        x_cores, y_cores = _cores(xs, network_size, width), _cores(ys, network_size, height)
        tiles = [
            Tile(
                x0,
                y0,
                min(network_size, width - x0),
                min(network_size, height - y0),
                core=(cx1, cy1, cx2, cy2),
            )
            for y0, (cy1, cy2) in zip(ys, y_cores)
            for x0, (cx1, cx2) in zip(xs, x_cores)
        ]
    if mask is None:
        return tiles
    kept = []
    for tile in tiles:
        x1, y1, x2, y2 = tile.window
        if float(mask[y1:y2, x1:x2].mean()) > min_mask_fraction:
            kept.append(tile)
    return kept


def tile_input(
    image01: np.ndarray,
    tile: Tile,
    network_size: int,
    *,
    pad_value: float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The ``(S, S)`` float32 network input of ``tile`` (window resampled, top-left, padded).

    Downscaling uses ``cv2.INTER_AREA`` (as :func:`calcsdk.preprocess.resample_to_spacing`),
    upscaling ``INTER_LINEAR``. ``out``, if given, is a writable ``(S, S)`` float32 array that
    receives the result (e.g. a slice of a reused batch buffer).
    """
    image01 = np.asarray(image01)
    if image01.ndim != 2:
        raise ValueError(f"image01 should be (h, w), got shape {image01.shape}")
    x1, y1, x2, y2 = tile.window
    if x2 > image01.shape[1] or y2 > image01.shape[0]:
        raise ValueError(f"tile window {tile.window} exceeds the image {image01.shape}")
    out_h, out_w = tile.input_size
    if out_h > network_size or out_w > network_size:
        raise ValueError(f"tile input {out_h}x{out_w} exceeds the network size {network_size}")
    if out is None:
        out = np.empty((network_size, network_size), np.float32)
    elif out.shape != (network_size, network_size) or out.dtype != np.float32:
        raise ValueError(f"out should be ({network_size}, {network_size}) float32")
    window = np.asarray(image01[y1:y2, x1:x2], np.float32)
    if (out_h, out_w) != window.shape:
        shrink = out_h <= window.shape[0] and out_w <= window.shape[1]
        flag = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        window = cv2.resize(window, (out_w, out_h), interpolation=flag)
    out[:out_h, :out_w] = window
    out[out_h:, :] = pad_value
    out[:out_h, out_w:] = pad_value
    return out


def boxes_from_tile(boxes: np.ndarray, tile: Tile) -> np.ndarray:
    """Network-input boxes ``(N, 4)`` xyxy of ``tile`` -> working-frame boxes, float32."""
    boxes = as_box_array(boxes)
    factors = np.array([tile.scale_x, tile.scale_y] * 2)
    offsets = np.array([tile.x0, tile.y0] * 2, dtype=np.float64)
    return (boxes / factors + offsets).astype(np.float32)


def boxes_to_tile(boxes: np.ndarray, tile: Tile) -> np.ndarray:
    """Working-frame boxes ``(N, 4)`` xyxy -> network-input pixels of ``tile`` (not clipped)."""
    boxes = as_box_array(boxes)
    factors = np.array([tile.scale_x, tile.scale_y] * 2)
    offsets = np.array([tile.x0, tile.y0] * 2, dtype=np.float64)
    return ((boxes - offsets) * factors).astype(np.float32)


def in_core(boxes: np.ndarray, tile: Tile) -> np.ndarray:
    """``(N,)`` bool: the centre of each working-frame box lies in ``tile``'s core."""
    boxes = as_box_array(boxes)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0
    x1, y1, x2, y2 = tile.core
    return (cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)
