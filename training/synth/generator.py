"""One synthetic mammogram from a seed and a plan: pixels plus ground truth.

Pipeline (each step one module):
anatomy (outline, thickness, skin, muscle) -> texture (glandular fraction, 1/f^beta) ->
structures (vessels, ducts, ligaments) -> Beer-Lambert line integral -> calcification clusters
added in the attenuation domain -> laterality flip -> lead marker -> exposure (scatter, heel,
Poisson + electronic noise, detector MTF) -> FFDM "for presentation" processing or digitised
film -> burned-in labels.

Randomness: patient-level properties (breast size and thickness, acquisition and processing
settings) come from ``SeedSequence([seed, PATIENT_STREAM, patient])``, everything else from
``SeedSequence([seed, index])``, so an image does not depend on which process draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from calcsdk.training.synth.acquisition import (
    MU_BLOOD,
    MU_FAT,
    MU_GLAND,
    Exposure,
    draw_exposure,
    expose,
    fat_line_integral,
    tissue_line_integral,
)
from calcsdk.training.synth.anatomy import Anatomy, BreastShape, build_anatomy, draw_breast_shape
from calcsdk.training.synth.clusters import Cluster, add_clusters
from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.markers import Occupancy, add_lead_marker, burn_labels
from calcsdk.training.synth.plan import ImagePlan
from calcsdk.training.synth.presentation import (
    Film,
    Processing,
    digitised_film,
    draw_film,
    draw_processing,
    ffdm_for_presentation,
)
from calcsdk.training.synth.structures import ducts, muscle_texture, septa, vessels
from calcsdk.training.synth.texture import TissueGrid, glandular_fraction

PATIENT_STREAM = 0x50415449  # "PATI": keeps patient-level draws apart from image draws
FILM_BITS = 8


@dataclass(frozen=True)
class SyntheticImage:
    """A generated mammogram in its displayed orientation.

    Attributes:
        pixels: ``(H, W)`` uint16 (FFDM, values below ``2**bits_stored``) or uint8 (film),
            MONOCHROME2: background dark, dense tissue and calcifications bright.
        spacing_mm: pixel pitch in mm (square pixels).
        bits_stored: significant bits (12, 14 or 16 for FFDM, 8 for film).
        clusters: ground truth; boxes ``xyxy`` in pixels of ``pixels`` (x2/y2 exclusive).
        breast_mask: ``(H, W)`` bool, the breast (skin included, markers excluded).
        pectoral_mask: ``(H, W)`` bool, the pectoral muscle (within the breast mask).
        metadata: density, view, laterality, film, dense-area fraction, compressed thickness
            (mm) and the seed/index/patient that identify the image.
    """

    pixels: np.ndarray
    spacing_mm: float
    bits_stored: int
    clusters: tuple[Cluster, ...]
    breast_mask: np.ndarray
    pectoral_mask: np.ndarray
    metadata: dict = field(default_factory=dict)


def patient_rng(seed: int, patient_index: int) -> np.random.Generator:
    """Random generator of one patient's shared properties."""
    return np.random.default_rng(np.random.SeedSequence([seed, PATIENT_STREAM, patient_index]))


