"""From detected quanta to stored pixels: FFDM "for presentation" processing, or screen-film.

FFDM (MONOCHROME2, bright = attenuating, as vendors' processed images): flat-field correction
(removes the heel effect and the gain pattern), log transform, peripheral (thickness)
equalisation so the periphery and the skin line stay visible, unsharp-mask enhancement inside
the breast, and a display curve windowed on the breast; quantised to 12, 14 or 16 bits.

Screen-film, digitised: the film's characteristic (H&D) curve maps log exposure to optical
density ``D = Dmin + (Dmax - Dmin) / (1 + exp(-k (log10 E - log10 E0)))`` with mid-slope
``gamma = k (Dmax - Dmin) / 4`` (mammography films: 3-4); the AEC places the breast around an
optical density of 1.5-2.1; film grain adds density noise growing with ``sqrt(D)``; a digitiser
linear in optical density stores 8-bit values (low density bright). No flat field: the heel
effect shows, and the thin periphery is burned out as on real films.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from calcsdk.training.synth.acquisition import MU_FAT, MU_GLAND

MIN_SPAN = 0.5  # window limits, as shares of the fat-to-all-glandular contrast
MAX_SPAN = 1.1
_SHOULDER = 0.75  # display level above which the curve rolls off towards white
_LUT_TOP = 2.0  # linear display values above this are white (tanh(5) ~ 1)
_LUT_SIZE = 1 << 16
_MIN_FAT_SAMPLES = 200  # sampled pixels (every 4th row/column) needed to measure the fat level


@dataclass(frozen=True)
class Processing:
    """FFDM image processing of one vendor/exam (three bands in the log domain).

    Attributes:
        equalization: share of the peripheral thickness fall-off compensated, in [0, 1].
        compression: share of the large-scale (``compression_sigma_mm``) contrast removed:
            the dynamic-range compression that keeps dense tissue from saturating.
        compression_sigma_mm: scale of the dynamic-range compression, mm.
        enhance_amount, enhance_sigma_mm: mid-scale unsharp-mask gain and scale (mm).
        detail_amount, detail_sigma_mm: fine unsharp-mask gain and scale (mm).
        gamma: display curve exponent on the windowed log signal.
        fat_display: display level (0-1, before gamma) given to fatty tissue.
        top_display: display level (0-1, before the shoulder and gamma) given to the
            99.5th percentile of the breast tissue, within the limits of ``MIN_SPAN``..
            ``MAX_SPAN`` glandular contrast, so the window adapts to the image as vendors'
            histogram-based windows do, but a fatty breast still looks darker than a dense one.
        background: background level as a fraction of full scale.
    """

    equalization: float
    compression: float
    compression_sigma_mm: float
    enhance_amount: float
    enhance_sigma_mm: float
    detail_amount: float
    detail_sigma_mm: float
    gamma: float
    fat_display: float
    top_display: float
    background: float


@dataclass(frozen=True)
class Film:
    """Screen-film and digitiser of one exam.

    Attributes:
        gamma: mid-slope of the characteristic curve (optical density per decade of exposure).
        d_min, d_max: base-plus-fog and maximum optical density.
        target_density: optical density the AEC gives the median of the breast.
        grain: film-grain density noise at D = 1.
        digitiser_max_density: optical density stored as 0 (the digitiser's range).
    """

    gamma: float
    d_min: float
    d_max: float
    target_density: float
    grain: float
    digitiser_max_density: float


def draw_processing(rng: np.random.Generator) -> Processing:
    """Processing parameters of one FFDM exam (vendor-like variety)."""
    return Processing(
        equalization=float(rng.uniform(0.8, 0.95)),
        compression=float(rng.uniform(0.3, 0.65)),
        compression_sigma_mm=float(rng.uniform(12.0, 30.0)),
        enhance_amount=float(rng.uniform(0.2, 0.8)),
        enhance_sigma_mm=float(rng.uniform(2.0, 5.0)),
        detail_amount=float(rng.uniform(0.1, 0.5)),
        detail_sigma_mm=float(rng.uniform(0.25, 0.6)),
        gamma=float(rng.uniform(0.9, 1.4)),
        fat_display=float(rng.uniform(0.25, 0.42)),
        top_display=float(rng.uniform(0.85, 1.0)),
        background=float(0.0 if rng.random() < 0.7 else rng.uniform(0.0, 0.03)),
    )


def draw_film(rng: np.random.Generator) -> Film:
    """Film and digitiser parameters of one screen-film exam."""
    return Film(
        gamma=float(rng.uniform(2.8, 3.8)),
        d_min=float(rng.uniform(0.15, 0.25)),
        d_max=float(rng.uniform(3.6, 4.1)),
        target_density=float(rng.uniform(1.5, 2.1)),
        grain=float(rng.uniform(0.01, 0.025)),
        digitiser_max_density=float(rng.uniform(3.4, 4.0)),
    )


def ffdm_for_presentation(
    signal: np.ndarray,
    flat: np.ndarray,
    thickness_mm: np.ndarray,
    inside: np.ndarray,
    compressed_mm: float,
    fat_level: float,
    fat_mask: np.ndarray | None,
    tissue_mask: np.ndarray,
    processing: Processing,
    bits: int,
    spacing_mm: float,
) -> np.ndarray:
    """Processed FFDM image.

    Args:
        signal: ``(H, W)`` float32 detected quanta.
        flat: ``(W,)`` float32 expected open-field quanta per column.
        thickness_mm: ``(H, W)`` breast thickness (the equalisation's thickness estimate).
        inside: ``(H, W)`` breast coverage in [0, 1].
        compressed_mm: compressed thickness T0, mm.
        fat_level: expected log signal of fatty tissue at full thickness (used when the
            image has too little pure fat to measure it).
        fat_mask: ``(H, W)`` bool, pixels of pure fat at full thickness, or None.
        tissue_mask: ``(H, W)`` bool, breast tissue for the window (muscle excluded).
        processing: vendor processing parameters.
        bits: bits stored (12, 14 or 16).
        spacing_mm: pixel pitch, mm.

    Returns:
        ``(H, W)`` uint16 in ``[0, 2**bits - 1]``, MONOCHROME2.
    """
    transmission = signal * (1.0 / flat)[None, :]
    np.maximum(transmission, np.float32(1e-4), out=transmission)
    log_signal = cv2.log(transmission)
    log_signal *= -1.0
    compensation = np.float32(compressed_mm) - thickness_mm
    compensation *= inside
    compensation *= np.float32(processing.equalization * MU_FAT)
    log_signal += compensation
    # dynamic-range compression: out = image - c * inside * (large-scale mean - its median)
    large = _breast_mean(log_signal, inside, processing.compression_sigma_mm, spacing_mm)
    reference = (
        float(np.median(large[::8, ::8][inside[::8, ::8] > 0.99]))
        if (inside[::8, ::8] > 0.99).any()
        else 0.0
    )
    large -= np.float32(reference)
    large *= inside
    large *= np.float32(processing.compression)
    enhanced = log_signal - large
    # mid-scale unsharp mask: out = image + a * inside * (image - local mean)
    local = _breast_mean(enhanced, inside, processing.enhance_sigma_mm, spacing_mm)
    local -= enhanced
    local *= inside
    local *= np.float32(-processing.enhance_amount)
    enhanced += local
    fine = _blur(enhanced, processing.detail_sigma_mm / spacing_mm)
    fine -= enhanced
    fine *= inside
    fine *= np.float32(-processing.detail_amount)
    enhanced += fine

    fat_samples = (
        enhanced[::4, ::4][fat_mask[::4, ::4]] if fat_mask is not None else enhanced[:0, 0]
    )
    fat = float(np.median(fat_samples)) if fat_samples.size >= _MIN_FAT_SAMPLES else fat_level
    tissue = enhanced[::4, ::4][tissue_mask[::4, ::4]]
    top = float(np.percentile(tissue, 99.5)) if tissue.size else fat + 1.0
    contrast = (MU_GLAND - MU_FAT) * compressed_mm  # fat vs. all-glandular path
    span = (
        (top - fat)
        * (1.0 - processing.fat_display)
        / (processing.top_display - processing.fat_display)
    )
    span = float(np.clip(span, MIN_SPAN * contrast, MAX_SPAN * contrast))
    # linear display value v: fat at ``fat_display``, +1 per ``span`` of log signal, then the
    # display curve (shoulder, gamma, quantisation) as a lookup table over v in [0, _LUT_TOP]
    scale = (1.0 - processing.fat_display) / span * (_LUT_SIZE - 1) / _LUT_TOP
    enhanced -= np.float32(fat - processing.fat_display / ((1.0 - processing.fat_display) / span))
    enhanced *= np.float32(scale)
    np.clip(enhanced, 0.0, _LUT_SIZE - 1, out=enhanced)
    enhanced += 0.5
    return display_lut(processing, bits)[enhanced.astype(np.int32)]


def display_lut(processing: Processing, bits: int) -> np.ndarray:
    """Stored value for each linear display value ``v = i * _LUT_TOP / (_LUT_SIZE - 1)``:
    soft shoulder above ``_SHOULDER`` (dense tissue rolls off below white, leaving headroom for
    calcium), gamma, background offset, rounding to ``bits``. ``(_LUT_SIZE,)`` uint16."""
    v = np.linspace(0.0, _LUT_TOP, _LUT_SIZE)
    top = v > _SHOULDER
    v[top] = _SHOULDER + (1.0 - _SHOULDER) * np.tanh((v[top] - _SHOULDER) / (1.0 - _SHOULDER))
    v = np.clip(v, 0.0, 1.0) ** processing.gamma
    full_scale = (1 << bits) - 1
    values = processing.background * full_scale + v * (1.0 - processing.background) * full_scale
    return np.rint(values).astype(np.uint16)


def _blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; for ``sigma_px >= 3`` done at half resolution (same result to within
    the fine band that the half-resolution averaging removes anyway)."""
    if sigma_px < 3.0:
        return cv2.GaussianBlur(image, (0, 0), sigma_px)
    rows, cols = image.shape
    small = cv2.resize(image, (max(1, cols // 2), max(1, rows // 2)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma_px / 2)
    return cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)


def _breast_mean(
    image: np.ndarray, inside: np.ndarray, sigma_mm: float, spacing_mm: float
) -> np.ndarray:
    """Local mean of ``image`` over the breast only: a Gaussian (``sigma_mm``) normalised
    convolution weighted by ``inside``, computed on a grid about ``sigma / 4`` coarse so the
    background does not pull the periphery down. ``(H, W)`` float32."""
    height, width = image.shape
    factor = max(1, int(sigma_mm / spacing_mm / 4))
    size = (max(1, width // factor), max(1, height // factor))
    sigma = sigma_mm / (spacing_mm * factor)
    weight = cv2.resize(inside, size, interpolation=cv2.INTER_AREA)
    values = cv2.resize(image * inside, size, interpolation=cv2.INTER_AREA)
    mean = cv2.GaussianBlur(values, (0, 0), sigma) / np.maximum(
        cv2.GaussianBlur(weight, (0, 0), sigma), 1e-3
    )
    return cv2.resize(mean, (width, height), interpolation=cv2.INTER_LINEAR)


def digitised_film(
    signal: np.ndarray, inside: np.ndarray, film: Film, spacing_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Digitised screen-film image, ``(H, W)`` uint8, MONOCHROME2 (bright = low density).

    Args:
        signal: ``(H, W)`` float32 exposure of the film (detected quanta, heel included).
        inside: ``(H, W)`` breast coverage in [0, 1] (for the AEC).
        film: film and digitiser parameters.
        spacing_mm: pixel pitch, mm (sets the grain correlation).
        rng: the image's random generator.
    """
    log_exposure = cv2.log(np.maximum(signal, np.float32(1.0)))
    log_exposure *= np.float32(1.0 / math.log(10.0))
    breast = inside[::4, ::4] > 0.99
    sample = log_exposure[::4, ::4][breast]
    reference = float(np.median(sample)) if sample.size else float(np.median(log_exposure))
    spread = film.d_max - film.d_min
    k = 4.0 * film.gamma / spread
    share = (film.target_density - film.d_min) / spread
    speed_point = reference - math.log(share / (1.0 - share)) / k
    density = log_exposure - np.float32(speed_point)
    density *= np.float32(-k)
    density = cv2.exp(density)
    density += 1.0
    density = np.float32(spread) / density
    density += np.float32(film.d_min)

    grain = rng.standard_normal(density.shape, dtype=np.float32)
    grain_sigma = max(0.3, 0.02 / spacing_mm)  # grain clumps of ~20 um, seen through the pixel
    grain = cv2.GaussianBlur(grain, (0, 0), grain_sigma)
    grain *= np.float32(film.grain / max(float(grain.std()), 1e-6))
    grain *= cv2.sqrt(density)
    density += grain
    values = np.float32(film.digitiser_max_density) - density
    values *= np.float32(255.0 / film.digitiser_max_density)
    values += rng.standard_normal(values.shape, dtype=np.float32) * np.float32(0.6)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
