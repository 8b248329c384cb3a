"""Compressed-breast anatomy: outline, skin, thickness profile, nipple and pectoral muscle.

Canonical frame (every synthetic image is built in it, then flipped for laterality): pixel
``(row, col)`` covers ``[col, col + 1) x [row, row + 1)`` in pixels; in millimetres
``x = (col + 0.5) * spacing`` runs from the chest wall (``x = 0``, the image's left edge) towards
the nipple, ``y`` runs downwards. A left breast is shown in this orientation (chest wall at the
left image edge, nipple pointing right); a right breast is its mirror image.

Geometry (typical of screening mammograms):
- CC: a super-ellipse whose centre lies behind the chest wall, so the outline meets the image
  edge at an angle; the pectoral muscle shows at the chest wall in about a third of CC views.
- MLO: the outline rises from the axilla at the top edge to the nipple and returns to the chest
  wall at the inframammary fold; the pectoral muscle is a triangle in the upper chest-wall
  corner with a slightly curved anterior edge.
- Compression flattens the breast to a thickness ``T0``; within ``edge_mm`` of the outline the
  thickness falls as an ellipse (the uncompressed periphery), ``T(d) = T0 sqrt(u (2 - u))``,
  ``u = min(d / edge, 1)``. The skin is a shell of ``skin_mm``; its projected path is longest
  just inside the outline, which is what draws the skin line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_EDGE_BAND_PX = 2.5  # within this distance of the outline the sub-pixel estimate is used
_MUSCLE_EDGE_MM = 0.6  # width of the soft anterior edge of the pectoral muscle


@dataclass(frozen=True)
class BreastShape:
    """Patient-level size of one breast under compression (all in mm)."""

    depth_mm: float  # chest wall to nipple in the CC view
    half_height_mm: float  # half the extent of the CC outline along the chest wall
    thickness_mm: float  # compressed thickness T0
    edge_mm: float  # width of the peripheral zone where the thickness falls off
    skin_mm: float  # skin thickness


@dataclass(frozen=True)
class Anatomy:
    """One breast in the canonical frame on the ``(H, W)`` image grid (float32 arrays).

    Attributes:
        spacing_mm: pixel pitch in mm.
        view: ``"CC"`` or ``"MLO"``.
        inside: fraction of each pixel covered by the breast (skin included), in [0, 1].
        skin_distance_mm: distance from the pixel centre to the outline, mm (0 outside).
        thickness_mm: breast thickness along the beam, mm (0 outside).
        tissue_path_mm: path inside the skin shell, mm; ``thickness_mm - tissue_path_mm`` is
            the projected skin path.
        muscle: fraction of the tissue path that is pectoral muscle, in [0, 1].
        nipple_xy_mm: nipple tip ``(x, y)`` in mm.
        compressed_mm: the compressed thickness T0 in mm.
    """

    spacing_mm: float
    view: str
    inside: np.ndarray
    skin_distance_mm: np.ndarray
    thickness_mm: np.ndarray
    tissue_path_mm: np.ndarray
    muscle: np.ndarray
    nipple_xy_mm: tuple[float, float]
    compressed_mm: float

    @property
    def skin_path_mm(self) -> np.ndarray:
        """Projected path through the skin shell, mm, ``(H, W)`` float32."""
        return self.thickness_mm - self.tissue_path_mm


def draw_breast_shape(rng: np.random.Generator, width_mm: float, height_mm: float) -> BreastShape:
    """A breast size for a patient, fitted into an image of ``width_mm x height_mm``."""
    size = float(rng.lognormal(0.0, 0.18))
    depth = min(float(np.clip(92.0 * size, 50.0, 150.0)), 0.8 * width_mm)
    half_height = min(
        float(np.clip(78.0 * size * rng.uniform(0.9, 1.1), 45.0, 115.0)), 0.47 * height_mm
    )
    thickness = float(np.clip(rng.normal(50.0, 10.0) * math.sqrt(size), 25.0, 80.0))
    return BreastShape(
        depth_mm=depth,
        half_height_mm=half_height,
        thickness_mm=thickness,
        edge_mm=thickness * float(rng.uniform(0.45, 0.8)),
        skin_mm=float(rng.uniform(1.0, 2.0)),
    )


def build_anatomy(
    rng: np.random.Generator,
    view: str,
    shape_hw: tuple[int, int],
    spacing_mm: float,
    breast: BreastShape,
) -> Anatomy:
    """Draw the outline, nipple and pectoral muscle of one view and derive the thickness maps.

    Args:
        rng: random generator of this image.
        view: ``"CC"`` or ``"MLO"``.
        shape_hw: image size ``(H, W)`` in pixels.
        spacing_mm: pixel pitch in mm.
        breast: the patient's breast size.

    Returns:
        The :class:`Anatomy` on the ``(H, W)`` grid, canonical frame.
    """
    if view not in ("CC", "MLO"):
        raise ValueError(f"view should be 'CC' or 'MLO', got {view!r}")
    height, width = shape_hw
    width_mm, height_mm = width * spacing_mm, height * spacing_mm
    y_mm = (np.arange(height, dtype=np.float64) + 0.5) * spacing_mm
    if view == "CC":
        outline, nipple = _cc_outline(rng, breast, y_mm, width_mm, height_mm)
    else:
        outline, nipple = _mlo_outline(rng, breast, y_mm, width_mm, height_mm)
    distance = _signed_distance(outline, y_mm, width, spacing_mm)
    inside = np.clip(distance / spacing_mm + 0.5, 0.0, 1.0)
    np.maximum(distance, 0.0, out=distance)
    thickness, tissue = _thickness_profiles(distance, breast)
    muscle = _pectoral(rng, view, breast, y_mm, width, spacing_mm, nipple)
    muscle *= inside
    return Anatomy(
        spacing_mm=spacing_mm,
        view=view,
        inside=inside,
        skin_distance_mm=distance,
        thickness_mm=thickness,
        tissue_path_mm=tissue,
        muscle=muscle,
        nipple_xy_mm=nipple,
        compressed_mm=breast.thickness_mm,
    )


# --- outlines: x of the skin surface (mm) for every row ----------------------------------------
def _wobble(rng: np.random.Generator, y_mm: np.ndarray, amplitude: float) -> np.ndarray:
    """Smooth relative perturbation of an outline (a few long sinusoids)."""
    wobble = np.zeros_like(y_mm)
    for _ in range(3):
        wavelength = rng.uniform(30.0, 140.0)
        wobble += (
            rng.uniform(0.3, 1.0)
            * amplitude
            * np.sin(2 * np.pi * y_mm / wavelength + rng.uniform(0, 2 * np.pi))
        )
    return 1.0 + wobble


def _nipple_bump(
    rng: np.random.Generator, y_mm: np.ndarray, nipple_y: float
) -> tuple[np.ndarray, float]:
    """Nipple in profile (about 85% of views): a small dome on the outline; returns (dx, height)."""
    if rng.random() > 0.85:
        return np.zeros_like(y_mm), 0.0
    bump_height, half_width = rng.uniform(2.0, 6.0), rng.uniform(4.0, 7.0)
    u = (y_mm - nipple_y) / half_width
    return bump_height * np.sqrt(np.clip(1.0 - u * u, 0.0, None)), float(bump_height)


def _cc_outline(rng, breast: BreastShape, y_mm, width_mm, height_mm):
    centre = height_mm / 2 + rng.normal(0.0, 0.03 * height_mm)
    depth = breast.depth_mm * rng.uniform(0.95, 1.05)
    behind = rng.uniform(5.0, 35.0)  # super-ellipse centre behind the chest wall (mm)
    power = rng.uniform(1.8, 2.6)
    half = np.where(
        y_mm < centre,
        breast.half_height_mm * rng.uniform(0.9, 1.1),
        breast.half_height_mm * rng.uniform(0.9, 1.1),
    )
    u = np.abs(y_mm - centre) / half
    outline = (depth + behind) * np.clip(1.0 - u**power, 0.0, None) ** (1.0 / power) - behind
    outline *= _wobble(rng, y_mm, 0.012)
    nipple_y = centre + rng.normal(0.0, 0.06 * breast.half_height_mm)
    bump, _bump_height = _nipple_bump(rng, y_mm, nipple_y)
    outline += bump
    nipple_x = float(np.interp(nipple_y, y_mm, outline))
    return np.minimum(outline, 0.97 * width_mm), (min(nipple_x, 0.97 * width_mm), float(nipple_y))


def _mlo_outline(rng, breast: BreastShape, y_mm, width_mm, height_mm):
    depth = min(breast.depth_mm * rng.uniform(1.0, 1.15), 0.85 * width_mm)
    top = depth * rng.uniform(0.45, 0.75)  # outline where it meets the top edge (axilla)
    nipple_y = height_mm * rng.uniform(0.48, 0.66)
    fold_y = height_mm * rng.uniform(0.88, 1.12)  # inframammary fold
    rise, fall = rng.uniform(1.3, 1.9), rng.uniform(1.8, 2.6)
    behind = rng.uniform(0.0, 20.0)
    upper = top + (depth - top) * np.clip(
        1.0 - np.clip(1.0 - y_mm / nipple_y, 0, 1) ** rise, 0, None
    ) ** (1 / rise)
    v = np.clip((y_mm - nipple_y) / (fold_y - nipple_y), 0.0, None)
    lower = (depth + behind) * np.clip(1.0 - v**fall, 0.0, None) ** (1 / fall) - behind
    outline = np.where(y_mm <= nipple_y, upper, lower) * _wobble(rng, y_mm, 0.012)
    bump, _ = _nipple_bump(rng, y_mm, nipple_y)
    outline += bump
    nipple_x = float(np.interp(nipple_y, y_mm, outline))
    return np.minimum(outline, 0.97 * width_mm), (min(nipple_x, 0.97 * width_mm), float(nipple_y))


# --- distance to the skin surface -------------------------------------------------------------
def _signed_distance(
    outline_mm: np.ndarray, y_mm: np.ndarray, width: int, spacing_mm: float
) -> np.ndarray:
    """Distance (mm) from each pixel centre to the outline, negative outside, ``(H, W)`` float32.

    A distance transform of the pixel mask (image border replicated, so the chest wall and
    edges where the breast leaves the image are not skin), less half a pixel, gives the
    distance to within a fraction of a pixel; within a few pixels of the outline the row-wise
    offset divided by ``sqrt(1 + slope^2)`` (exact to first order, smooth) refines it, bounded
    to stay within one pixel of the transform where the outline bends sharply.
    """
    height = len(y_mm)
    slope = np.gradient(outline_mm, y_mm) if height > 1 else np.zeros_like(outline_mm)
    x_px = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    row_scale = (1.0 / np.sqrt(1.0 + slope * slope)).astype(np.float32)[:, None]
    near = (
        outline_mm.astype(np.float32)[:, None] * np.float32(1.0 / spacing_mm) - x_px
    ) * row_scale
    mask = (near > 0).astype(np.uint8)
    pad = 2
    padded = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    far = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_5)[pad:-pad, pad:-pad]
    refined = np.clip(near, far - 1.0, far)
    distance = np.where(far > _EDGE_BAND_PX, far - 0.5, refined)
    distance = np.where(mask > 0, distance, np.maximum(near, -2.0))
    distance *= np.float32(spacing_mm)
    return distance


def _thickness_profiles(
    distance_mm: np.ndarray, breast: BreastShape
) -> tuple[np.ndarray, np.ndarray]:
    """Thickness and inner (tissue) path from the distance to the outline, both ``(H, W)``."""
    t0, edge, skin = breast.thickness_mm, breast.edge_mm, breast.skin_mm
    u = np.minimum(distance_mm * (1.0 / edge), 1.0)
    thickness = np.sqrt(u * (2.0 - u)) * t0
    ui = np.clip((distance_mm - skin) * (1.0 / (edge - skin)), 0.0, 1.0)
    tissue = np.sqrt(ui * (2.0 - ui)) * (t0 - 2.0 * skin)
    return thickness.astype(np.float32, copy=False), tissue.astype(np.float32, copy=False)


# --- pectoral muscle --------------------------------------------------------------------------
def _pectoral(rng, view, breast, y_mm, width, spacing_mm, nipple) -> np.ndarray:
    """Fraction of the tissue path that is pectoral muscle, ``(H, W)`` float32."""
    height = len(y_mm)
    x_mm = ((np.arange(width, dtype=np.float32) + 0.5) * spacing_mm)[None, :]
    if view == "MLO":
        top_width = nipple[0] * rng.uniform(0.28, 0.5)
        length = y_mm[-1] * rng.uniform(0.4, 0.72)
        bow = rng.uniform(0.75, 1.25)  # <1 convex, >1 concave anterior edge
        v = np.clip(1.0 - y_mm / length, 0.0, None)
        edge = top_width * v**bow
        slope = np.gradient(edge, y_mm) if height > 1 else np.zeros_like(edge)
        signed = (edge.astype(np.float32)[:, None] - x_mm) / np.sqrt(1.0 + slope * slope).astype(
            np.float32
        )[:, None]
        signed[y_mm >= length] = -1.0  # below the muscle's lower end
        depth_scale = max(top_width * 0.5, 1.0)
    elif rng.random() < 0.2:  # pectoral muscle caught at the chest wall of a CC view
        half_w, half_h = rng.uniform(2.0, 6.0), rng.uniform(10.0, 25.0)
        centre = nipple[1] + rng.normal(0.0, 10.0)
        radial = np.sqrt(
            (x_mm / half_w) ** 2 + ((y_mm.astype(np.float32)[:, None] - centre) / half_h) ** 2
        )
        signed = (1.0 - radial) * min(half_w, half_h)
        depth_scale = half_w * 3.0  # thin: the muscle is only grazed in a CC view
    else:
        return np.zeros((height, width), dtype=np.float32)
    coverage = np.clip(signed / _MUSCLE_EDGE_MM + 0.5, 0.0, 1.0)
    depth = np.sqrt(np.clip(signed / depth_scale, 0.0, 1.0))
    return (coverage * (0.15 + 0.3 * depth)).astype(np.float32)
