"""Radial power spectrum of mammographic texture and its power-law exponent beta.

Method (after Burgess, Jacobson & Judy 2001 and Heine & Velthuizen 2002): square regions fully
inside the breast (pectoral muscle excluded) are detrended (least-squares plane removed),
windowed (Hann), Fourier transformed; the power is averaged over rings of equal radial
frequency and over regions, and ``-beta`` is the slope of ``log P`` against ``log f`` fitted
over ``band_per_mm`` (cycles/mm), below the frequencies where quantum noise flattens it.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BAND = (0.15, 1.0)  # cycles/mm


def radial_power_spectrum(region: np.ndarray, spacing_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Ring-averaged power spectrum of one square region.

    Args:
        region: ``(n, n)`` values (any real dtype).
        spacing_mm: pixel pitch, mm.

    Returns:
        ``(frequency, power)``: ring centres in cycles/mm (excluding 0) and mean power.
    """
    values = np.asarray(region, dtype=np.float64)
    n = values.shape[0]
    if values.ndim != 2 or values.shape[1] != n or n < 8:
        raise ValueError(f"region should be a square of at least 8x8, got {values.shape}")
    y, x = np.mgrid[0:n, 0:n] / (n - 1) - 0.5
    design = np.stack([np.ones(n * n), x.ravel(), y.ravel()], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, values.ravel(), rcond=None)
    detrended = values - (design @ coefficients).reshape(n, n)
    window = np.outer(np.hanning(n), np.hanning(n))
    power = np.abs(np.fft.fftshift(np.fft.fft2(detrended * window))) ** 2
    fy, fx = np.mgrid[0:n, 0:n] - n // 2
    ring = np.hypot(fx, fy).astype(int)
    sums = np.bincount(ring.ravel(), power.ravel())
    counts = np.bincount(ring.ravel())
    radii = np.arange(1, n // 2)
    return radii / (n * spacing_mm), sums[radii] / counts[radii]


def fit_beta(
    frequency: np.ndarray, power: np.ndarray, band_per_mm: tuple[float, float] = DEFAULT_BAND
) -> float:
    """``beta`` such that ``power ~ frequency^-beta`` over ``band_per_mm`` (log-log least squares).

    Raises:
        ValueError: fewer than three frequencies in the band.
    """
    keep = (frequency >= band_per_mm[0]) & (frequency <= band_per_mm[1]) & (power > 0)
    if keep.sum() < 3:
        raise ValueError(f"fewer than 3 frequencies within {band_per_mm} cycles/mm")
    slope, _ = np.polyfit(np.log(frequency[keep]), np.log(power[keep]), 1)
    return float(-slope)


def breast_regions(tissue_mask: np.ndarray, side: int, limit: int = 8) -> list[tuple[int, int]]:
    """Top-left corners of up to ``limit`` non-overlapping ``side x side`` squares fully in
    ``tissue_mask`` (scanned on a grid of ``side``, centre-out)."""
    height, width = tissue_mask.shape
    corners = [
        (r, c) for r in range(0, height - side + 1, side) for c in range(0, width - side + 1, side)
    ]
    centre = np.array([height / 2, width / 2])
    corners.sort(key=lambda rc: float(np.hypot(*(np.array(rc) + side / 2 - centre))))
    chosen = [(r, c) for r, c in corners if tissue_mask[r : r + side, c : c + side].all()]
    return chosen[:limit]


def image_beta(
    pixels: np.ndarray,
    tissue_mask: np.ndarray,
    spacing_mm: float,
    *,
    region_mm: float = 25.6,
    band_per_mm: tuple[float, float] = DEFAULT_BAND,
) -> tuple[float, int]:
    """``(beta, regions used)`` of an image, from regions of ``region_mm`` inside the tissue.

    Raises:
        ValueError: no region fits inside the tissue mask.
    """
    side = max(8, round(region_mm / spacing_mm))
    corners = breast_regions(tissue_mask, side)
    if not corners:
        raise ValueError(f"no {side}x{side} px region fits inside the breast tissue")
    spectra = [
        radial_power_spectrum(pixels[r : r + side, c : c + side], spacing_mm) for r, c in corners
    ]
    frequency = spectra[0][0]
    power = np.mean([p for _, p in spectra], axis=0)
    return fit_beta(frequency, power, band_per_mm), len(corners)
