"""Synthetic phantom mammograms for benchmarks and tests (numpy + OpenCV, deterministic).

Not a realistic mammogram (``calcsdk synth`` makes those): a half-ellipse breast against the left
edge, Gaussian noise and one cluster of six bright dots. Enough to exercise every stage of a
pipeline at a chosen image size with reproducible timing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["draw_phantom", "write_phantoms"]

BITS = 12
BREAST_LEVEL, NOISE_SIGMA, DOT_LEVEL = 1500, 30, 4000


def draw_phantom(
    seed: int = 0, shape: tuple[int, int] = (600, 480)
) -> tuple[np.ndarray, np.ndarray]:
    """One phantom.

    Args:
        seed: random seed (noise and dot positions).
        shape: ``(height, width)`` in pixels, each >= 32.
    Returns:
        ``(pixels, cluster_box)``: ``(H, W)`` uint16 12-bit image (bright = dense) and the
        cluster's ``(4,)`` float32 xyxy box in pixels.
    """
    height, width = (int(v) for v in shape)
    if height < 32 or width < 32:
        raise ValueError(f"shape should be at least 32 x 32 pixels, got {shape}")
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width), np.float32)
    axes = (int(width * 0.85), int(height * 0.45))
    cv2.ellipse(image, (0, height // 2), axes, 0, -90, 90, BREAST_LEVEL, -1)
    image += rng.normal(0, NOISE_SIGMA, image.shape).astype(np.float32)
    cx, cy = int(width * 0.35), int(height * 0.5)
    spread = max(3, min(15, width // 20))
    for _ in range(6):
        dx, dy = rng.integers(-spread, spread + 1, 2)
        cv2.circle(image, (cx + int(dx), cy + int(dy)), 2, DOT_LEVEL, -1)
    pixels = np.clip(image, 0, (1 << BITS) - 1).astype(np.uint16)
    margin = spread + 3
    return pixels, np.array(
        [cx - margin, cy - margin, cx + margin + 1, cy + margin + 1], np.float32
    )


def write_phantoms(
    folder: str | os.PathLike,
    count: int,
    shape: tuple[int, int] = (2560, 2048),
    spacing_mm: float | None = 0.1,
    seeds: Sequence[int] | None = None,
) -> list[Path]:
    """Write ``count`` phantoms as 16-bit PNGs (``phantom_000.png``...) with their pixel spacing
    (mm, in the pHYs chunk; ``None`` writes none). Returns the paths in order."""
    from calcsdk.image import write_png

    if count < 0:
        raise ValueError(f"count should be >= 0, got {count}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = list(range(count)) if seeds is None else list(seeds)
    paths = []
    for index in range(count):
        pixels, _ = draw_phantom(seeds[index], shape)
        path = folder / f"phantom_{index:03d}.png"
        write_png(path, pixels, spacing_mm, bits_stored=BITS)
        paths.append(path)
    return paths
