"""YOLOv4 anchors: k-means with the IoU distance (YOLOv2, Redmon & Farhadi 2017) on the sizes of
the training boxes in MILLIMETRES, converted to network pixels at the working spacing.

Boxes are compared by width and height only, as if they shared a centre:
``d(box, centroid) = 1 - IoU(box, centroid)``. Centroids start with k-means++ seeding under that
distance (seeded, so a data set always gives the same anchors), then move to the mean size of
their members until the assignment no longer changes. The result is sorted by area: anchors
0-2 go to the stride-8 head, 3-5 to stride 16, 6-8 to stride 32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calcsdk.training.datasets.record import ImageRecord

__all__ = [
    "anchors_to_network",
    "box_sizes_mm",
    "fit_anchors",
    "kmeans_anchors",
    "mean_best_iou",
    "wh_iou",
]


def wh_iou(sizes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 2)`` sizes with ``(K, 2)`` sizes, all centred at one point: ``(N, K)``."""
    sizes, centroids = np.asarray(sizes, np.float64), np.asarray(centroids, np.float64)
    inter = np.minimum(sizes[:, None, 0], centroids[None, :, 0]) * np.minimum(
        sizes[:, None, 1], centroids[None, :, 1]
    )
    union = (sizes[:, 0] * sizes[:, 1])[:, None] + (centroids[:, 0] * centroids[:, 1])[None] - inter
    return inter / union


def box_sizes_mm(
    records: Sequence[ImageRecord], fallback_spacing_mm: float | None = None
) -> np.ndarray:
    """``(M, 2)`` float64 ``(width, height)`` in mm of every box of ``records``.

    Width uses the column spacing, height the row spacing. A record without a spacing uses
    ``fallback_spacing_mm``; without one either, ``ValueError`` names the image.
    """
    sizes = [np.zeros((0, 2))]
    for record in records:
        spacing = record.spacing_mm
        if spacing is None:
            if fallback_spacing_mm is None:
                raise ValueError(
                    f"{record.image_path}: pixel spacing unknown; give fallback_spacing_mm"
                )
            spacing = (fallback_spacing_mm, fallback_spacing_mm)
        row_mm, col_mm = spacing
        boxes = record.boxes.astype(np.float64)
        sizes.append(
            np.c_[(boxes[:, 2] - boxes[:, 0]) * col_mm, (boxes[:, 3] - boxes[:, 1]) * row_mm]
        )
    return np.concatenate(sizes)


def _check_sizes(sizes: np.ndarray, k: int) -> np.ndarray:
    sizes = np.asarray(sizes, np.float64)
    if sizes.ndim != 2 or sizes.shape[1] != 2:
        raise ValueError(f"sizes should have shape (N, 2) (width, height), got {sizes.shape}")
    if not np.isfinite(sizes).all() or (sizes <= 0).any():
        raise ValueError("sizes should be finite widths and heights > 0")
    distinct = len(np.unique(sizes, axis=0))
    if k < 1 or distinct < k:
        raise ValueError(f"k-means needs at least k={k} distinct box sizes, got {distinct}")
    return sizes


def kmeans_anchors(
    sizes: np.ndarray, k: int = 9, *, seed: int = 0, max_iterations: int = 300
) -> np.ndarray:
    """``k`` anchor sizes from ``(N, 2)`` box ``(width, height)`` (any unit, kept).

    Returns:
        ``(k, 2)`` float64 centroids sorted by increasing area.
    Raises:
        ValueError: a malformed ``sizes`` or fewer than ``k`` distinct sizes.
    """
    sizes = _check_sizes(sizes, k)
    rng = np.random.default_rng(seed)
    centroids = [sizes[rng.integers(len(sizes))]]
    for _ in range(1, k):  # k-means++ seeding with the 1 - IoU distance
        distance = 1.0 - wh_iou(sizes, np.array(centroids)).max(axis=1)
        weights = distance**2
        total = weights.sum()
        pick = rng.choice(len(sizes), p=weights / total) if total > 0 else rng.integers(len(sizes))
        centroids.append(sizes[pick])
    centroids = np.array(centroids)
    assignment = np.full(len(sizes), -1)
    for _ in range(max_iterations):
        iou = wh_iou(sizes, centroids)
        new_assignment = iou.argmax(axis=1)
        if np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        for cluster in range(k):
            members = sizes[assignment == cluster]
            if len(members):
                centroids[cluster] = members.mean(axis=0)
            else:  # an emptied cluster takes the worst-fitted box
                centroids[cluster] = sizes[iou.max(axis=1).argmin()]
    return centroids[np.argsort(centroids[:, 0] * centroids[:, 1], kind="stable")]


def mean_best_iou(sizes: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over boxes of the best wh-IoU with any anchor (YOLOv2's "Avg IOU" fit measure)."""
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    if len(sizes) == 0:
        return float("nan")
    return float(wh_iou(sizes, anchors).max(axis=1).mean())


def anchors_to_network(
    anchors_mm: np.ndarray, working_spacing_mm: float, network_scale: float = 1.0
) -> np.ndarray:
    """Anchor sizes in mm -> ``(K, 2)`` float32 network pixels.

    ``network_scale`` is network pixels per working pixel (1 for tiles; the typical
    letterbox factor for the letterbox layout).
    """
    if not (working_spacing_mm > 0 and network_scale > 0):
        raise ValueError("working_spacing_mm and network_scale should be > 0")
    return (np.asarray(anchors_mm, np.float64) / working_spacing_mm * network_scale).astype(
        np.float32
    )


def fit_anchors(
    records: Sequence[ImageRecord],
    working_spacing_mm: float,
    *,
    network_scale: float = 1.0,
    k: int = 9,
    seed: int = 0,
    fallback_spacing_mm: float | None = None,
) -> np.ndarray:
    """k-means anchors of the boxes of ``records`` in mm -> ``(k, 2)`` float32 network pixels
    (sorted by area; ``network_scale`` as :func:`anchors_to_network`)."""
    sizes_mm = box_sizes_mm(records, fallback_spacing_mm)
    anchors_mm = kmeans_anchors(sizes_mm, k, seed=seed)
    return anchors_to_network(anchors_mm, working_spacing_mm, network_scale)
