"""Calcification clusters: placement in the breast, drawing, and ground truth.

Each cluster's morphology and layout come from :mod:`calcsdk.training.synth.morphology`
(BI-RADS descriptors, sizes in mm). Here a layout is rotated so its +x axis points to the
nipple (ducts, segments and linear distributions run towards it), placed where the tissue suits
it (malignant clusters in glandular tissue, vascular ones in fat), checked to lie inside the
breast (clear of skin and pectoral muscle, everything drawn included) and apart from the other
clusters, then drawn into the line integral. Its box is the calcifications' extent plus a margin
of max(1 mm, 10%), in pixels (x2/y2 exclusive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from calcsdk.training.synth.anatomy import Anatomy
from calcsdk.training.synth.calcifications import Body, Calcification, describe, render
from calcsdk.training.synth.morphology import (
    BENIGN_MORPHOLOGIES,
    MALIGNANT_MORPHOLOGIES,
    draw_layout,
    pick,
)

_MAX_TRIES = 80
_MIN_SKIN_MM = 1.0  # a box keeps this far inside the skin surface
_GAP_MM = 1.0  # boxes keep this far apart


@dataclass(frozen=True)
class Cluster:
    """Ground truth of one cluster.

    Attributes:
        label: ``"malignant"`` or ``"benign"``.
        morphology: a key of ``morphology.MALIGNANT_MORPHOLOGIES`` / ``BENIGN_MORPHOLOGIES``.
        distribution: ``"cluster"``, ``"linear"``, ``"segmental"``, ``"grouped"``,
            ``"regional"`` or ``"diffuse"``.
        hard: drawn as a hard case.
        box_xyxy: box around the calcifications with a margin, image pixels (x2/y2
            exclusive).
        calcifications: the drawn calcifications (positions in the frame of ``box_xyxy``'s
            image, mm).
    """

    label: str
    morphology: str
    distribution: str
    hard: bool
    box_xyxy: tuple[float, float, float, float]
    calcifications: tuple[Calcification, ...]

    def mirrored(self, width_px: int, spacing_mm: float) -> Cluster:
        """The same cluster after a left-right flip of an image ``width_px`` wide."""
        x1, y1, x2, y2 = self.box_xyxy
        width_mm = width_px * spacing_mm
        calcs = tuple(replace(c, x_mm=width_mm - c.x_mm) for c in self.calcifications)
        return replace(self, box_xyxy=(width_px - x2, y1, width_px - x1, y2), calcifications=calcs)


def add_clusters(
    rng: np.random.Generator,
    line_integral: np.ndarray,
    anatomy: Anatomy,
    glandular: np.ndarray,
    labels: tuple[str, ...],
    dense_breast: bool,
    hard_fraction: float,
) -> list[Cluster]:
    """Place and draw one cluster per label; returns their ground truth (canonical frame).

    Args:
        rng: the image's random generator.
        line_integral: ``(H, W)`` float32 map the calcifications are added to (in place).
        anatomy: the breast (canonical frame, same grid).
        glandular: glandular fraction on a coarser grid (malignant clusters favour glandular
            tissue, vascular ones fat).
        labels: ``"malignant"`` / ``"benign"`` per cluster.
        dense_breast: BI-RADS C or D (hard malignant cases are likelier there).
        hard_fraction: base rate of hard cases.

    Raises:
        ValueError: a cluster cannot be placed (breast too small for the requested clusters).
    """
    spacing = anatomy.spacing_mm
    taken: list[tuple[float, float, float, float]] = []
    clusters = []
    for label in labels:
        hard_rate = hard_fraction * (
            (1.6 if dense_breast else 0.4) if label == "malignant" else 1.0
        )
        hard = bool(rng.random() < min(hard_rate, 1.0))
        morphology = pick(
            rng, MALIGNANT_MORPHOLOGIES if label == "malignant" else BENIGN_MORPHOLOGIES
        )
        if hard and label == "benign":
            morphology = "round_punctate"
        placed = None
        for attempt in range(_MAX_TRIES):
            scale = (
                1.0
                if attempt < _MAX_TRIES // 2
                else (0.6 if attempt < 3 * _MAX_TRIES // 4 else 0.35)
            )
            centre = _candidate_centre(rng, anatomy, glandular, label, morphology)
            layout = draw_layout(rng, morphology, hard, scale)
            bodies = _place(layout.bodies, centre, anatomy.nipple_xy_mm)
            box = _box(bodies, spacing, line_integral.shape)
            extent = _box(bodies, spacing, line_integral.shape, calcified_only=False)
            if box is not None and extent is not None and _fits(box, extent, anatomy, taken):
                placed = layout, bodies, box
                break
        if placed is None:
            raise ValueError(
                f"could not place a {label} {morphology} cluster in a "
                f"{line_integral.shape[1]}x{line_integral.shape[0]} px image at {spacing} mm: "
                "the breast is too small for the requested clusters"
            )
        layout, bodies, box = placed
        for body in bodies:
            render(line_integral, body, spacing)
        taken.append(box)
        calcs = tuple(describe(b) for b in bodies if b.is_calcification)
        clusters.append(Cluster(label, layout.morphology, layout.distribution, hard, box, calcs))
    return clusters


def _candidate_centre(
    rng, anatomy: Anatomy, glandular: np.ndarray, label: str, morphology: str
) -> tuple[float, float]:
    """A random centre (mm) inside the breast, weighted by tissue type."""
    step = max(1, round(anatomy.inside.shape[0] / glandular.shape[0]))
    depth = anatomy.skin_distance_mm[::step, ::step][: glandular.shape[0], : glandular.shape[1]]
    muscle = anatomy.muscle[::step, ::step][: glandular.shape[0], : glandular.shape[1]]
    g = glandular[: depth.shape[0], : depth.shape[1]]
    weight = ((depth > 5.0) & (muscle < 0.01)).astype(np.float64)
    if label == "malignant":
        weight *= g.astype(np.float64) ** 1.5 + 0.02
    elif morphology == "vascular":
        weight *= 1.05 - np.clip(g, 0.0, 1.0)
    flat = weight.ravel()
    total = flat.sum()
    if total <= 0:
        flat = (depth > 0).astype(np.float64).ravel()
        total = flat.sum()
        if total <= 0:
            return anatomy.nipple_xy_mm
    index = int(np.searchsorted(np.cumsum(flat), rng.random() * total))
    row, col = divmod(min(index, flat.size - 1), depth.shape[1])
    cell = step * anatomy.spacing_mm
    return ((col + rng.random()) * cell, (row + rng.random()) * cell)


def _place(
    bodies: list[Body], centre: tuple[float, float], nipple: tuple[float, float]
) -> list[Body]:
    """Rotate a local layout so +x points at the nipple and move it to ``centre``."""
    angle = math.atan2(nipple[1] - centre[1], nipple[0] - centre[0])
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    placed = []
    for body in bodies:
        x, y = rotation @ np.array([body.x_mm, body.y_mm])
        changes = {
            "x_mm": centre[0] + x,
            "y_mm": centre[1] + y,
            "angle_rad": body.angle_rad + angle,
        }
        if body.points_mm is not None:
            changes["points_mm"] = body.points_mm @ rotation.T
        if body.gaps:
            changes["gaps"] = tuple((a + angle, b + angle) for a, b in body.gaps)
        placed.append(replace(body, **changes))
    return placed


def _box(
    bodies: list[Body], spacing: float, shape: tuple[int, int], calcified_only: bool = True
) -> tuple[float, float, float, float] | None:
    """Box (pixels) around the calcified bodies (or all bodies) plus a margin of
    max(1 mm, 10% of the extent); None when empty or not within the image."""
    calcified = [b for b in bodies if b.is_calcification or not calcified_only]
    if not calcified:
        return None
    reach = np.array([b.reach_mm() for b in calcified])
    xs, ys = np.array([b.x_mm for b in calcified]), np.array([b.y_mm for b in calcified])
    x1, x2 = float((xs - reach).min()), float((xs + reach).max())
    y1, y2 = float((ys - reach).min()), float((ys + reach).max())
    margin = max(1.0, 0.1 * max(x2 - x1, y2 - y1))
    box = (
        (x1 - margin) / spacing,
        (y1 - margin) / spacing,
        (x2 + margin) / spacing,
        (y2 + margin) / spacing,
    )
    height, width = shape
    if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
        return None
    return box


def _fits(box, extent, anatomy: Anatomy, taken) -> bool:
    """The box clear of the boxes already placed, and everything drawn (``extent``, soft
    tissue included) inside the breast, clear of skin and muscle."""
    gap = _GAP_MM / anatomy.spacing_mm
    for other in taken:
        if (
            box[0] < other[2] + gap
            and other[0] < box[2] + gap
            and box[1] < other[3] + gap
            and other[1] < box[3] + gap
        ):
            return False
    x1, y1 = int(extent[0]), int(extent[1])
    x2, y2 = math.ceil(extent[2]), math.ceil(extent[3])
    region = anatomy.skin_distance_mm[y1:y2, x1:x2]
    return (
        region.size > 0
        and float(region.min()) > _MIN_SKIN_MM
        and float(anatomy.muscle[y1:y2, x1:x2].max()) < 0.01
    )
