"""Fibroglandular tissue: power-law random fields shaped into a glandular fraction map.

Mammographic parenchyma has a power spectrum falling as ``1 / f^beta`` with ``beta`` about
2.5-3.2 (Burgess, Jacobson & Judy 2001; Heine & Velthuizen 2002). The glandular fraction is
a soft threshold of a mix of

- an isotropic power-law field (lobules and fat islands),
- a power-law field stretched along rays from the nipple (the fibrous, ductal texture that
  converges to the nipple), synthesised in polar coordinates and remapped,
- an envelope that keeps the glandular disc central: subcutaneous fat under the skin,
  retroglandular fat in front of the chest wall / pectoral muscle.

The threshold is set so that the dense area fraction (glandular fraction > 0.5 over the breast,
muscle excluded) matches the BI-RADS class: A < 25%, B 25-50%, C 50-75%, D > 75%.

All maps here live on the texture grid (``tissue_spacing_mm``), float32, canonical frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Dense-area fraction drawn within these ranges per BI-RADS class (margins off the boundaries).
DENSE_FRACTION_RANGES = {"A": (0.04, 0.21), "B": (0.28, 0.47), "C": (0.53, 0.72), "D": (0.78, 0.92)}
_POLAR_RADIAL_STEP_MM = 0.5
_POLAR_ARC_STEP_MM = 0.3  # angular step chosen so that this arc length falls at 60 mm
_POLAR_REFERENCE_MM = 60.0
# Glandular share of the path where the tissue looks densest: volumetric density is far below
# area density (Volpara/Quantra: even extremely dense breasts are mostly under 40% by volume).
PEAK_VOLUME_FRACTION = {"A": (0.3, 0.45), "B": (0.35, 0.55), "C": (0.45, 0.65), "D": (0.5, 0.7)}
LAYERS = 3  # depth layers averaged into the projected glandular fraction


@dataclass(frozen=True)
class TissueGrid:
    """Anatomy resampled to the texture grid (canonical frame; all ``(h, w)`` float32)."""

    spacing_mm: float
    inside: np.ndarray  # breast coverage in [0, 1]
    skin_distance_mm: np.ndarray  # distance to the outline, mm
    muscle: np.ndarray  # pectoral muscle fraction in [0, 1]
    nipple_xy_mm: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return self.inside.shape  # type: ignore[return-value]


def power_law_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    spacing_mm: float,
    beta: float,
    *,
    cutoff_mm: float = 60.0,
    stretch: float = 1.0,
) -> np.ndarray:
    """Gaussian random field with power spectrum ``(f^2 + f0^2)^(-beta/2)``, zero mean, unit std.

    Args:
        shape: ``(rows, cols)``.
        spacing_mm: grid pitch in mm (frequencies in cycles/mm).
        beta: spectral exponent (about 3 for breast parenchyma).
        cutoff_mm: ``1 / f0``; the spectrum flattens below this frequency (finite power).
        stretch: correlation length along the columns (axis 1) divided by that along the rows.

    Returns:
        ``shape`` float32 field, periodic (synthesised by an inverse real FFT).
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows, d=spacing_mm).astype(np.float32)[:, None]
    fx = (np.fft.rfftfreq(cols, d=spacing_mm) * stretch).astype(np.float32)[None, :]
    power = fx * fx + fy * fy + np.float32(1.0 / cutoff_mm**2)
    amplitude = cv2.exp(cv2.log(power) * np.float32(-beta / 4.0))
    amplitude[0, 0] = 0.0
    spectrum = rng.standard_normal((rows, cols // 2 + 1, 2), dtype=np.float32)
    spectrum *= amplitude[:, :, None]
    coefficients = spectrum.view(np.complex64)[:, :, 0]
    field = np.fft.irfft2(coefficients, s=(rows, cols)).astype(np.float32, copy=False)
    field -= np.float32(field.mean())
    std = float(field.std())
    return field * np.float32(1.0 / std) if std > 0 else field


def smooth_field(
    rng: np.random.Generator,
    shape: tuple[int, int],
    spacing_mm: float,
    beta: float,
    *,
    cutoff_mm: float,
    factor: int = 4,
) -> np.ndarray:
    """:func:`power_law_field` synthesised ``factor`` times coarser and upsampled (bicubic):
    for steep spectra (``beta >= 5``) or long cutoffs, whose power above the coarse grid's
    Nyquist frequency is negligible. ``shape`` float32."""
    rows, cols = shape
    small = (max(8, -(-rows // factor)), max(8, -(-cols // factor)))
    coarse = power_law_field(rng, small, spacing_mm * rows / small[0], beta, cutoff_mm=cutoff_mm)
    return cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_CUBIC)


class NippleRays:
    """Polar resampling about the nipple: fields drawn on a (angle, radius) grid are remapped
    onto the texture grid, so structures elongated along the radius converge on the nipple."""

    def __init__(self, grid: TissueGrid, rng: np.random.Generator):
        rows, cols = grid.shape
        nx, ny = grid.nipple_xy_mm
        s = grid.spacing_mm
        corners = [(0.0, 0.0), (cols * s, 0.0), (0.0, rows * s), (cols * s, rows * s)]
        radius_max = max(math.hypot(cx - nx, cy - ny) for cx, cy in corners) + 1.0
        self.n_angles = math.ceil(2 * math.pi * _POLAR_REFERENCE_MM / _POLAR_ARC_STEP_MM)
        self.n_radii = math.ceil(radius_max / _POLAR_RADIAL_STEP_MM) + 2
        x = np.broadcast_to(
            ((np.arange(cols, dtype=np.float32) + 0.5) * s - nx)[None, :], (rows, cols)
        )
        y = np.broadcast_to(
            ((np.arange(rows, dtype=np.float32) + 0.5) * s - ny)[:, None], (rows, cols)
        )
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        self.map_radius = cv2.magnitude(x, y) * np.float32(1.0 / _POLAR_RADIAL_STEP_MM)
        self.map_angle = cv2.phase(x, y)
        # gentle waviness: rays bend by a few degrees over centimetres (ducts are not straight)
        self.map_angle += smooth_field(
            rng, (rows, cols), s, 6.0, cutoff_mm=60.0, factor=8
        ) * np.float32(rng.uniform(0.03, 0.08))
        self.map_angle *= np.float32(self.n_angles / (2 * math.pi))

    def field(self, rng: np.random.Generator, beta: float, stretch: float) -> np.ndarray:
        """Unit-std power-law texture ``stretch`` times longer along rays from the nipple."""
        polar = power_law_field(
            rng, (self.n_angles, self.n_radii), _POLAR_RADIAL_STEP_MM, beta, stretch=stretch
        )
        return cv2.remap(
            polar, self.map_radius, self.map_angle, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
        )


def smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Cubic Hermite step from 0 at ``lo`` to 1 at ``hi`` (float32)."""
    t = np.clip((x - lo) * (1.0 / (hi - lo)), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32, copy=False)


def glandular_fraction(
    rng: np.random.Generator, grid: TissueGrid, density: str
) -> tuple[np.ndarray, float]:
    """Glandular volume fraction of the tissue path, ``grid.shape`` float32 in [0, 1].

    The fraction is the mean of ``LAYERS`` soft-thresholded fields that share their large-scale
    component (where the glandular disc lies) and differ in detail: a projection through
    several depths of tissue, which softens boundaries and grades the density as in real
    projections, instead of the cut-out look of a single thresholded field.

    Args:
        rng: the image's random generator.
        grid: anatomy on the texture grid.
        density: BI-RADS density ``"A"``..``"D"``.

    Returns:
        ``(fraction, dense_area_fraction)``: the volumetric glandular fraction map, and the
        share of breast area (muscle excluded) that looks dense (its normalised map > 0.5).
    """
    if density not in DENSE_FRACTION_RANGES:
        raise ValueError(
            f"density should be one of {tuple(DENSE_FRACTION_RANGES)}, got {density!r}"
        )
    target = float(rng.uniform(*DENSE_FRACTION_RANGES[density]))
    rows, cols = grid.shape
    s = grid.spacing_mm
    dense = density in ("C", "D")
    rays = NippleRays(grid, rng)
    shared = power_law_field(rng, (rows, cols), s, 3.3, cutoff_mm=float(rng.uniform(30.0, 60.0)))
    shared += rays.field(rng, beta=3.3, stretch=float(rng.uniform(1.5, 3.0))) * np.float32(0.6)
    shared *= np.float32(1.0 / math.sqrt(1.36))

    subcutaneous = rng.uniform(2.0, 7.0) if dense else rng.uniform(4.0, 14.0)
    retroglandular = rng.uniform(4.0, 20.0)
    x_mm = ((np.arange(cols, dtype=np.float32) + 0.5) * s)[None, :]
    envelope = smoothstep(
        grid.skin_distance_mm, subcutaneous, subcutaneous + rng.uniform(10.0, 30.0)
    )
    envelope *= smoothstep(x_mm, retroglandular, retroglandular + rng.uniform(15.0, 35.0))
    envelope *= 1.0 - smoothstep(_coarse_blur(grid.muscle, 8.0 / s), 0.02, 0.3)
    envelope *= _cone(rng, grid, rays)
    base = shared * np.float32(rng.uniform(0.7, 1.0))
    base += (envelope - 0.5) * np.float32(rng.uniform(1.2, 2.2))

    w_fibrous = float(rng.uniform(0.3, 0.55))
    layers = []
    for _ in range(LAYERS):
        detail = power_law_field(rng, (rows, cols), s, float(rng.uniform(2.6, 3.1)), cutoff_mm=20.0)
        detail *= np.float32(1.0 - w_fibrous)
        detail += rays.field(
            rng, beta=float(rng.uniform(2.6, 3.0)), stretch=float(rng.uniform(2.5, 5.0))
        ) * np.float32(w_fibrous)
        detail *= np.float32(rng.uniform(0.5, 0.8))
        detail += base
        layers.append(detail)
    softness = float(rng.uniform(0.2, 0.4))
    cap = smoothstep(grid.skin_distance_mm, 0.4 * subcutaneous, subcutaneous)
    cap *= 1.0 - smoothstep(grid.muscle, 0.0, 0.25)

    breast = (grid.inside > 0.5) & (grid.muscle < 0.2)
    if not breast.any():
        return np.zeros((rows, cols), dtype=np.float32), 0.0
    step = max(1, int(math.sqrt(breast.sum() / 60_000)))
    sample_mask = breast[::step, ::step]
    samples = [layer[::step, ::step][sample_mask] for layer in layers]
    sample_cap = cap[::step, ::step][sample_mask]
    low = min(float(x.min()) for x in samples) - 4 * softness
    high = max(float(x.max()) for x in samples) + 4 * softness
    for _ in range(24):  # bisection: the dense share falls as the threshold rises
        threshold = 0.5 * (low + high)
        share = float(np.mean(_soft_mean(samples, threshold, softness) * sample_cap > 0.5))
        low, high = (threshold, high) if share > target else (low, threshold)
    fraction = _soft_mean(layers, 0.5 * (low + high), softness)
    fraction *= cap
    achieved = float(np.mean(fraction[breast] > 0.5))
    fraction *= np.float32(rng.uniform(*PEAK_VOLUME_FRACTION[density]))
    return fraction, achieved


def _coarse_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a wide ``sigma_px`` done on a grid about ``sigma / 4`` coarse."""
    rows, cols = image.shape
    factor = max(1, int(sigma_px / 4))
    small = cv2.resize(
        image, (max(1, cols // factor), max(1, rows // factor)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / factor)
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _cone(rng: np.random.Generator, grid: TissueGrid, rays: NippleRays) -> np.ndarray:
    """Soft cone of glandular tissue opening from the nipple towards the chest wall (float32).

    CC: about the horizontal axis; MLO (pectoral present at the top): tilted up towards the
    axilla, where the upper-outer quadrant holds the most tissue.
    """
    tilt = 0.35 if float(grid.muscle[:, : grid.shape[1] // 4].mean()) > 0.02 else 0.0
    axis = math.pi + tilt + rng.normal(0.0, 0.12)  # pointing from the nipple to the chest wall
    angle = rays.map_angle * np.float32(2 * math.pi / rays.n_angles)
    offset = np.remainder(angle - np.float32(axis) + np.float32(math.pi), np.float32(2 * math.pi))
    offset -= np.float32(math.pi)
    width = np.float32(rng.uniform(0.6, 1.1))
    cone = cv2.exp(-(offset * offset) / (width * width))
    floor = np.float32(rng.uniform(0.3, 0.6))
    return cone * (1.0 - floor) + floor


def _soft_mean(fields: list[np.ndarray], threshold: float, softness: float) -> np.ndarray:
    """Mean over fields of ``sigmoid((field - threshold) / softness)`` (float32)."""
    total = np.zeros_like(fields[0])
    for field in fields:
        z = (np.float32(threshold) - field) * np.float32(1.0 / softness)
        np.clip(z, -30.0, 30.0, out=z)
        total += 1.0 / (1.0 + cv2.exp(z))
    total *= np.float32(1.0 / len(fields))
    return total
