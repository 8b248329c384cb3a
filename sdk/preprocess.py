"""Whole-image preprocessing of a mammogram, in the order the pipelines apply it.

1. :func:`breast_mask` -- where the breast is (drops background, burned-in markers, view labels);
2. :func:`remove_artifacts` -- blank everything outside that mask;
3. :func:`resample_to_spacing` -- bring the image to the working pixel spacing (mm per pixel);
4. :func:`normalize_image` -- robust window to float32 in [0, 1].

Conventions, for every function here: images are 2-D ``(H, W)`` arrays (rows = y, columns = x),
``bright = dense`` (MONOCHROME2; inverting MONOCHROME1 is the reader's job), pixel ``(y, x)``
covers the continuous square ``[x, x + 1) x [y, y + 1)`` of the image's pixel frame. Pixel
spacings are in millimetres per pixel, ordered ``(row, column) = (y, x)`` as in DICOM's
PixelSpacing. The paper removed artifacts by hand; :func:`breast_mask` automates that step.

Runtime code: numpy and OpenCV only.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from calcsdk.errors import EmptyImageError, ImageDtypeError, InvalidPixelsError

__all__ = [
    "breast_mask",
    "check_pixels",
    "normalize_image",
    "remove_artifacts",
    "resample_to_spacing",
]

logger = logging.getLogger(__name__)

# --- breast mask parameters (each a deliberate choice; see breast_mask) ----------------------
MASK_GRID_MM = 0.5  # the mask is computed on a grid of about 0.5 mm per pixel ...
MASK_GRID_SIDE = 512  # ... or, without a spacing, with the long side at 512 pixels,
MASK_GRID_SIDE_RANGE = (256, 1024)  # and never coarser/finer than these long sides.
MASK_HISTOGRAM_BINS = 1024  # histogram resolution of the background/tissue threshold
MASK_PEAK_FRACTION = 0.1  # a background peak is at least this tall relative to the tallest
MASK_OPENING_PX = 5  # opening (working-grid pixels) that detaches blobs bridged by noise
PERCENTILE_SAMPLE = 1 << 20  # normalize_image estimates percentiles from at most this many pixels

# OpenCV resizes these dtypes natively; anything else is converted to float32 first.
_CV_DTYPES = (np.uint8, np.uint16, np.float32)


def check_pixels(
    pixels: np.ndarray, *, source: str = "<array>", ndim: int = 2, finite: bool = True
) -> np.ndarray:
    """Validate an image array and return it as a numpy array (no copy when possible).

    Args:
        pixels: array-like, ``(H, W)`` for ``ndim=2`` or ``(N, H, W)`` for 3; bool or real dtype.
        source: names the array in error messages.
        finite: scan float pixels for NaN and infinity (False: the caller checks them itself).

    Raises:
        ImageDtypeError: wrong dimensionality or a non-numeric dtype (a ``TypeError``).
        EmptyImageError: an axis of length 0 (a ``ValueError``).
        InvalidPixelsError: NaN or infinite values (a ``ValueError``).
    """
    array = np.asarray(pixels)
    if array.ndim != ndim:
        raise ImageDtypeError(f"expected a {ndim}-D array, got shape {array.shape}", source)
    if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)):
        raise ImageDtypeError(f"expected a numeric or bool array, got dtype {array.dtype}", source)
    if np.issubdtype(array.dtype, np.complexfloating):
        raise ImageDtypeError(f"complex pixels are not accepted, got dtype {array.dtype}", source)
    if array.size == 0:
        raise EmptyImageError(f"image has a zero-length axis, shape {array.shape}", source)
    if finite and np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InvalidPixelsError("image contains NaN or infinite values", source)
    return array


def _as_cv_array(array: np.ndarray) -> np.ndarray:
    """``array`` itself when OpenCV resizes its dtype natively, else a float32 copy."""
    return array if array.dtype in _CV_DTYPES else array.astype(np.float32)


# --- 1. breast mask ----------------------------------------------------------------------------
def breast_mask(pixels: np.ndarray, spacing_mm: float | None = None) -> np.ndarray:
    """Boolean mask of the breast, excluding background, markers and view labels.

    Algorithm (on a downscaled copy, about ``MASK_GRID_MM`` mm per pixel, long side 256..1024):

    1. INTER_AREA downscale, then a 3x3 median filter (noise suppression that keeps edges).
    2. Threshold just above the background: Zack's triangle method from the darkest significant
       histogram peak (the background; a tissue peak may be taller when the breast fills most
       of the image). The threshold sits at the foot of that peak, so fatty tissue and the skin
       line stay inside even where dense tissue would split an Otsu threshold.
    3. Opening (``MASK_OPENING_PX``), keep the largest 8-connected component, add back the pixels
       the opening shaved off that component, fill holes (background regions not touching the
       image border). Markers and labels that touch nothing are thereby removed; the pectoral
       muscle, bright and attached to the breast, stays inside.
    4. Bilinear upsampling of the mask to ``(H, W)``, thresholded at one half.

    Limitations: a marker touching the breast stays inside; without visible background (a crop
    inside the breast) the split is arbitrary; constant padding darker than the real background
    (DICOM PixelPaddingValue, a scanner's black frame) is taken for the background and the real
    background for breast, so readers should set padding to the background level first. A
    constant image gives an all-True mask (nothing can be told apart; logged at INFO).

    Args:
        pixels: ``(H, W)`` mammogram, bright = dense, any integer (8..16 bit in any container)
            or floating dtype; the result does not depend on the bit depth.
        spacing_mm: pixel spacing in mm per pixel (isotropic; for an anisotropic spacing pass
            the smaller one) or None; only sets the downscaled grid.

    Returns:
        ``(H, W)`` bool, True inside the breast, in the same pixel frame as ``pixels``.

    Raises:
        ImageDtypeError, EmptyImageError, InvalidPixelsError: see :func:`check_pixels`.
        InvalidPixelsError: a spacing that is not a positive finite number.
    """
    image = check_pixels(pixels)
    height, width = image.shape
    small = _downscale_for_mask(image, spacing_mm)
    small = cv2.medianBlur(small.astype(np.float32), 3)
    if not small.max() > small.min():
        logger.info("breast_mask: image has no contrast; returning an all-True mask")
        return np.ones((height, width), dtype=bool)

    threshold = _background_threshold(small)
    foreground = (small > threshold).astype(np.uint8)
    foreground = _largest_component(foreground)
    foreground = _fill_holes(foreground)
    if not foreground.any():  # defensive: only a degenerate histogram gets here
        return np.ones((height, width), dtype=bool)
    upsampled = cv2.resize(foreground * 255, (width, height), interpolation=cv2.INTER_LINEAR)
    return upsampled >= 128


def _downscale_for_mask(image: np.ndarray, spacing_mm: float | None) -> np.ndarray:
    """INTER_AREA copy of ``image`` on the mask's working grid (never enlarged)."""
    height, width = image.shape
    long_side = max(height, width)
    target_side = MASK_GRID_SIDE
    if spacing_mm is not None:
        target_side = long_side * _positive_spacing(spacing_mm)[0] / MASK_GRID_MM
    low, high = MASK_GRID_SIDE_RANGE
    scale = min(max(target_side, low), high, long_side) / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    cv_image = image.astype(np.uint8) if image.dtype == np.bool_ else _as_cv_array(image)
    if size == (width, height):
        return cv_image
    return cv2.resize(cv_image, size, interpolation=cv2.INTER_AREA)


def _background_threshold(small: np.ndarray) -> float:
    """Triangle threshold (Zack 1977) at the bright foot of the background histogram peak."""
    counts, edges = _lattice_histogram(small)
    peak = _background_peak(counts)
    end = int(np.flatnonzero(counts)[-1]) + 1  # one past the last occupied bin, height 0
    bins = np.arange(peak, end + 1)
    heights = np.append(counts, 0)[bins].astype(np.float64)
    # Height of the peak->end line minus the histogram: the deepest point under the line.
    line = counts[peak] * (end - bins) / (end - peak)
    foot = max(int(bins[np.argmax(line - heights)]), peak + 1)
    # The foot bin counts as foreground: with only a few occupied levels (e.g. a noise-free
    # two-level image) the deepest point under the line is the first tissue level itself.
    return float(edges[foot])


def _background_peak(counts: np.ndarray) -> int:
    """Bin of the background level: the darkest significant peak of the dark class.

    Nothing in the breast is darker than the background, but a breast filling most of the
    image can have a taller tissue peak (e.g. uniform fat), so the tallest bin is not enough.
    Among the bins up to Otsu's threshold (the dark class), candidates are the local maxima of
    the histogram (smoothed over 5 bins when it has 50 or more) at least ``MASK_PEAK_FRACTION``
    as tall as the class's tallest; the darkest wins (the tallest bin if there is none).
    """
    dark = counts[: _otsu_bin(counts) + 1]
    smooth = np.convolve(dark, np.ones(5) / 5, mode="same") if dark.size >= 50 else dark
    padded = np.concatenate([[-1.0], smooth, [-1.0]])
    is_peak = (smooth >= padded[:-2]) & (smooth > padded[2:])
    candidates = np.flatnonzero(is_peak & (smooth >= MASK_PEAK_FRACTION * smooth.max()))
    if candidates.size == 0:
        return int(np.argmax(dark))
    # The smoothed maximum may sit a bin or two off the raw one: take the raw maximum nearby.
    low = max(int(candidates[0]) - 2, 0)
    return low + int(np.argmax(dark[low : int(candidates[0]) + 3]))


def _otsu_bin(counts: np.ndarray) -> int:
    """Last bin of the dark class in Otsu's two-class split of a histogram (0 for one bin)."""
    probabilities = counts / counts.sum()
    dark_weight = np.cumsum(probabilities)[:-1]
    dark_mass = np.cumsum(probabilities * np.arange(counts.size))[:-1]
    total_mass = float(np.dot(probabilities, np.arange(counts.size)))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mass * dark_weight - dark_mass) ** 2 / (dark_weight * (1 - dark_weight))
    return int(np.argmax(np.nan_to_num(between, nan=-1.0, posinf=-1.0))) if between.size else 0


