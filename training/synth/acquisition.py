"""X-ray acquisition: Beer-Lambert attenuation, scatter, heel effect, quantum and detector noise.

Everything attenuating is added in the log domain as a line integral ``L = sum(mu_i * t_i)``
(dimensionless). The primary fluence behind the breast is ``I0 * heel * exp(-L)``; scatter adds
a low-pass copy of the primary (scatter-to-primary ratio with an anti-scatter grid, 0.1-0.3);
detected quanta are Poisson (drawn as ``q + sqrt(q) z``, exact to well below one quantum at the
hundreds to tens of thousands of quanta per pixel met here); the detector MTF blurs signal and
quantum noise alike (an indirect CsI detector; screen blur for film); electronic noise is added
after the blur.

Linear attenuation coefficients at the ~20 keV mean energy of a Mo/Rh or W/Rh beam (Johns &
Yaffe 1987; Hammerstein et al. 1979), in 1/mm: adipose 0.0456, fibroglandular 0.0802, skin
0.080, muscle and blood 0.085. Calcium hydroxyapatite (3.06 g/cm^3) is about 2.4/mm and calcium
oxalate about 1.0/mm; calcifications are rarely solid, so the calcification module scales this.

Dose: about 100 uGy air kerma behind the breast gives ~6e5 photons/mm^2 at 20 keV; with a
detective quantum efficiency of ~0.3-0.5 that is 1e5-3e5 effective quanta per mm^2 at the
automatic exposure control (AEC) point, i.e. a few thousand per 0.1 mm pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from calcsdk.training.synth.anatomy import Anatomy, BreastShape

MU_FAT = 0.0456  # 1/mm, adipose tissue at ~20 keV
MU_GLAND = 0.0802  # 1/mm, fibroglandular tissue
MU_SKIN = 0.080  # 1/mm
MU_MUSCLE = 0.085  # 1/mm, pectoral muscle
MU_BLOOD = 0.085  # 1/mm, vessels
MU_HYDROXYAPATITE = 2.4  # 1/mm, solid calcium hydroxyapatite
MU_OXALATE = 1.0  # 1/mm, calcium oxalate (weddellite)
MU_LEAD_MARKER = 8.0  # line integral of a lead marker letter: opaque


@dataclass(frozen=True)
class Exposure:
    """Per-exam acquisition settings.

    Attributes:
        quanta_per_mm2: effective detected quanta per mm^2 at the AEC point.
        electronic_noise: std of the additive detector noise, in quanta per pixel.
        blur_mm: Gaussian sigma (mm) of the detector (or screen) point spread function.
        scatter_to_primary: scatter-to-primary ratio under the breast.
        scatter_sigma_mm: width of the scatter point spread function, mm.
        heel: relative fluence drop from the chest wall to the opposite edge (anode side).
        aec_percentile: percentile of the breast line integral the AEC exposes for.
    """

    quanta_per_mm2: float
    electronic_noise: float
    blur_mm: float
    scatter_to_primary: float
    scatter_sigma_mm: float
    heel: float
    aec_percentile: float


def draw_exposure(rng: np.random.Generator, film: bool) -> Exposure:
    """Acquisition settings of one exam (screen-film exams blur more and have no flat field)."""
    return Exposure(
        quanta_per_mm2=float(rng.uniform(1.0e5, 3.0e5)),
        electronic_noise=float(rng.uniform(2.0, 8.0)),
        blur_mm=float(rng.uniform(0.07, 0.12) if film else rng.uniform(0.035, 0.07)),
        scatter_to_primary=float(rng.uniform(0.1, 0.3)),
        scatter_sigma_mm=float(rng.uniform(10.0, 25.0)),
        heel=float(rng.uniform(0.08, 0.25)),
        aec_percentile=float(rng.uniform(60.0, 85.0)),
    )


def tissue_line_integral(anatomy: Anatomy, glandular: np.ndarray) -> np.ndarray:
    """Line integral of the breast tissue (skin, fat, fibroglandular, muscle).

    Args:
        anatomy: the breast on the ``(H, W)`` grid.
        glandular: ``(H, W)`` float32 glandular fraction of the tissue path, in [0, 1].

    Returns:
        ``(H, W)`` float32 ``L = mu_skin * skin + tissue * (mu_fat + dmu_g g (1 - m) + dmu_m m)``.
    """
    tissue, muscle = anatomy.tissue_path_mm, anatomy.muscle
    mix = glandular * (1.0 - muscle)
    mix *= MU_GLAND - MU_FAT
    mix += muscle * np.float32(MU_MUSCLE - MU_FAT)
    mix += np.float32(MU_FAT)
    mix *= tissue
    mix += (anatomy.thickness_mm - tissue) * np.float32(MU_SKIN)
    return mix.astype(np.float32, copy=False)


def fat_line_integral(breast: BreastShape) -> float:
    """Line integral through the full compressed thickness of purely fatty tissue (skin included)."""
    skin = 2.0 * breast.skin_mm
    return MU_FAT * (breast.thickness_mm - skin) + MU_SKIN * skin


def heel_profile(width: int, chest_wall_right: bool, heel: float) -> np.ndarray:
    """Relative fluence per column, 1 at the chest wall falling by ``heel`` to the far edge."""
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)
    profile = 1.0 - heel * ramp
    return profile[::-1].copy() if chest_wall_right else profile


def expose(
    line_integral: np.ndarray,
    inside: np.ndarray,
    exposure: Exposure,
    spacing_mm: float,
    chest_wall_right: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Detected quanta per pixel for one exposure.

    Args:
        line_integral: ``(H, W)`` float32 total line integral (breast, calcifications, markers).
        inside: ``(H, W)`` breast coverage in [0, 1] (where scatter is generated).
        exposure: acquisition settings.
        spacing_mm: pixel pitch, mm.
        chest_wall_right: True when the chest wall is at the right image edge.
        rng: the image's random generator.

    Returns:
        ``(signal, flat)``: ``(H, W)`` float32 detected quanta (noisy, blurred), and the
        ``(W,)`` float32 expected quanta of an open field (AEC level times the heel profile).
    """
    height, width = line_integral.shape
    breast = inside > 0.5
    sample = line_integral[::4, ::4][breast[::4, ::4]]
    reference = float(np.percentile(sample, exposure.aec_percentile)) if sample.size else 0.0
    open_field = exposure.quanta_per_mm2 * spacing_mm**2 * float(np.exp(reference))
    flat = heel_profile(width, chest_wall_right, exposure.heel) * np.float32(open_field)

    primary = cv2.exp(-line_integral)
    scatter = _scatter(primary, inside, exposure, spacing_mm)
    primary += scatter
    primary *= flat[None, :]
    noise = rng.standard_normal((height, width), dtype=np.float32)
    noise *= cv2.sqrt(primary)
    primary += noise
    sigma_px = exposure.blur_mm / spacing_mm
    signal = cv2.GaussianBlur(primary, (0, 0), sigma_px) if sigma_px > 0.2 else primary
    electronic = rng.standard_normal((height, width), dtype=np.float32)
    electronic *= np.float32(exposure.electronic_noise)
    signal += electronic
    return signal, flat


def _scatter(
    primary: np.ndarray, inside: np.ndarray, exposure: Exposure, spacing_mm: float
) -> np.ndarray:
    """Scatter fluence relative to the open field: SPR times a wide blur of the primary."""
    height, width = primary.shape
    factor = max(1, int(2.0 / spacing_mm))  # compute on a ~2 mm grid
    small_size = (max(1, width // factor), max(1, height // factor))
    source = cv2.resize(primary * inside, small_size, interpolation=cv2.INTER_AREA)
    sigma = exposure.scatter_sigma_mm / (spacing_mm * factor)
    blurred = cv2.GaussianBlur(source, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    norm = cv2.GaussianBlur(np.ones_like(source), (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    scatter = cv2.resize(blurred / norm, (width, height), interpolation=cv2.INTER_LINEAR)
    scatter *= np.float32(exposure.scatter_to_primary)
    return scatter
