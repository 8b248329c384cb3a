"""Annotated mammograms for people: windowed grayscale with class-coloured boxes and scores.

Windowing (what a reader would see):

* a DICOM whose VOI stage was applied on reading (``Mammogram.voi_transform`` set: the file's
  window or VOI LUT) is already in display values, shown over its full range
  ``[0, 2**bits_stored - 1]``;
* anything else (raw DICOM without a window, PNG, TIFF, ...) gets a percentile window of the
  BREAST: the 0.5th..99.5th percentiles of the pixels inside :func:`calcsdk.preprocess.breast_mask`,
  so the black background and burned-in labels do not flatten the tissue contrast (a band of
  ``EDGE_MARGIN_MM`` along the skin line is left out: it blends into the background).

Overlays are downscaled so that the long side is at most ``max_side`` pixels (boxes with them);
boxes are drawn at the detections' original-pixel coordinates times that scale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import cv2
import numpy as np

from calcsdk.detections import Detections, GroundTruth
from calcsdk.image import Mammogram
from calcsdk.preprocess import breast_mask

__all__ = [
    "CLASS_COLOURS_BGR",
    "display_window",
    "render_overlay",
    "windowed_uint8",
    "write_overlay",
]

#: Box colours (OpenCV BGR) by class name; other classes cycle through :data:`_PALETTE`.
CLASS_COLOURS_BGR: Mapping[str, tuple[int, int, int]] = {
    "malignant": (40, 40, 235),  # red
    "benign": (60, 200, 60),  # green
    "normal": (200, 200, 200),  # grey
}
_PALETTE = ((235, 160, 40), (40, 200, 230), (200, 60, 200), (120, 120, 255))
TRUTH_COLOUR_BGR = (255, 255, 255)  # ground truth: white, under the detections
DEFAULT_MAX_SIDE = 2048
WINDOW_PERCENTILES = (0.5, 99.5)
EDGE_MARGIN_MM = 3.0  # skin-line band left out of the window statistics


def _colour(name: str, index: int) -> tuple[int, int, int]:
    return CLASS_COLOURS_BGR.get(name, _PALETTE[index % len(_PALETTE)])


def _inner_breast(pixels: np.ndarray, spacing_mm: float | None) -> np.ndarray:
    """The breast mask eroded by ``EDGE_MARGIN_MM`` (the skin line blends into the background,
    which would drag the low percentile down); the plain mask when erosion empties it."""
    mask = breast_mask(pixels, spacing_mm)
    margin = EDGE_MARGIN_MM / spacing_mm if spacing_mm else 0.01 * max(pixels.shape)
    radius = max(1, round(margin))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
    return inner if inner.any() else mask


def display_window(
    pixels: np.ndarray, mammogram: Mammogram, spacing_mm: float | None = None
) -> tuple[float, float]:
    """``(low, high)`` pixel values mapped to black and white (see the module docstring).

    Args:
        pixels: ``(h, w)`` values of ``mammogram`` (possibly downscaled) to window.
        spacing_mm: pixel spacing of ``pixels`` in mm, for the breast mask (``None``: unknown).
    """
    if mammogram.voi_transform and mammogram.max_value is not None:
        return 0.0, float(mammogram.max_value)
    values = pixels[_inner_breast(pixels, spacing_mm)]
    if values.size == 0:
        values = pixels.reshape(-1)
    low, high = (float(v) for v in np.percentile(values, WINDOW_PERCENTILES))
    if high <= low:  # flat breast: fall back to the whole image's range
        low, high = float(pixels.min()), float(pixels.max())
    return low, (high if high > low else low + 1.0)


def windowed_uint8(
    mammogram: Mammogram, max_side: int = DEFAULT_MAX_SIDE
) -> tuple[np.ndarray, float]:
    """The windowed image as ``(h, w)`` uint8 and the scale (display px per original px)."""
    if max_side < 1:
        raise ValueError(f"max_side should be >= 1, got {max_side}")
    pixels = mammogram.pixels.astype(np.float32)
    scale = min(1.0, max_side / max(mammogram.height, mammogram.width))
    if scale < 1.0:
        size = (max(1, round(mammogram.width * scale)), max(1, round(mammogram.height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    spacing = None if mammogram.spacing_mm is None else min(mammogram.spacing_mm) / scale
    low, high = display_window(pixels, mammogram, spacing)
    display = np.clip((pixels - low) * (255.0 / (high - low)), 0, 255)
    return np.rint(display).astype(np.uint8), scale


def render_overlay(
    mammogram: Mammogram,
    detections: Detections,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    truths: GroundTruth | None = None,
) -> np.ndarray:
    """``(h, w, 3)`` uint8 BGR image: the windowed mammogram with one box per detection,
    coloured by class and labelled ``"<class> <score>"``; the best scores are drawn last (on top).
    ``truths`` (optional, original-pixel xyxy like the detections): annotated lesions, drawn
    first as white boxes labelled ``"GT <class>"``.
    """
    gray, scale = windowed_uint8(mammogram, max_side)
    canvas = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    side = max(canvas.shape[:2])
    thickness = max(1, round(side / 700))
    font_scale = max(0.35, side / 1800)
    boxes: list[tuple[np.ndarray, tuple[int, int, int], str]] = []
    if truths is not None:
        for box, label in zip(truths.boxes, truths.labels, strict=True):
            boxes.append((box, TRUTH_COLOUR_BGR, f"GT {truths.class_names[int(label)]}"))
    for row in np.argsort(detections.scores, kind="stable"):
        label = int(detections.labels[row])
        name = detections.class_names[label]
        text = f"{name} {float(detections.scores[row]):.2f}"
        boxes.append((detections.boxes[row], _colour(name, label), text))
    for box, colour, text in boxes:
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        top_left = (int(np.floor(x1)), int(np.floor(y1)))
        bottom_right = (
            max(top_left[0], int(np.ceil(x2)) - 1),
            max(top_left[1], int(np.ceil(y2)) - 1),
        )
        cv2.rectangle(canvas, top_left, bottom_right, colour, thickness)
        (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        text_y = (
            top_left[1] - base - 2
            if top_left[1] - height - base - 2 >= 0
            else bottom_right[1] + height + 2
        )
        cv2.rectangle(
            canvas,
            (top_left[0], text_y - height - 1),
            (top_left[0] + width + 2, text_y + base),
            colour,
            -1,
        )
        cv2.putText(
            canvas,
            text,
            (top_left[0] + 1, text_y),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return canvas


def write_overlay(
    path: str | os.PathLike,
    mammogram: Mammogram,
    detections: Detections,
    *,
    max_side: int = DEFAULT_MAX_SIDE,
    truths: GroundTruth | None = None,
) -> None:
    """Render (see :func:`render_overlay`) and write a PNG atomically (temp file + rename)."""
    from calcsdk.batch.durable import atomic_write_bytes

    image = render_overlay(mammogram, detections, max_side=max_side, truths=truths)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV's PNG encoder does not fail on uint8 BGR
        raise OSError(f"{os.fspath(path)}: PNG encoding failed")
    atomic_write_bytes(path, encoded.tobytes())