def image_rng(seed: int, index: int) -> np.random.Generator:
    """Random generator of image ``index`` of the data set seeded with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def tissue_grid(anatomy: Anatomy, factor: int) -> TissueGrid:
    """The anatomy box-averaged onto the texture grid (``factor`` times coarser)."""
    height, width = anatomy.inside.shape
    size = (max(1, width // factor), max(1, height // factor))

    def coarse(array: np.ndarray) -> np.ndarray:
        return cv2.resize(array, size, interpolation=cv2.INTER_AREA) if factor > 1 else array

    return TissueGrid(
        spacing_mm=anatomy.spacing_mm * width / size[0],
        inside=coarse(anatomy.inside),
        skin_distance_mm=coarse(anatomy.skin_distance_mm),
        muscle=coarse(anatomy.muscle),
        nipple_xy_mm=anatomy.nipple_xy_mm,
    )


def generate_image(config: SynthConfig, plan: ImagePlan) -> SyntheticImage:
    """Draw image ``plan.index`` of a data set.

    Raises:
        ValueError: the clusters of the plan do not fit into the breast (image too small).
    """
    rng = image_rng(plan.seed, plan.index)
    exam = _Exam.draw(patient_rng(plan.seed, plan.patient_index), config, plan.film)
    anatomy = build_anatomy(
        rng, plan.view, (config.height_px, config.width_px), config.spacing_mm, exam.breast
    )
    glandular, dense_fraction, line_integral, fat_mask = _breast_line_integral(
        rng, config, plan, anatomy, exam
    )
    dense = plan.density in ("C", "D")
    clusters = add_clusters(
        rng, line_integral, anatomy, glandular, plan.cluster_labels, dense, config.hard_fraction
    )

    right = plan.laterality == "R"  # right breast: mirrored, chest wall at the right edge
    inside, thickness, muscle = anatomy.inside, anatomy.thickness_mm, anatomy.muscle
    if right:
        flipped = (cv2.flip(a, 1) for a in (line_integral, inside, thickness, muscle))
        line_integral, inside, thickness, muscle = flipped
        fat_mask = fat_mask[:, ::-1]
        clusters = [c.mirrored(config.width_px, config.spacing_mm) for c in clusters]
    occupancy = Occupancy(inside, config.spacing_mm)
    marker_text = plan.laterality + (plan.view if rng.random() < 0.5 else "")
    if config.markers:
        add_lead_marker(line_integral, occupancy, marker_text, right, rng)

    signal, flat = expose(line_integral, inside, exam.exposure, config.spacing_mm, right, rng)
    if plan.film:
        pixels, bits = digitised_film(signal, inside, exam.film, config.spacing_mm, rng), FILM_BITS
    else:
        fat_level = fat_line_integral(exam.breast)
        fat_level -= math.log1p(0.7 * exam.exposure.scatter_to_primary)
        tissue = (inside > 0.99) & (muscle < 0.01)
        pixels = ffdm_for_presentation(
            signal,
            flat,
            thickness,
            inside,
            exam.breast.thickness_mm,
            fat_level,
            fat_mask,
            tissue,
            exam.processing,
            config.bits,
            config.spacing_mm,
        )
        bits = config.bits
    if config.markers:
        kilovolts = int(rng.integers(26, 33))
        labels = (
            f"{plan.laterality} {plan.view}",
            f"{plan.patient_id}  {round(exam.breast.thickness_mm)} mm  {kilovolts} kV",
        )
        burn_labels(pixels, occupancy, labels, right, plan.film, (1 << bits) - 1, rng)

    metadata = {
        "index": plan.index,
        "seed": plan.seed,
        "patient_id": plan.patient_id,
        "view": plan.view,
        "laterality": plan.laterality,
        "density": plan.density,
        "film": plan.film,
        "dense_area_fraction": round(dense_fraction, 4),
        "compressed_thickness_mm": round(exam.breast.thickness_mm, 2),
    }
    return SyntheticImage(
        pixels, config.spacing_mm, bits, tuple(clusters), inside > 0.5, muscle > 0.02, metadata
    )


@dataclass(frozen=True)
class _Exam:
    """What a patient's four images share: breast size, acquisition and processing."""

    breast: BreastShape
    exposure: Exposure
    processing: Processing
    film: Film

    @staticmethod
    def draw(rng: np.random.Generator, config: SynthConfig, film: bool) -> _Exam:
        breast = draw_breast_shape(rng, config.width_mm, config.height_mm)
        return _Exam(breast, draw_exposure(rng, film), draw_processing(rng), draw_film(rng))


def _breast_line_integral(
    rng: np.random.Generator, config: SynthConfig, plan: ImagePlan, anatomy: Anatomy, exam: _Exam
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Tissue of the breast, canonical frame.

    Returns:
        ``(glandular, dense_area_fraction, line_integral, fat_mask)``: the glandular fraction on
        the texture grid, the achieved dense share, the ``(H, W)`` float32 line integral of
        skin, fat, glands, muscle, vessels, ducts and ligaments, and the ``(H, W)`` bool mask of
        pure fat at full thickness (the display's fat reference).
    """
    grid = tissue_grid(anatomy, config.tissue_factor)
    glandular, dense_fraction = glandular_fraction(rng, grid, plan.density)
    # vessels and ducts displace the tissue around them: their contrast fades in dense tissue
    # (and over the pectoral muscle, behind which the breast's vessels do not run)
    outside_muscle = 1.0 - np.minimum(grid.muscle * np.float32(10.0), 1.0)
    blood_vs_gland = np.float32((MU_GLAND - MU_FAT) / (MU_BLOOD - MU_FAT))
    extra = vessels(rng, grid) * (1.0 - glandular * blood_vs_gland)
    extra += ducts(rng, grid) * (1.0 - glandular)
    extra *= outside_muscle
    extra += septa(rng, grid, glandular)
    extra += muscle_texture(rng, grid, exam.breast.thickness_mm)

    full = (config.width_px, config.height_px)
    glandular_full = cv2.resize(glandular, full, interpolation=cv2.INTER_LINEAR)
    line_integral = tissue_line_integral(anatomy, glandular_full)
    line_integral += cv2.resize(extra, full, interpolation=cv2.INTER_LINEAR) * anatomy.inside
    fat_mask = (glandular_full < 0.02) & (anatomy.muscle < 0.01)
    fat_mask &= anatomy.skin_distance_mm > exam.breast.edge_mm
    return glandular, dense_fraction, line_integral, fat_mask
