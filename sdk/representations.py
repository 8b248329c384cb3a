"""The paper's three ROI representations: grayscale, binary and filtered grayscale.

The paper (Figure 1b) built them in MATLAB from each 227x227 ROI:

- ``grayscale``: the ROI min-max normalised to [0, 1] (``mat2gray``);
- ``binary``: ``imbinarize(I, adaptthresh(I, 0.5, 'ForegroundPolarity', 'bright'))`` on that
  grayscale ROI ``I``, as float32 {0, 1};
- ``filtered``: ``I .* BW``, the logical AND of the grayscale and binary ROIs.

MATLAB semantics reproduced here (from MATLAB's documented algorithm as recorded in the
project's FINDINGS; MATLAB itself is not available to compare against):

- ``adaptthresh`` with the default statistic ``'mean'``: ``T`` is the local mean of ``I`` over an
  odd ``[rows, cols]`` neighbourhood, default ``2*floor(size(I)/16)+1``, the image padded by
  replicating its border; ``T`` is scaled by ``0.6 + (1 - s)`` for a bright foreground (``0.4 + s``
  for a dark one) and clipped to [0, 1].
- ``imbinarize(I, T)`` is ``I > T`` (a pixel equal to its threshold is background).

Remaining ambiguities, stated once:

1. The paper does not say whether ``adaptthresh`` saw the ROI as stored (an 8-bit image that
   MATLAB would scale by 1/255) or after ``mat2gray``. ``T = 1.1 * mean`` is not invariant to an
   intensity offset, so the two differ; we binarise the ``mat2gray`` ROI, as the paper's order
   (normalise, then binarise) suggests.
2. The dark-polarity factor ``0.4 + s`` is taken from the project's notes and was not checked
   against MATLAB's source here; the paper only uses the bright polarity.
3. MATLAB computes in double precision; we compute the local mean in float64 and return
   float32, so a pixel within ~1e-7 of its threshold may compare differently than in MATLAB.
4. MATLAB's ``mat2gray`` on a constant array is not relied upon: a constant ROI maps to zeros.

Runtime code: numpy and OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

from calcsdk.errors import InvalidPixelsError
from calcsdk.preprocess import check_pixels

__all__ = [
    "REPRESENTATIONS",
    "adaptthresh",
    "default_neighborhood",
    "grayscale_roi",
    "imbinarize",
    "roi_representation",
    "roi_representations",
]

REPRESENTATIONS = ("grayscale", "binary", "filtered")
PAPER_SENSITIVITY = 0.5  # the paper's adaptthresh sensitivity
_POLARITIES = ("bright", "dark")


def grayscale_roi(roi: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """MATLAB ``mat2gray``: min-max normalisation of each ROI to float32 ``[0, 1]``.

    Args:
        roi: ``(H, W)`` or a batch ``(N, H, W)``, any numeric or bool dtype; each ROI is scaled
            by its own minimum and maximum.
        out: optional C-contiguous float32 array of ``roi``'s shape to write into; it may be
            ``roi`` itself (in place; on an error, the ROIs before the bad one are already
            written).

    Returns:
        float32 of the same shape in ``[0, 1]`` (``out`` when given); a constant ROI gives
        zeros.

    Raises:
        ImageDtypeError, EmptyImageError, InvalidPixelsError: as ``preprocess.check_pixels``.
        ValueError: ``out`` of the wrong dtype, shape or layout.
    """
    array = np.asarray(roi)
    if array.dtype == np.float32 and array.ndim in (2, 3):
        return _grayscale_float32(_check_roi(array, finite=False), out)
    rois = _check_roi(array)
    # float32 is exact for up to 16-bit integers; wider types are scaled in float64.
    values = rois.astype(np.float64 if rois.dtype.itemsize > 2 else np.float32)  # a copy
    minimum = values.min(axis=(-2, -1), keepdims=True)
    spread = values.max(axis=(-2, -1), keepdims=True) - minimum
    values -= minimum
    values /= np.where(spread > 0, spread, 1)  # a constant ROI is all zeros already
    gray = np.clip(values, 0.0, 1.0, out=values).astype(np.float32, copy=False)
    if out is None:
        return gray
    _check_out(out, gray.shape)[...] = gray
    return out


def _grayscale_float32(rois: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``grayscale_roi`` of float32 ROIs, one ROI at a time so that each pass stays in cache.

    The arithmetic is the batch path's, in float32: ``clip((x - min) / (max - min), 0, 1)``.
    A NaN or infinity shows in the ROI's minimum or maximum, so no separate finiteness pass
    is needed.
    """
    out = np.empty(rois.shape, np.float32) if out is None else _check_out(out, rois.shape)
    sources = rois.reshape(-1, *rois.shape[-2:])
    targets = out.reshape(-1, *rois.shape[-2:])
    for source, target in zip(sources, targets):
        low, high = source.min(), source.max()
        if not (np.isfinite(low) and np.isfinite(high)):
            raise InvalidPixelsError("image contains NaN or infinite values", "<array>")
        spread = high - low
        if spread > 0:
            np.subtract(source, low, out=target)
            np.divide(target, spread, out=target)
            np.clip(target, 0.0, 1.0, out=target)
        else:
            target.fill(0.0)
    return out