def _lattice_histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """About ``MASK_HISTOGRAM_BINS`` bins, each holding the same number of quantisation levels.

    Integer (or k/255 float) data sit on a lattice of step ``q`` (the smallest gap between
    distinct values); narrower bins would leave empty bins that mislead the triangle method.
    Bin width: a whole multiple of ``q``; edges half a step between levels.
    """
    levels = np.unique(values)
    low, high = float(levels[0]), float(levels[-1])
    step = float(np.diff(levels).min())
    multiple = max(1, int(np.ceil((high - low) / MASK_HISTOGRAM_BINS / step - 1e-6)))
    width = multiple * step
    start = low - step / 2
    bin_count = int((high - start) // width) + 1
    edges = start + width * np.arange(bin_count + 1)
    counts, _ = np.histogram(values, bins=edges)
    return counts, edges


def _largest_component(foreground: np.ndarray) -> np.ndarray:
    """Largest 8-connected component after an opening, restored to its unopened outline."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (MASK_OPENING_PX, MASK_OPENING_PX))
    opened = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, kernel)
    if not opened.any():  # everything was thinner than the opening: use the raw mask
        opened = foreground
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        return np.zeros_like(foreground)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    # Give back the boundary the opening removed, without re-attaching distant blobs.
    return cv2.dilate(component, kernel) & foreground


def _fill_holes(foreground: np.ndarray) -> np.ndarray:
    """Set to 1 every background region that does not touch the image border."""
    count, labels = cv2.connectedComponents((foreground == 0).astype(np.uint8), connectivity=4)
    if count <= 1:
        return foreground
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    outside = np.zeros(count, dtype=bool)
    outside[border] = True
    outside[0] = True  # label 0 is the foreground itself
    return (~outside[labels]).astype(np.uint8) | foreground


# --- 2. artifact removal ----------------------------------------------------------------------
def remove_artifacts(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``pixels`` with everything outside ``mask`` set to the background minimum.

    Args:
        pixels: ``(H, W)`` image, any numeric dtype.
        mask: ``(H, W)`` bool, True inside the breast (e.g. from :func:`breast_mask`).

    Returns:
        ``(H, W)`` array of the dtype of ``pixels``: inside the mask unchanged; outside, the
        minimum of the pixels outside the mask (so markers and labels become background).
        An all-True mask returns an unchanged copy.

    Raises:
        ImageDtypeError, EmptyImageError, InvalidPixelsError: see :func:`check_pixels`.
        ValueError: ``mask`` is not a bool array of the same shape.
    """
    image = check_pixels(pixels)
    inside = _check_mask(mask, image.shape)
    result = image.copy()
    outside = ~inside
    if outside.any():
        result[outside] = image[outside].min()
    return result


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask should be a bool array, got dtype {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {shape}")
    return mask


# --- 3. resampling ----------------------------------------------------------------------------
_INTERPOLATIONS = ("area", "linear", "nearest")


def resample_to_spacing(
    pixels: np.ndarray,
    spacing_mm: tuple[float, float] | float,
    target_mm: float,
    *,
    interpolation: str = "area",
) -> tuple[np.ndarray, tuple[float, float]]:
    """Resample an image (or a bool mask) to ``target_mm`` millimetres per pixel.

    Output size ``round(H * spacing_y / target_mm)`` x ``round(W * spacing_x / target_mm)``
    (at least 1); the effective scales ``sy = H_out / H``, ``sx = W_out / W`` absorb the
    rounding. A point ``(x, y)`` of the input's continuous pixel frame maps to ``(x * sx,
    y * sy)`` (OpenCV's ``x_in + 0.5 = (x_out + 0.5) / sx`` agrees), so a box found in the
    working image maps back by dividing x by ``sx`` and y by ``sy``.

    ``"area"`` (default): INTER_AREA along an axis that shrinks, INTER_LINEAR along one that is
    enlarged (one axis at a time when they differ); ``"linear"``/``"nearest"`` force the OpenCV
    method. Bool input always uses nearest neighbour.

    Args:
        pixels: ``(H, W)`` image, any numeric dtype, or a bool mask.
        spacing_mm: input spacing in mm/pixel, one number or ``(row, column) = (y, x)``.
        target_mm: working spacing in mm/pixel.
        interpolation: ``"area"``, ``"linear"`` or ``"nearest"``.

    Returns:
        ``(resampled, (sy, sx))``: resampled is ``(H_out, W_out)`` with the dtype of ``pixels``
        for bool, uint8, uint16 and float32 and float32 otherwise.

    Raises:
        ValueError: a spacing that is None (the caller decides a default), an unknown
            interpolation; :class:`InvalidPixelsError` (a ValueError) for a spacing that is not
            positive and finite, and as in :func:`check_pixels`.
    """
    if spacing_mm is None or target_mm is None:
        raise ValueError("pixel spacing unknown (None): the caller must choose a default")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation should be one of {_INTERPOLATIONS}, got {interpolation!r}")
    image = check_pixels(pixels)
    spacing_y, spacing_x = _positive_spacing(spacing_mm)
    if np.ndim(target_mm) != 0:
        raise InvalidPixelsError(f"target spacing should be one number (mm), got {target_mm!r}")
    target = _positive_spacing(target_mm)[0]
    height, width = image.shape
    out_height = max(1, round(height * spacing_y / target))
    out_width = max(1, round(width * spacing_x / target))
    scales = (out_height / height, out_width / width)
    if image.dtype == np.bool_:
        if (out_height, out_width) == (height, width):
            return image.copy(), scales
        resized = _resize_axes(image.astype(np.uint8), out_height, out_width, "nearest")
        return resized.astype(bool), scales
    cv_image = _as_cv_array(image)
    if (out_height, out_width) == (height, width):
        return cv_image.copy() if cv_image is image else cv_image, scales
    return _resize_axes(cv_image, out_height, out_width, interpolation), scales


def _resize_axes(image: np.ndarray, out_height: int, out_width: int, interpolation: str):
    """cv2.resize; with ``"area"``, shrinking axes use INTER_AREA and enlarged ones LINEAR."""
    if interpolation != "area":
        flag = cv2.INTER_NEAREST if interpolation == "nearest" else cv2.INTER_LINEAR
        return cv2.resize(image, (out_width, out_height), interpolation=flag)
    height, width = image.shape
    flag_y = cv2.INTER_AREA if out_height <= height else cv2.INTER_LINEAR
    flag_x = cv2.INTER_AREA if out_width <= width else cv2.INTER_LINEAR
    if flag_x == flag_y:
        return cv2.resize(image, (out_width, out_height), interpolation=flag_x)
    along_x = cv2.resize(image, (out_width, height), interpolation=flag_x)  # one axis at a time
    return cv2.resize(along_x, (out_width, out_height), interpolation=flag_y)


def _positive_spacing(spacing_mm: tuple[float, float] | float) -> tuple[float, float]:
    """``(sy, sx)`` from one number or a pair; each must be a positive finite number."""
    values = np.atleast_1d(np.asarray(spacing_mm, dtype=np.float64)).ravel()
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.size != 2 or not np.all(np.isfinite(values)) or not np.all(values > 0):
        raise InvalidPixelsError(
            f"pixel spacing should be one or two positive finite numbers (mm), got {spacing_mm!r}"
        )
    return float(values[0]), float(values[1])


# --- 4. intensity normalisation ---------------------------------------------------------------
def normalize_image(
    pixels: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    low_pct: float = 0.5,
    high_pct: float = 99.5,
) -> np.ndarray:
    """Robust intensity window to float32 ``[0, 1]``, independent of the bit depth.

    ``out = clip((pixels - lo) / (hi - lo), 0, 1)``, ``lo``/``hi`` the ``low_pct``/``high_pct``
    percentiles (numpy's linear interpolation) of the pixels inside ``mask`` (whole image when
    None), from every k-th selected pixel above ``PERCENTILE_SAMPLE`` pixels (deterministic).
    If ``hi == lo``: the min and max of the selection instead; a constant selection -> zeros.

    Args:
        pixels: ``(H, W)`` image, any numeric dtype.
        mask: ``(H, W)`` bool or None.
        low_pct, high_pct: percentiles in ``[0, 100]``, ``low_pct < high_pct``.

    Returns:
        ``(H, W)`` float32 in ``[0, 1]``.

    Raises:
        ValueError: bad percentiles, a mask of the wrong dtype/shape, or a mask selecting
            no pixel.
        ImageDtypeError, EmptyImageError, InvalidPixelsError: see :func:`check_pixels`.
    """
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise ValueError(
            f"percentiles should satisfy 0 <= low_pct < high_pct <= 100, got {low_pct}, {high_pct}"
        )
    image = check_pixels(pixels)
    if image.dtype == np.bool_:
        image = image.astype(np.uint8)
    values = image.ravel() if mask is None else image[_check_mask(mask, image.shape)]
    if values.size == 0:
        raise ValueError("mask selects no pixel: cannot estimate an intensity window")
    if values.size > PERCENTILE_SAMPLE:
        values = values[:: -(-values.size // PERCENTILE_SAMPLE)]
    low, high = (float(v) for v in np.percentile(values, [low_pct, high_pct]))
    if not high > low:
        low, high = float(values.min()), float(values.max())
    if not high > low:
        return np.zeros(image.shape, dtype=np.float32)
    result = image.astype(np.float32)
    result -= np.float32(low)
    result *= np.float32(1.0 / (high - low))
    return np.clip(result, 0.0, 1.0, out=result)
