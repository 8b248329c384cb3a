"""Insert synthetic calcification clusters into mammograms supplied by the user.

Each background is read with :func:`calcsdk.image.read_mammogram` (bright = dense) and its
breast found with :func:`calcsdk.preprocess.breast_mask`. Clusters are drawn exactly as in
synthetic images (sizes in mm, scaled by the background's own pixel spacing), inside the
breast mask, blurred by a nominal detector MTF and added in the attenuation (log) domain.

Calibration (stated assumption): a processed "for presentation" mammogram is close to linear
in log exposure across the breast, so a line-integral increment ``dL`` maps to
``k * dL`` pixel values, with ``k`` estimated from the breast's own contrast: the 2nd-98th
percentile range of the breast pixels is taken to span the attenuation range of glandular
against fatty tissue, ``(mu_gland - mu_fat) * 45 mm * 0.6 ~ 0.93``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from calcsdk.image import read_mammogram
from calcsdk.preprocess import breast_mask
from calcsdk.training.synth.acquisition import MU_FAT, MU_GLAND
from calcsdk.training.synth.anatomy import Anatomy
from calcsdk.training.synth.clusters import add_clusters
from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.generator import SyntheticImage, image_rng
from calcsdk.training.synth.plan import ImagePlan

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".dcm", ".dicom", ".tif", ".tiff", ".pgm", ".jpg", ".jpeg")
REFERENCE_RANGE = (MU_GLAND - MU_FAT) * 45.0 * 0.6  # line integral spanned by p2..p98
NOMINAL_BLUR_MM = 0.06  # detector point spread applied to the inserted calcifications
_GRID_MM = 0.4  # grid of the placement weights


def list_backgrounds(directory: str | os.PathLike) -> list[Path]:
    """Image files directly under ``directory`` (sorted by name).

    Raises:
        FileNotFoundError: ``directory`` is not a folder.
        ValueError: it holds no image file.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: backgrounds folder not found")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def insert_clusters(
    path: str | os.PathLike, plan: ImagePlan, config: SynthConfig
) -> SyntheticImage:
    """The background at ``path`` with the plan's clusters added.

    The spacing is the file's (PNG pHYs, DICOM PixelSpacing) or, when unknown,
    ``config.spacing_mm`` (logged). Pixels keep their dtype and bit depth (float backgrounds
    are scaled to 16 bits).

    Raises:
        CalcSdkError: the file cannot be read; ValueError: the clusters do not fit.
    """
    mammogram = read_mammogram(path)
    spacing = mammogram.spacing_mm[0] if mammogram.spacing_mm else config.spacing_mm
    if mammogram.spacing_mm is None:
        logger.info("%s: no pixel spacing in the file; assuming %.3f mm", path, spacing)
    pixels, bits = _integer_pixels(mammogram.pixels, mammogram.bits_stored)
    mask = breast_mask(pixels, spacing)
    chest_wall_right = _chest_wall_right(mask)
    laterality = mammogram.laterality or ("R" if chest_wall_right else "L")

    rng = image_rng(plan.seed, plan.index)
    anatomy, glandular = _pseudo_anatomy(pixels, mask, spacing, chest_wall_right)
    increment = np.zeros(pixels.shape, dtype=np.float32)
    dense = float(np.mean(glandular[glandular > 0] > 0.5)) > 0.5 if (glandular > 0).any() else False
    clusters = add_clusters(
        rng, increment, anatomy, glandular, plan.cluster_labels, dense, config.hard_fraction
    )
    increment = cv2.GaussianBlur(increment, (0, 0), max(NOMINAL_BLUR_MM / spacing, 0.3))

    values = pixels[::4, ::4][mask[::4, ::4]].astype(np.float32)
    low, high = np.percentile(values, [2.0, 98.0]) if values.size else (0.0, 1.0)
    gain = max(float(high - low), 1.0) / REFERENCE_RANGE
    full_scale = (1 << bits) - 1
    out = np.clip(np.rint(pixels.astype(np.float32) + increment * np.float32(gain)), 0, full_scale)
    metadata = {
        "index": plan.index,
        "seed": plan.seed,
        "patient_id": plan.patient_id,
        "view": mammogram.view,
        "laterality": laterality,
        "density": None,
        "film": False,
        "background": Path(path).name,
    }
    return SyntheticImage(
        out.astype(pixels.dtype),
        spacing,
        bits,
        tuple(clusters),
        mask,
        np.zeros_like(mask),
        metadata,
    )


def _integer_pixels(pixels: np.ndarray, bits: int | None) -> tuple[np.ndarray, int]:
    if pixels.dtype.kind == "u":
        return pixels, int(bits or pixels.dtype.itemsize * 8)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) * (65535.0 / max(high - low, 1e-12))
    return np.rint(scaled).astype(np.uint16), 16


def _chest_wall_right(mask: np.ndarray) -> bool:
    """The chest wall is on the side whose edge column the breast touches most."""
    return int(mask[:, -1].sum()) > int(mask[:, 0].sum())


def _pseudo_anatomy(pixels, mask, spacing, chest_wall_right) -> tuple[Anatomy, np.ndarray]:
    """What cluster placement needs: skin distance, nipple, and glandular-looking weights."""
    height, width = mask.shape
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_5)[1:-1, 1:-1] * np.float32(
        spacing
    )
    columns = np.nonzero(mask.any(axis=0))[0]
    if len(columns):
        tip_col = int(columns.min() if chest_wall_right else columns.max())
        tip_row = int(np.mean(np.nonzero(mask[:, tip_col])[0]))
    else:
        tip_col, tip_row = width // 2, height // 2
    zeros = np.zeros((height, width), dtype=np.float32)
    anatomy = Anatomy(
        spacing_mm=spacing,
        view="CC",
        inside=mask.astype(np.float32),
        skin_distance_mm=distance,
        thickness_mm=zeros,
        tissue_path_mm=zeros,
        muscle=zeros,
        nipple_xy_mm=((tip_col + 0.5) * spacing, (tip_row + 0.5) * spacing),
        compressed_mm=0.0,
    )
    step = max(1, round(_GRID_MM / spacing))
    coarse = pixels[::step, ::step].astype(np.float32)
    inside = mask[::step, ::step]
    values = coarse[inside]
    if values.size:
        low, high = np.percentile(values, [10.0, 95.0])
        glandular = np.clip((coarse - low) / max(float(high - low), 1e-6), 0.0, 1.0) * inside
    else:
        glandular = np.zeros_like(coarse)
    return anatomy, glandular.astype(np.float32)
