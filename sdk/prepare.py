"""From a :class:`~calcsdk.image.Mammogram` to the *working frame* every model sees, and from
working-frame boxes to network-ready ROI crops.

Training (ROI extraction, R-CNN fine-tuning), export parity checks, benchmarks and the SDK all
call these two functions, so a model never sees crops made differently from the ones it was
trained on.

Working frame: the image resampled to the bundle's working pixel spacing (isotropic, mm per
pixel), normalised to float32 [0, 1] by :func:`calcsdk.preprocess.normalize_image` over the
breast mask. ``scale = (sy, sx)`` maps original pixels to working pixels (working = original * s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calcsdk.errors import InvalidPixelsError
from calcsdk.image import Mammogram
from calcsdk.opencv_determinism import without_ipp
from calcsdk.preprocess import breast_mask, normalize_image, resample_to_spacing
from calcsdk.representations import roi_representation
from calcsdk.warp import warp_boxes


@dataclass(frozen=True)
class WorkingImage:
    """A mammogram in the working frame.

    Attributes:
        image01: (h, w) float32 in [0, 1], bright = dense.
        mask: (h, w) bool breast mask (markers and labels excluded).
        spacing_mm: working pixel spacing, mm (isotropic).
        scale: ``(sy, sx)``, working = original * s.
        original_shape: ``(H, W)`` of the original pixels.
        assumed_spacing: True when the original spacing was unknown and a fallback was used.
    """

    image01: np.ndarray
    mask: np.ndarray
    spacing_mm: float
    scale: tuple[float, float]
    original_shape: tuple[int, int]
    assumed_spacing: bool = False


@without_ipp
def prepare_mammogram(
    mammogram: Mammogram, working_spacing_mm: float, fallback_spacing_mm: float | None = None
) -> WorkingImage:
    """Resample to ``working_spacing_mm``, find the breast, normalise to [0, 1].

    ``fallback_spacing_mm`` is used (and ``assumed_spacing`` set) when the file states no
    spacing; with neither, an :class:`InvalidPixelsError` names the file.
    """
    spacing = mammogram.spacing_mm
    assumed = spacing is None
    if spacing is None:
        if fallback_spacing_mm is None:
            raise InvalidPixelsError(
                "pixel spacing is unknown; pass spacing_mm= to read_mammogram", mammogram.source
            )
        spacing = (fallback_spacing_mm, fallback_spacing_mm)
    working, scale = resample_to_spacing(mammogram.pixels, spacing, working_spacing_mm)
    mask = breast_mask(working, working_spacing_mm)
    # no clipping of the bright end: calcifications are the brightest pixels of the breast
    image01 = normalize_image(working, mask, low_pct=0.5, high_pct=100.0)
    return WorkingImage(
        image01=image01,
        mask=mask,
        spacing_mm=float(working_spacing_mm),
        scale=(float(scale[0]), float(scale[1])),
        original_shape=(int(mammogram.pixels.shape[0]), int(mammogram.pixels.shape[1])),
        assumed_spacing=assumed,
    )


@without_ipp
def roi_crops(
    image01: np.ndarray,
    boxes: np.ndarray,
    *,
    representation: str = "grayscale",
    size: int = 227,
    context_pad: int = 16,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Warp working-frame ``boxes`` ((N, 4) float32 xyxy) of ``image01`` to network input.

    Returns (N, 1, size, size) float32: each crop warped with R-CNN context padding
    (:func:`calcsdk.warp.warp_boxes`) then turned into the paper's ``representation``
    (``"grayscale"`` min-max to [0, 1], ``"binary"`` or ``"filtered"``). ``out``, if given, is a
    reusable (>=N, 1, size, size) float32 buffer.
    """
    n = len(boxes)
    if out is None or out.shape[0] < n or out.shape[1:] != (1, size, size):
        out = np.empty((n, 1, size, size), np.float32)
    crops = warp_boxes(image01, boxes, size=size, context_pad=context_pad, out=out[:n, 0])
    roi_representation(crops, representation, out=crops)  # in place
    return out[:n]
