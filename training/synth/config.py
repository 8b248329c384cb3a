"""Configuration of the synthetic mammogram generator: one frozen dataclass.

Units: millimetres for physical sizes, pixels for image sizes. The defaults give a
2048 x 2560 image at 0.1 mm (204.8 x 256 mm, between an 18 x 24 cm and a 24 x 30 cm detector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DENSITIES = ("A", "B", "C", "D")
VIEWS = ("CC", "MLO")
LATERALITIES = ("L", "R")
LABELS = ("malignant", "benign")
SUPPORTED_BITS = (12, 14, 16)


@dataclass(frozen=True)
class SynthConfig:
    """How every image of a synthetic data set is made (the per-image randomness is seeded).

    Attributes:
        spacing_mm: detector pixel pitch in mm, 0.05-0.2 (FFDM 0.05-0.1; digitised film up to 0.2).
        width_px, height_px: image size in pixels (columns, rows).
        bits: bits stored of the FFDM images (12, 14 or 16), in a uint16 container.
        film_fraction: share of patients imaged on screen-film and digitised to 8 bits.
        density_weights: prevalence of BI-RADS density A, B, C, D (need not sum to one).
        hard_fraction: share of clusters drawn as hard cases (faint malignant clusters,
            preferably in dense tissue; benign clusters of malignant-like round calcifications).
        tissue_spacing_mm: grid on which the parenchyma texture is synthesised and then
            upsampled (never finer than ``spacing_mm``).
        markers: burn the lead laterality marker and the view/text labels into the background.
    """

    spacing_mm: float = 0.1  # FFDM detectors: 0.05-0.1 mm; the paper's working grid
    width_px: int = 2048  # columns: 204.8 mm at 0.1 mm
    height_px: int = 2560  # rows: 256 mm at 0.1 mm
    bits: int = 12  # "for presentation" FFDM images are commonly 12-bit
    film_fraction: float = 0.2  # a minority of digitised screen-film exams, for variety
    density_weights: tuple[float, float, float, float] = (0.10, 0.40, 0.38, 0.12)  # ACR-like
    hard_fraction: float = 0.25  # hard cases: faint malignant / malignant-looking benign
    tissue_spacing_mm: float = 0.2  # texture grid; the 1/f^3 spectrum has little power finer
    markers: bool = True  # real exams carry a lead "L"/"R" marker and burned-in labels

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spacing_mm) and 0.05 <= self.spacing_mm <= 0.2):
            raise ValueError(f"spacing_mm should be within [0.05, 0.2], got {self.spacing_mm}")
        for name in ("width_px", "height_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 64:
                raise ValueError(f"{name} should be an int >= 64, got {value!r}")
        if self.width_px * self.spacing_mm < 40 or self.height_px * self.spacing_mm < 50:
            raise ValueError(
                "the image should cover at least 40 x 50 mm to hold a breast, got "
                f"{self.width_px * self.spacing_mm:.1f} x {self.height_px * self.spacing_mm:.1f} mm"
            )
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"bits should be one of {SUPPORTED_BITS}, got {self.bits!r}")
        for name in ("film_fraction", "hard_fraction"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} should be within [0, 1], got {value}")
        weights = tuple(float(w) for w in self.density_weights)
        if len(weights) != 4 or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(
                f"density_weights should be 4 non-negative numbers with a positive sum, "
                f"got {self.density_weights!r}"
            )
        if not (math.isfinite(self.tissue_spacing_mm) and 0.05 <= self.tissue_spacing_mm <= 1.0):
            raise ValueError(
                f"tissue_spacing_mm should be within [0.05, 1.0], got {self.tissue_spacing_mm}"
            )

    @property
    def width_mm(self) -> float:
        """Physical image width in mm."""
        return self.width_px * self.spacing_mm

    @property
    def height_mm(self) -> float:
        """Physical image height in mm."""
        return self.height_px * self.spacing_mm

    @property
    def tissue_factor(self) -> int:
        """Integer downsampling factor from the image grid to the texture grid (>= 1)."""
        return max(1, round(self.tissue_spacing_mm / self.spacing_mm))
