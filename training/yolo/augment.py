"""Training-time augmentation of YOLOv4 samples (numpy, seeded by the caller's generator).

A *sample* is ``(image, boxes, labels)``: image ``(S, S)`` float32 in [0, 1] (one network
input), boxes ``(M, 4)`` float32 xyxy network pixels, labels ``(M,)`` int64. Nothing rescales:
a network pixel stays ``working_spacing_mm`` wide, so calcification sizes in mm are kept.

* :func:`flip_sample`: left-right / up-down flips (a mammogram's laterality and orientation
  are conventions, not anatomy);
* :func:`jitter_intensity`: gamma, contrast about the mean, brightness, Gaussian noise
  (exposure and processing vary between units);
* :func:`mosaic`: darknet's ``mosaic=1``: the four quadrants around a random centre each come
  from another sample, cut without rescaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calcsdk.training.yolo.config import YoloTrainConfig

__all__ = ["augment_sample", "clip_to_region", "flip_sample", "jitter_intensity", "mosaic"]

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]


def clip_to_region(
    boxes: np.ndarray,
    labels: np.ndarray,
    region: tuple[float, float, float, float],
    min_visible_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy ``boxes`` to ``region``; keep those with at least ``min_visible_fraction`` of
    their area (and a non-empty part) inside. Returns float32 boxes and int64 labels."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    x1, y1, x2, y2 = region
    clipped = np.c_[
        np.clip(boxes[:, 0], x1, x2),
        np.clip(boxes[:, 1], y1, y2),
        np.clip(boxes[:, 2], x1, x2),
        np.clip(boxes[:, 3], y1, y2),
    ].astype(np.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (visible > 0) & (visible >= min_visible_fraction * area)
    return clipped[keep], labels[keep]


def flip_sample(
    image: np.ndarray, boxes: np.ndarray, horizontal: bool, vertical: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Flip the whole ``(S, S)`` input (padding included) and its boxes."""
    size_y, size_x = image.shape
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    if horizontal:
        image = image[:, ::-1]
        boxes[:, [0, 2]] = size_x - boxes[:, [2, 0]]
    if vertical:
        image = image[::-1, :]
        boxes[:, [1, 3]] = size_y - boxes[:, [3, 1]]
    return np.ascontiguousarray(image), boxes


def jitter_intensity(
    image: np.ndarray, rng: np.random.Generator, config: YoloTrainConfig
) -> np.ndarray:
    """Gamma (log-uniform in ``gamma_range``), contrast about the mean, brightness shift and
    Gaussian noise (std uniform in ``[0, noise_std]``), clipped to [0, 1]; float32."""
    low, high = config.gamma_range
    gamma = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    contrast = float(rng.uniform(*config.contrast_range))
    brightness = float(rng.uniform(-config.brightness_shift, config.brightness_shift))
    noise_std = float(rng.uniform(0.0, config.noise_std))
    out = np.power(np.clip(image, 0.0, 1.0), gamma, dtype=np.float32)
    mean = np.float32(out.mean())
    out = (out - mean) * np.float32(contrast) + mean + np.float32(brightness)
    if noise_std > 0:
        out = out + rng.normal(0.0, noise_std, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def mosaic(
    samples: Sequence[Sample], rng: np.random.Generator, min_visible_fraction: float
) -> Sample:
    """Four ``(S, S)`` samples -> one: the centre ``(cx, cy)`` is uniform in ``[S/4, 3S/4]``;
    the top-left quadrant shows the bottom-right of sample 0, top-right the bottom-left of
    sample 1, bottom-left the top-right of sample 2, bottom-right the top-left of sample 3."""
    if len(samples) != 4:
        raise ValueError(f"mosaic needs 4 samples, got {len(samples)}")
    size = samples[0][0].shape[0]
    cx, cy = (int(v) for v in rng.integers(size // 4, 3 * size // 4 + 1, size=2))
    out = np.zeros((size, size), np.float32)
    all_boxes, all_labels = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.int64)]
    # (destination region in the output, shift from the sample to the output)
    quadrants = (
        ((0, 0, cx, cy), (cx - size, cy - size)),
        ((cx, 0, size, cy), (cx, cy - size)),
        ((0, cy, cx, size), (cx - size, cy)),
        ((cx, cy, size, size), (cx, cy)),
    )
    for (image, boxes, labels), ((x1, y1, x2, y2), (dx, dy)) in zip(samples, quadrants):
        if x2 <= x1 or y2 <= y1:
            continue
        out[y1:y2, x1:x2] = image[y1 - dy : y2 - dy, x1 - dx : x2 - dx]
        shifted = np.asarray(boxes, np.float32).reshape(-1, 4) + np.float32([dx, dy, dx, dy])
        kept_boxes, kept_labels = clip_to_region(
            shifted, labels, (x1, y1, x2, y2), min_visible_fraction
        )
        all_boxes.append(kept_boxes)
        all_labels.append(kept_labels)
    return out, np.concatenate(all_boxes), np.concatenate(all_labels)


def augment_sample(sample: Sample, rng: np.random.Generator, config: YoloTrainConfig) -> Sample:
    """Random flips then intensity jitter, as configured."""
    image, boxes, labels = sample
    horizontal = bool(rng.random() < config.flip_probability)
    vertical = bool(rng.random() < config.flip_probability)
    image, boxes = flip_sample(image, boxes, horizontal, vertical)
    return jitter_intensity(image, rng, config), boxes, labels
