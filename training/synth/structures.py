"""Curvilinear breast structures: vessels, ducts, Cooper's ligaments and fibrous septa.

Each returns an extra line integral (dimensionless, ``(h, w)`` float32) on the texture grid,
in the canonical frame (chest wall at x = 0, nipple towards +x):

- vessels: tortuous tubes 0.8-3 mm wide entering from the chest wall or axilla and running
  towards the nipple, tapering and branching; contrast of blood against fat.
- ducts: 0.4-2 mm tubes fanning out from the nipple into the breast, branching, faint.
- pectoral muscle inhomogeneity: a faint texture over the muscle.
- ligaments and septa: thin (0.2-0.5 mm) curvilinear sheets seen edge-on, drawn as the zero
  crossings of a smooth random field (a network of lines around fat lobules), in fat only and
  strongest under the skin (Cooper's ligaments running to the skin).
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np

from calcsdk.training.synth.acquisition import MU_BLOOD, MU_FAT, MU_GLAND, MU_MUSCLE
from calcsdk.training.synth.texture import TissueGrid, smooth_field, smoothstep

_STEP_MM = 1.0  # random-walk step


def random_walk(
    rng: np.random.Generator,
    start_mm: tuple[float, float],
    heading_rad: float,
    length_mm: float,
    *,
    tortuosity: float = 0.08,
    target_mm: tuple[float, float] | None = None,
    pull: float = 0.0,
    step_mm: float = _STEP_MM,
) -> np.ndarray:
    """A smooth tortuous path: ``(N, 2)`` float64 points ``(x, y)`` in mm.

    The curvature is an AR(1) process (``tortuosity`` rad per step of noise), and the heading
    is pulled by ``pull`` (0..1 per step) towards ``target_mm`` when given.
    """
    n = max(2, int(length_mm / step_mm) + 1)
    points = np.empty((n, 2))
    points[0] = start_mm
    heading, curvature = heading_rad, 0.0
    shocks = rng.normal(0.0, tortuosity, n)
    for i in range(1, n):
        curvature = 0.85 * curvature + shocks[i]
        heading += curvature
        if target_mm is not None and pull > 0:
            want = math.atan2(target_mm[1] - points[i - 1, 1], target_mm[0] - points[i - 1, 0])
            heading += pull * math.remainder(want - heading, 2 * math.pi)
        points[i] = points[i - 1] + step_mm * np.array([math.cos(heading), math.sin(heading)])
    return points


def draw_tube(
    canvas: np.ndarray,
    points_mm: np.ndarray,
    diameters_mm: np.ndarray,
    spacing_mm: float,
    contrast_per_mm: float,
) -> None:
    """Add a tube's line integral ``contrast_per_mm * chord`` to ``canvas`` in place.

    Args:
        canvas: ``(h, w)`` float32 line-integral map on a grid of ``spacing_mm``.
        points_mm: ``(N, 2)`` path ``(x, y)`` in mm.
        diameters_mm: ``(N,)`` tube diameter along the path, mm.
        contrast_per_mm: attenuation difference between the tube and its surroundings, 1/mm.
    """
    if len(points_mm) < 2:
        return
    rows, cols = canvas.shape
    margin = float(diameters_mm.max()) * 2 + 2 * spacing_mm
    x0 = max(0, int((points_mm[:, 0].min() - margin) / spacing_mm))
    y0 = max(0, int((points_mm[:, 1].min() - margin) / spacing_mm))
    x1 = min(cols, int((points_mm[:, 0].max() + margin) / spacing_mm) + 2)
    y1 = min(rows, int((points_mm[:, 1].max() + margin) / spacing_mm) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    local = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    shift = 4
    pixels = np.round((points_mm / spacing_mm - 0.5 - [x0, y0]) * (1 << shift)).astype(np.int32)
    chunks = max(1, len(points_mm) // 8)
    bounds = np.linspace(0, len(points_mm) - 1, chunks + 1).astype(int)
    for a, b in itertools.pairwise(bounds):
        width = max(1, round(float(diameters_mm[a : b + 1].mean()) / spacing_mm))
        cv2.polylines(local, [pixels[a : b + 1]], False, 255, width, cv2.LINE_AA, shift)
    tube = local.astype(np.float32)
    sigma = max(0.4, 0.25 * float(diameters_mm.mean()) / spacing_mm)
    tube = cv2.GaussianBlur(tube, (0, 0), sigma)
    tube *= np.float32(contrast_per_mm * float(diameters_mm.mean()) * (math.pi / 4) / 255.0)
    canvas[y0:y1, x0:x1] += tube


def _inside_breast(grid: TissueGrid, point_mm: np.ndarray) -> bool:
    col, row = int(point_mm[0] / grid.spacing_mm), int(point_mm[1] / grid.spacing_mm)
    rows, cols = grid.shape
    return 0 <= row < rows and 0 <= col < cols and grid.inside[row, col] > 0.5


def _clip_to_breast(grid: TissueGrid, points: np.ndarray) -> np.ndarray:
    """Leading part of a path that stays inside the breast."""
    for i, point in enumerate(points):
        if not _inside_breast(grid, point):
            return points[:i]
    return points


def _random_breast_point(
    rng: np.random.Generator, grid: TissueGrid, min_depth_mm: float
) -> np.ndarray | None:
    rows, cols = np.nonzero(grid.skin_distance_mm[::8, ::8] > min_depth_mm)
    if len(rows) == 0:
        return None
    pick = int(rng.integers(len(rows)))
    return (np.array([cols[pick], rows[pick]], dtype=float) * 8 + 4) * grid.spacing_mm


def vessels(rng: np.random.Generator, grid: TissueGrid) -> np.ndarray:
    """Line integral of 2-7 tortuous, branching vessels (``grid.shape`` float32)."""
    canvas = np.zeros(grid.shape, dtype=np.float32)
    nx, ny = grid.nipple_xy_mm
    rows = grid.shape[0]
    for _ in range(int(rng.integers(2, 8))):
        start = _random_breast_point(rng, grid, 3.0)
        if start is None:
            break
        start[0] = rng.uniform(0.0, 0.25) * nx  # enter from the chest-wall side
        if not _inside_breast(grid, start):
            continue
        target = (nx, float(np.clip(ny + rng.normal(0.0, 40.0), 0, rows * grid.spacing_mm)))
        heading = math.atan2(target[1] - start[1], target[0] - start[0]) + rng.normal(0.0, 0.4)
        path = _clip_to_breast(
            grid,
            random_walk(
                rng,
                tuple(start),
                heading,
                nx * rng.uniform(0.5, 1.1),
                tortuosity=0.02,
                target_mm=target,
                pull=0.02,
            ),
        )
        diameter = rng.uniform(0.8, 3.0)
        _tapered_tube(rng, grid, canvas, path, diameter, MU_BLOOD - MU_FAT, branches=2)
    return canvas


def ducts(rng: np.random.Generator, grid: TissueGrid) -> np.ndarray:
    """Line integral of 5-14 ducts fanning out from the nipple (``grid.shape`` float32)."""
    canvas = np.zeros(grid.shape, dtype=np.float32)
    nx, ny = grid.nipple_xy_mm
    for _ in range(int(rng.integers(5, 15))):
        start = np.array([nx - rng.uniform(3.0, 8.0), ny + rng.normal(0.0, 3.0)])
        if not _inside_breast(grid, start):
            continue
        heading = math.pi + rng.normal(0.0, 0.6)
        path = _clip_to_breast(
            grid,
            random_walk(rng, tuple(start), heading, rng.uniform(15.0, 0.7 * nx), tortuosity=0.025),
        )
        _tapered_tube(
            rng, grid, canvas, path, rng.uniform(0.6, 2.0), 0.6 * (MU_GLAND - MU_FAT), branches=3
        )
    return canvas


def _tapered_tube(rng, grid, canvas, path, diameter, contrast, branches) -> None:
    if len(path) < 3:
        return
    taper = np.linspace(1.0, rng.uniform(0.3, 0.7), len(path))
    draw_tube(canvas, path, diameter * taper, grid.spacing_mm, contrast)
    for _ in range(int(rng.integers(0, branches + 1))):
        at = int(rng.integers(1, len(path) - 1))
        direction = path[at] - path[at - 1]
        heading = math.atan2(direction[1], direction[0]) + rng.choice([-1, 1]) * rng.uniform(
            0.3, 0.9
        )
        child = _clip_to_breast(
            grid,
            random_walk(rng, tuple(path[at]), heading, rng.uniform(8.0, 40.0), tortuosity=0.03),
        )
        if len(child) > 2:
            draw_tube(
                canvas,
                child,
                diameter * taper[at] * rng.uniform(0.4, 0.7) * np.linspace(1, 0.5, len(child)),
                grid.spacing_mm,
                contrast,
            )


def septa(rng: np.random.Generator, grid: TissueGrid, glandular: np.ndarray) -> np.ndarray:
    """Line integral of ligaments and fibrous septa in the fat (``grid.shape`` float32).

    Lines are the zero crossings of band-limited fields; their width is set by dividing the
    field by its gradient magnitude (distance to the crossing).
    """
    s = grid.spacing_mm
    shape = grid.shape
    lines = np.zeros(shape, dtype=np.float32)
    for cutoff, share in ((rng.uniform(20.0, 40.0), 1.0), (rng.uniform(8.0, 15.0), 0.6)):
        lines += _zero_crossings(rng, shape, s, cutoff, float(rng.uniform(0.18, 0.3))) * np.float32(
            share
        )
    strength = smooth_field(rng, shape, s, 3.0, cutoff_mm=15.0, factor=4)
    strength = np.clip(strength * 0.7 + 0.3, 0.0, 1.2)
    subcutaneous = 1.0 + 1.5 * (1.0 - smoothstep(grid.skin_distance_mm, 2.0, 15.0))
    weight = (1.0 - glandular) * smoothstep(grid.skin_distance_mm, 0.3, 1.5)
    weight *= 1.0 - smoothstep(grid.muscle, 0.0, 0.1)
    lines *= strength * subcutaneous * weight
    lines *= np.float32(rng.uniform(0.03, 0.07))  # peak line integral of a septum seen edge-on
    return lines


def muscle_texture(rng: np.random.Generator, grid: TissueGrid, thickness_mm: float) -> np.ndarray:
    """Line integral of the pectoral muscle's inhomogeneity (fibre bundles, interposed fat):
    a few percent of its attenuation, ``grid.shape`` float32."""
    if not grid.muscle.any():
        return np.zeros(grid.shape, dtype=np.float32)
    fibres = smooth_field(rng, grid.shape, grid.spacing_mm, 3.0, cutoff_mm=20.0, factor=2)
    fibres *= grid.muscle
    fibres *= np.float32(rng.uniform(0.01, 0.03) * (MU_MUSCLE - MU_FAT) * thickness_mm)
    return fibres


def _zero_crossings(
    rng: np.random.Generator,
    shape: tuple[int, int],
    spacing_mm: float,
    cutoff_mm: float,
    half_width_mm: float,
) -> np.ndarray:
    """Thin smooth lines (peak 1, Gaussian profile of ``half_width_mm``) along the zero
    crossings of a smooth random field whose features are about ``cutoff_mm / 6`` across."""
    field = smooth_field(rng, shape, spacing_mm, 8.0, cutoff_mm=cutoff_mm, factor=4)
    gx = cv2.Sobel(field, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(field, cv2.CV_32F, 0, 1, ksize=3)
    gradient = cv2.magnitude(gx, gy) * np.float32(1.0 / (8.0 * spacing_mm))
    distance = np.abs(field) / np.maximum(gradient, np.float32(1e-6))  # mm to the crossing
    return cv2.exp(-(distance * distance) * np.float32(0.5 / half_width_mm**2))