def _check_out(out: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(out, np.ndarray) or out.dtype != np.float32:
        raise ValueError(f"out should be a float32 numpy array, got {getattr(out, 'dtype', out)}")
    if out.shape != shape or not out.flags.c_contiguous:
        raise ValueError(f"out should be C-contiguous of shape {shape}, got {out.shape}")
    return out


def default_neighborhood(shape: tuple[int, int]) -> tuple[int, int]:
    """MATLAB's default ``adaptthresh`` neighbourhood ``2*floor(size(I)/16)+1``, ``(rows, cols)``.

    For a 227x227 ROI this is ``(29, 29)``; for images under 16 pixels it is 1 (no smoothing).
    """
    rows, cols = shape
    return 2 * (rows // 16) + 1, 2 * (cols // 16) + 1


def adaptthresh(
    image01: np.ndarray,
    sensitivity: float = PAPER_SENSITIVITY,
    *,
    neighborhood: tuple[int, int] | None = None,
    polarity: str = "bright",
) -> np.ndarray:
    """MATLAB ``adaptthresh(I, s, 'ForegroundPolarity', polarity)`` with the 'mean' statistic.

    ``T = clip(factor * local_mean(I), 0, 1)`` with ``factor = 0.6 + (1 - s)`` for
    ``"bright"`` and ``0.4 + s`` for ``"dark"``; the local mean is over ``neighborhood`` =
    ``(rows, cols)`` pixels (odd), centred, with replicate padding at the border.

    Args:
        image01: ``(H, W)`` image, expected in ``[0, 1]`` (e.g. from :func:`grayscale_roi`);
            not rescaled here.
        sensitivity: ``s`` in ``[0, 1]``; higher marks more pixels as foreground.
        neighborhood: odd positive ``(rows, cols)``; None = :func:`default_neighborhood`.
        polarity: ``"bright"`` (foreground brighter than background, as in the paper) or
            ``"dark"``.

    Returns:
        ``(H, W)`` float32 threshold map in ``[0, 1]``, same pixel frame as ``image01``.

    Raises:
        ValueError: sensitivity outside ``[0, 1]``, an even or non-positive neighbourhood, an
            unknown polarity.
        ImageDtypeError, EmptyImageError, InvalidPixelsError: as ``preprocess.check_pixels``.
    """
    image = check_pixels(image01, ndim=2)
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity should be in [0, 1], got {sensitivity}")
    if polarity not in _POLARITIES:
        raise ValueError(f"polarity should be one of {_POLARITIES}, got {polarity!r}")
    rows, cols = default_neighborhood(image.shape) if neighborhood is None else neighborhood
    if any(int(n) != n or n < 1 or n % 2 == 0 for n in (rows, cols)):
        raise ValueError(f"neighborhood should be two odd positive integers, got {neighborhood}")
    local_mean = cv2.boxFilter(
        image.astype(np.float64),
        -1,
        (int(cols), int(rows)),  # OpenCV wants (width, height)
        normalize=True,
        borderType=cv2.BORDER_REPLICATE,
    )
    factor = 0.6 + (1.0 - sensitivity) if polarity == "bright" else 0.4 + sensitivity
    return np.clip(local_mean * factor, 0.0, 1.0).astype(np.float32)


def imbinarize(image01: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """MATLAB ``imbinarize(I, T)``: True where ``I > T`` strictly (a tie is background).

    Args:
        image01: ``(H, W)`` image in ``[0, 1]``.
        threshold: a scalar or an ``(H, W)`` threshold map (e.g. from :func:`adaptthresh`).

    Returns:
        ``(H, W)`` bool.

    Raises:
        ValueError: a threshold map of another shape, or a non-finite threshold.
        ImageDtypeError, EmptyImageError, InvalidPixelsError: as ``preprocess.check_pixels``.
    """
    image = check_pixels(image01, ndim=2)
    limits = np.asarray(threshold)
    if limits.ndim != 0 and limits.shape != image.shape:
        raise ValueError(
            f"threshold should be a scalar or of shape {image.shape}, got shape {limits.shape}"
        )
    if not np.all(np.isfinite(limits)):
        raise ValueError("threshold contains NaN or infinite values")
    return image > limits


def roi_representation(roi: np.ndarray, kind: str, *, out: np.ndarray | None = None) -> np.ndarray:
    """One of the paper's ROI representations (see :data:`REPRESENTATIONS`).

    Args:
        roi: ``(H, W)`` or a batch ``(N, H, W)``, any numeric dtype (227x227 in use).
        kind: ``"grayscale"``, ``"binary"`` or ``"filtered"``.
        out: optional C-contiguous float32 array of ``roi``'s shape to write into; it may be
            ``roi`` itself (see :func:`grayscale_roi`).

    Returns:
        float32 of the shape of ``roi`` in ``[0, 1]`` (``binary`` holds only 0 and 1); ``out``
        when given.

    Raises:
        ValueError: unknown ``kind``; ``out`` of the wrong dtype, shape or layout.
        ImageDtypeError, EmptyImageError, InvalidPixelsError: as ``preprocess.check_pixels``.
    """
    if kind not in REPRESENTATIONS:
        raise ValueError(f"kind should be one of {REPRESENTATIONS}, got {kind!r}")
    if kind == "grayscale":
        return grayscale_roi(roi, out=out)
    gray = grayscale_roi(roi)
    binary = _binary_from_gray(gray)
    result = binary if kind == "binary" else gray * binary
    if out is None:
        return result
    _check_out(out, result.shape)[...] = result
    return out


def roi_representations(roi: np.ndarray) -> dict[str, np.ndarray]:
    """All three representations, sharing one grayscale and one binarisation.

    Args:
        roi: ``(H, W)`` or ``(N, H, W)``, any numeric dtype.

    Returns:
        ``{"grayscale", "binary", "filtered"}`` -> float32 arrays of the shape of ``roi``.
    """
    gray = grayscale_roi(roi)
    binary = _binary_from_gray(gray)
    return {"grayscale": gray, "binary": binary, "filtered": gray * binary}


def _binary_from_gray(gray: np.ndarray) -> np.ndarray:
    """Paper's binarisation of float32 grayscale ROIs ``(H, W)`` or ``(N, H, W)``, as {0, 1}."""
    if gray.ndim == 2:
        return imbinarize(gray, adaptthresh(gray)).astype(np.float32)
    return np.stack([_binary_from_gray(one) for one in gray]) if len(gray) else gray.copy()


def _check_roi(roi: np.ndarray, *, finite: bool = True) -> np.ndarray:
    """A 2-D ROI or a 3-D batch of them (an empty batch ``(0, H, W)`` is allowed)."""
    array = np.asarray(roi)
    if array.ndim == 3 and array.shape[0] == 0 and array.shape[1] and array.shape[2]:
        return array
    return check_pixels(array, ndim=3 if array.ndim == 3 else 2, finite=finite)
