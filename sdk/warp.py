"""R-CNN crop-and-warp: each box, with context, warped to a fixed ``size x size`` square.

The one implementation used by training ROI extraction, the R-CNN pipeline and benchmarks.

Box convention (the project's): ``xyxy`` float32 in the image's continuous pixel frame, pixel
``(y, x)`` covering ``[x, x + 1) x [y, y + 1)``, so ``x2``/``y2`` are exclusive and a box
``(0, 0, W, H)`` is the whole image.

Geometry (Girshick et al. 2014, "warp" with context padding ``p``): the box is scaled about its
centre by ``size / (size - 2 p)``, so that after the anisotropic warp of that dilated box onto
``size x size`` pixels the original box fills the central ``size - 2 p`` pixels and ``p`` pixels
of image context surround it. Output pixel ``(v, u)`` samples the dilated box ``[X1, X2) x
[Y1, Y2)`` at the continuous point ``x = X1 + (u + 0.5) (X2 - X1) / size`` (same for y), i.e.
pixel centres map to pixel centres; with ``p = 0`` an integer box of exactly ``size x size``
pixels reproduces the crop exactly.

Sampling: one ``cv2.warpAffine`` per box, INTER_LINEAR, BORDER_REPLICATE (or zeros) outside
the image. OpenCV 4 quantises source coordinates to 1/32 pixel (a value may then differ from
exact bilinear interpolation by up to 1/64 of the local pixel-to-pixel difference); OpenCV 5.0
interpolates float images at the exact coordinates (measured: errors at float32 rounding).

Anti-aliasing: bilinear sampling of a box shrunk by more than 2x would skip pixels (a bright
calcification could vanish or flicker with the box position). When the output samples the
source at a step of 2 pixels or more (``scale = size / box_side < 0.5`` along the less-shrunk
axis), the box is sampled from the Gaussian pyramid level ``k = floor(log2(1 / scale))``
(``cv2.pyrDown`` applied ``k`` times, built once per call and only as deep as needed), where the
step is in ``[1, 2)`` pixels. ``pyrDown`` keeps even pixels, so level-``k`` pixel ``i`` is centred
on full-resolution pixel ``2**k * i``; the affine map accounts for that. The level is chosen by the
less-shrunk axis, so no axis is blurred more than needed; on a box more elongated than the crop
the more-shrunk axis may still be sampled at a step of up to ``2 * aspect`` pixels.

Runtime code: numpy and OpenCV only.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from calcsdk.preprocess import check_pixels

__all__ = ["CONTEXT_PAD", "ROI_SIZE", "context_scale", "warp_boxes"]

ROI_SIZE = 227  # AlexNet input side (pixels), as in the paper
CONTEXT_PAD = 16  # R-CNN context padding (pixels at the warped scale)
_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "zero": cv2.BORDER_CONSTANT}


def context_scale(size: int = ROI_SIZE, context_pad: int = CONTEXT_PAD) -> float:
    """Factor by which a box is dilated about its centre: ``size / (size - 2 * context_pad)``."""
    if size < 1 or context_pad < 0 or 2 * context_pad >= size:
        raise ValueError(
            f"need size >= 1 and 0 <= 2 * context_pad < size, got size={size}, "
            f"context_pad={context_pad}"
        )
    return size / (size - 2 * context_pad)


def warp_boxes(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    *,
    size: int = ROI_SIZE,
    context_pad: int = CONTEXT_PAD,
    out: np.ndarray | None = None,
    fill: str = "replicate",
) -> np.ndarray:
    """Warp each box (with context) of a 2-D image to a ``size x size`` float32 crop.

    Args:
        image: ``(H, W)`` image, any numeric dtype (converted to float32 once per call).
        boxes_xyxy: ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in ``image``'s pixel frame, x2/y2
            exclusive, ``x1 < x2`` and ``y1 < y2``, finite; boxes may extend past the image.
        size: output side in pixels.
        context_pad: pixels of context around the box at the output scale (0 = tight warp).
        out: optional preallocated C-contiguous float32 buffer ``(M, size, size)``, ``M >= N``;
            its first N crops are overwritten and ``out[:N]`` is returned (no allocation).
        fill: ``"replicate"`` (border replication, default) or ``"zero"`` outside the image.

    Returns:
        ``(N, size, size)`` float32; ``(0, size, size)`` when N == 0.

    Raises:
        ValueError: boxes not ``(N, 4)``, non-finite or empty (``x2 <= x1`` or ``y2 <= y1``);
            bad ``size``/``context_pad``/``fill``; an ``out`` buffer of the wrong shape/dtype.
        ImageDtypeError, EmptyImageError, InvalidPixelsError: as ``preprocess.check_pixels``.
    """
    dilation = context_scale(size, context_pad)
    if fill not in _BORDERS:
        raise ValueError(f"fill should be one of {tuple(_BORDERS)}, got {fill!r}")
    image = check_pixels(image)
    boxes = _check_boxes(boxes_xyxy)
    crops = _output_buffer(out, len(boxes), size)
    if len(boxes) == 0:
        return crops
    pyramid = [image.astype(np.float32, copy=False)]  # level k: pyrDown applied k times

    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    halves = (boxes[:, 2:] - boxes[:, :2]) * (dilation / 2)
    for index, ((cx, cy), (half_w, half_h)) in enumerate(zip(centres, halves)):
        x1, y1 = cx - half_w, cy - half_h
        step_x, step_y = 2 * half_w / size, 2 * half_h / size  # source pixels per output pixel
        level = _pyramid_level(min(step_x, step_y), pyramid)
        factor = 2.0**level
        # Output pixel u samples x = x1 + (u + 0.5) * step_x in the continuous frame, i.e.
        # OpenCV pixel-centre coordinate x - 0.5 at level 0, (x - 0.5) / 2**k at level k.
        affine = np.array(
            [
                [step_x / factor, 0.0, (x1 + 0.5 * step_x - 0.5) / factor],
                [0.0, step_y / factor, (y1 + 0.5 * step_y - 0.5) / factor],
            ]
        )
        cv2.warpAffine(
            pyramid[level],
            affine,
            (size, size),
            dst=crops[index],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=_BORDERS[fill],
            borderValue=0.0,
        )
    return crops


def _pyramid_level(step: float, pyramid: list[np.ndarray]) -> int:
    """Level where ``step`` source pixels per output pixel become ``[1, 2)``; extends the list."""
    level = max(0, math.floor(math.log2(step))) if step >= 2 else 0
    while len(pyramid) <= level:
        top = pyramid[-1]
        if max(top.shape) <= 1:  # a 1x1 level cannot shrink further
            return len(pyramid) - 1
        pyramid.append(cv2.pyrDown(top, borderType=cv2.BORDER_REPLICATE))
    return level


def _check_boxes(boxes_xyxy: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        if boxes.size == 0:
            return boxes.reshape(0, 4)
        raise ValueError(f"boxes should be of shape (N, 4), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError("boxes contain NaN or infinite coordinates")
    empty = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if empty.any():
        first = int(np.flatnonzero(empty)[0])
        raise ValueError(
            f"boxes should satisfy x1 < x2 and y1 < y2; box {first} is {boxes[first].tolist()}"
        )
    return boxes


def _output_buffer(out: np.ndarray | None, count: int, size: int) -> np.ndarray:
    if out is None:
        return np.empty((count, size, size), dtype=np.float32)
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        raise ValueError(f"out should be a float32 numpy array, got {getattr(out, 'dtype', out)}")
    if out.ndim != 3 or out.shape[1:] != (size, size) or out.shape[0] < count:
        raise ValueError(f"out should be of shape (>={count}, {size}, {size}), got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out should be C-contiguous")
    return out[:count]
