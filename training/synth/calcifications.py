"""Calcification shapes, drawn as line integrals in the attenuation (log) domain.

Each calcification is a small 3-D body described in millimetres: an ellipsoid, a prism-like
particle with a polygonal outline (pleomorphic, coarse), a thin cast along a polyline (linear,
branching, vascular tracks) or a spherical shell (rim / eggshell). Its projected path length
(mm) is rendered on a supersampled patch (sub-pixel ~ 0.02 mm) and box-averaged onto the pixel
grid, i.e. integrated over each detector pixel's aperture; multiplied by the attenuation
difference to the tissue it displaces it is added to the line integral. The detector blur (MTF)
is applied later, to the whole image, by the acquisition model.

Polygonal and polyline bodies get a rounded depth profile: with ``d`` the distance to the
outline and ``a`` the half width, the chord is ``2 sqrt(a^2 - (a - d)^2)`` (a cylinder for a
line, a dome for a particle). Descriptors (largest extent, smallest caliber, circularity) are
computed analytically from the shape, not from its pixels, so they do not depend on spacing.

Coordinates: canonical frame, mm (see ``anatomy``); pixel boxes are ``xyxy``, x2/y2 exclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_SUBPIXEL_MM = 0.02  # supersampled grid pitch for calcifications
_SHIFT = 4  # OpenCV fixed-point bits for sub-pixel drawing


@dataclass(frozen=True)
class Body:
    """A small attenuating body to draw (canonical frame, mm).

    Attributes:
        kind: ``"ellipsoid"``, ``"polygon"``, ``"polyline"`` or ``"shell"``.
        x_mm, y_mm: centre.
        attenuation: attenuation difference to the displaced tissue times the solid fraction,
            1/mm (calcifications ~0.3-2.4; soft tissue ~0.04).
        semi_axes_mm: ellipsoid ``(a, b)`` in the image plane (depth ``sqrt(a b)``).
        angle_rad: ellipsoid rotation.
        points_mm: ``(N, 2)`` polygon vertices or polyline points relative to the centre.
        width_mm: polyline caliber.
        radius_mm, shell_mm: shell outer radius and wall thickness.
        gaps: ``((start, end), ...)`` angles (rad) where a shell is not calcified.
        depth_scale: polygon particles: depth along the beam relative to their smallest
            in-plane width (random particles are about as deep as they are wide on average).
        is_calcification: False for soft-tissue companions (vessel, fibroadenoma).
    """

    kind: str
    x_mm: float
    y_mm: float
    attenuation: float
    semi_axes_mm: tuple[float, float] = (0.0, 0.0)
    angle_rad: float = 0.0
    points_mm: np.ndarray | None = None
    width_mm: float = 0.0
    radius_mm: float = 0.0
    shell_mm: float = 0.0
    gaps: tuple[tuple[float, float], ...] = ()
    depth_scale: float = 1.0
    is_calcification: bool = True

    def reach_mm(self) -> float:
        """Radius of a disc about the centre that contains the body."""
        if self.kind == "ellipsoid":
            return max(self.semi_axes_mm)
        if self.kind == "shell":
            return self.radius_mm
        extent = float(np.max(np.hypot(self.points_mm[:, 0], self.points_mm[:, 1])))
        return extent + self.width_mm / 2


@dataclass(frozen=True)
class Calcification:
    """One drawn calcification: position (canonical mm) and morphology descriptors.

    Attributes:
        x_mm, y_mm: centre in the canonical frame, mm.
        diameter_mm: largest extent (maximum Feret diameter), mm.
        width_mm: smallest caliber (minimum Feret width), mm.
        circularity: ``4 pi area / perimeter^2`` of the projected outline (1 for a disc).
    """

    x_mm: float
    y_mm: float
    diameter_mm: float
    width_mm: float
    circularity: float


def describe(body: Body) -> Calcification:
    """Analytic morphology descriptors of a body."""
    if body.kind == "ellipsoid":
        a, b = body.semi_axes_mm
        h = ((a - b) / (a + b)) ** 2
        perimeter = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
        return Calcification(
            body.x_mm,
            body.y_mm,
            2 * max(a, b),
            2 * min(a, b),
            4 * math.pi * math.pi * a * b / perimeter**2,
        )
    if body.kind == "shell":
        return Calcification(body.x_mm, body.y_mm, 2 * body.radius_mm, body.shell_mm, 1.0)
    points = body.points_mm.astype(np.float32)
    diameter = float(
        np.max(np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)))
    )
    if body.kind == "polygon":
        (_, _), (w, h), _ = cv2.minAreaRect(points)
        area, perimeter = abs(cv2.contourArea(points)), cv2.arcLength(points, True)
        circularity = 4 * math.pi * area / perimeter**2 if perimeter > 0 else 0.0
        return Calcification(body.x_mm, body.y_mm, diameter, float(min(w, h)), circularity)
    length = float(np.sum(np.hypot(*np.diff(points, axis=0).T)))
    w = body.width_mm
    circularity = 4 * math.pi * w * length / (2 * length + 2 * w) ** 2 if length > 0 else 1.0
    return Calcification(body.x_mm, body.y_mm, diameter + w, w, circularity)


def render(
    line_integral: np.ndarray, body: Body, spacing_mm: float
) -> tuple[float, float, float, float] | None:
    """Add a body's line integral to ``line_integral`` (``(H, W)`` float32) in place.

    Returns:
        The tight pixel box ``(x1, y1, x2, y2)`` of the drawn body (continuous pixel frame,
        x2/y2 exclusive), or None when it falls outside the image.
    """
    height, width = line_integral.shape
    reach = body.reach_mm() + 2 * spacing_mm
    x0 = max(0, math.floor((body.x_mm - reach) / spacing_mm))
    y0 = max(0, math.floor((body.y_mm - reach) / spacing_mm))
    x1 = min(width, math.ceil((body.x_mm + reach) / spacing_mm))
    y1 = min(height, math.ceil((body.y_mm + reach) / spacing_mm))
    if x1 <= x0 or y1 <= y0:
        return None
    ss = int(np.clip(math.ceil(spacing_mm / _SUBPIXEL_MM), 1, 10))
    if not body.is_calcification:
        ss = 1
    fine = spacing_mm / ss
    cols = (
        (np.arange((x1 - x0) * ss, dtype=np.float32) + 0.5) * fine + x0 * spacing_mm - body.x_mm
    )[None, :]
    rows = (
        (np.arange((y1 - y0) * ss, dtype=np.float32) + 0.5) * fine + y0 * spacing_mm - body.y_mm
    )[:, None]
    chord = _chord(body, cols, rows, fine)
    if not chord.any():
        return None
    ys, xs = np.nonzero(chord)
    box = (
        x0 + xs.min() / ss,
        y0 + ys.min() / ss,
        x0 + (xs.max() + 1) / ss,
        y0 + (ys.max() + 1) / ss,
    )
    if ss > 1:
        chord = cv2.resize(chord, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    chord *= np.float32(body.attenuation)
    line_integral[y0:y1, x0:x1] += chord
    return box


def _chord(body: Body, cols: np.ndarray, rows: np.ndarray, fine_mm: float) -> np.ndarray:
    """Projected path length (mm) through the body on the supersampled grid (float32)."""
    shape = (rows.shape[0], cols.shape[1])
    if body.kind == "ellipsoid":
        a, b = body.semi_axes_mm
        c, s = math.cos(body.angle_rad), math.sin(body.angle_rad)
        u = (cols * c + rows * s) / a
        v = (-cols * s + rows * c) / b
        q = np.clip(1.0 - u * u - v * v, 0.0, None)
        return (2.0 * math.sqrt(a * b) * np.sqrt(q)).astype(np.float32)
    if body.kind == "shell":
        rho2 = cols * cols + rows * rows
        outer = np.sqrt(np.clip(body.radius_mm**2 - rho2, 0.0, None))
        inner = np.sqrt(np.clip((body.radius_mm - body.shell_mm) ** 2 - rho2, 0.0, None))
        chord = (2.0 * (outer - inner)).astype(np.float32)
        if body.gaps:
            angle = np.arctan2(np.broadcast_to(rows, shape), np.broadcast_to(cols, shape))
            for start, end in body.gaps:
                chord[
                    np.remainder(angle - start, 2 * math.pi)
                    < np.remainder(end - start, 2 * math.pi)
                ] = 0.0
        return chord
    mask = np.zeros(shape, dtype=np.uint8)
    origin = np.array([cols[0, 0], rows[0, 0]], dtype=np.float64)
    pixels = np.round((body.points_mm - origin) / fine_mm * (1 << _SHIFT)).astype(np.int32)
    if body.kind == "polygon":
        cv2.fillPoly(mask, [pixels], 1, cv2.LINE_8, _SHIFT)
    else:
        thickness = max(1, round(body.width_mm / fine_mm))
        cv2.polylines(mask, [pixels], False, 1, thickness, cv2.LINE_8, _SHIFT)
    if not mask.any():
        return np.zeros(shape, dtype=np.float32)
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    depth -= 0.5
    depth *= fine_mm
    np.maximum(depth, 0.0, out=depth)
    half = float(depth.max()) + 0.5 * fine_mm
    chord = 2.0 * np.sqrt(np.clip(half * half - (half - depth) ** 2, 0.0, None)) * (mask > 0)
    if body.kind == "polygon":
        chord *= body.depth_scale
    return chord.astype(np.float32)
