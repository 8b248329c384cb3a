"""Calcification morphology: BI-RADS descriptors and distributions as layouts of bodies (mm).

Morphologies (ACR BI-RADS Atlas, 5th ed.), sizes in mm:

Malignant (suspicious):
- ``fine_pleomorphic``: 0.1-0.5 mm, irregular angular particles of varied size, shape and
  density; 5+ within about 1 cm^2 (``cluster``), or ``linear`` / ``segmental`` along ducts.
- ``fine_linear_branching``: thin (0.1-0.3 mm) discontinuous casts 0.3-2.5 mm long, some
  branching, following a duct tree that points to the nipple (``linear`` / ``segmental``).

Benign:
- ``coarse_popcorn``: 2-8 mm lobulated, dense (involuting fibroadenoma, with its faint mass).
- ``rim_eggshell``: thin shells 2-10 mm across with a lucent centre (oil cysts), often
  incomplete.
- ``round_punctate``: round, smooth, 0.5-2 mm, similar to one another.
- ``vascular``: parallel tracks along a vessel (tram lines).
- ``diffuse_scattered``: round calcifications of similar size spread over a large region.

Hard cases: a malignant cluster may be faint (low calcium content, few and small particles,
preferably in dense breasts); a benign cluster may be a tight group of small round
calcifications that looks malignant at a glance.

Layouts are drawn in a local frame whose +x axis points to the nipple, then rotated and placed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from calcsdk.training.synth.acquisition import MU_BLOOD, MU_FAT, MU_GLAND
from calcsdk.training.synth.calcifications import Body
from calcsdk.training.synth.structures import random_walk

MALIGNANT_MORPHOLOGIES = {"fine_pleomorphic": 0.6, "fine_linear_branching": 0.4}
BENIGN_MORPHOLOGIES = {
    "round_punctate": 0.3,
    "coarse_popcorn": 0.15,
    "rim_eggshell": 0.15,
    "vascular": 0.2,
    "diffuse_scattered": 0.2,
}


@dataclass(frozen=True)
class Layout:
    """One cluster in its local frame (+x towards the nipple, mm), before placement."""

    morphology: str
    distribution: str
    bodies: list[Body]


def pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key of ``weights`` drawn with probability proportional to its weight."""
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def draw_layout(
    rng: np.random.Generator, morphology: str, hard: bool, scale: float = 1.0
) -> Layout:
    """Calcifications (and soft-tissue companions) of one cluster of ``morphology``.

    Args:
        morphology: a key of ``MALIGNANT_MORPHOLOGIES`` or ``BENIGN_MORPHOLOGIES``.
        hard: draw the hard-case variant (faint malignant; tight small round benign).
        scale: shrinks the spread (used when a cluster does not fit).
    """
    if morphology not in LAYOUTS:
        raise ValueError(f"morphology should be one of {tuple(LAYOUTS)}, got {morphology!r}")
    return LAYOUTS[morphology](rng, hard, scale)


def _particle(rng, x, y, size_mm, attenuation, angular=True) -> Body:
    """Irregular particle whose largest extent is ``size_mm``: a random polygon, redrawn until
    its smallest width is at least a third of its extent (no needle-thin slivers)."""
    for _ in range(20):
        n = int(rng.integers(3, 8)) if angular else int(rng.integers(10, 16))
        angles = (
            np.sort(rng.uniform(0, 2 * math.pi, n))
            if angular
            else np.linspace(0, 2 * math.pi, n, endpoint=False)
        )
        radii = rng.uniform(0.45, 1.0, n) if angular else 1.0 + 0.12 * rng.standard_normal(n)
        points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
        points[:, 0] *= rng.uniform(1.0, 2.2) if angular else 1.0
        theta = rng.uniform(0, 2 * math.pi)
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        points = points @ rot.T
        extent = float(np.max(np.hypot(*(points[:, None] - points[None, :]).transpose(2, 0, 1))))
        points *= size_mm / max(extent, 1e-6)
        points -= points.mean(axis=0)
        (_, _), (w, h), _ = cv2.minAreaRect(points.astype(np.float32))
        if min(w, h) >= size_mm / 3:
            break
    return Body(
        "polygon", x, y, attenuation, points_mm=points, depth_scale=float(rng.uniform(1.0, 1.6))
    )


def _calcium(rng: np.random.Generator, malignant: bool = False) -> float:
    """Attenuation difference of calcification to tissue, 1/mm: calcium oxalate (~1.0) to
    hydroxyapatite (~2.3); the calcifications of carcinoma are hydroxyapatite."""
    return float(rng.uniform(1.6, 2.3) if malignant else rng.uniform(1.0, 2.3))


def _scatter_positions(rng, count, sigma_x, sigma_y, min_gap) -> np.ndarray:
    points: list[np.ndarray] = []
    for _ in range(count * 20):
        if len(points) == count:
            break
        p = rng.normal(0.0, 1.0, 2) * [sigma_x, sigma_y]
        if all(np.hypot(*(p - q)) >= min_gap for q in points):
            points.append(p)
    return np.array(points).reshape(-1, 2)


def _fine_pleomorphic(rng, hard: bool, scale: float) -> Layout:
    distribution = pick(rng, {"cluster": 0.7, "linear": 0.15, "segmental": 0.15})
    mu = _calcium(rng, malignant=True) * (rng.uniform(0.3, 0.5) if hard else 1.0)
    if distribution == "cluster":
        count = int(rng.integers(5, 9)) if hard else 5 + int(rng.poisson(9))
        sigma = rng.uniform(1.2, 3.0) * scale
        positions = _scatter_positions(rng, count, sigma, sigma * rng.uniform(0.6, 1.0), 0.35)
    else:
        length = rng.uniform(8.0, 20.0) if distribution == "linear" else rng.uniform(15.0, 35.0)
        length *= scale
        count = int(rng.integers(8, 20)) if distribution == "linear" else int(rng.integers(15, 40))
        t = rng.uniform(0.0, 1.0, count) ** (1.0 if distribution == "linear" else 0.7)
        spread = 0.6 if distribution == "linear" else math.tan(rng.uniform(0.15, 0.35)) * length * t
        positions = np.stack(
            [(t - 0.5) * length, rng.normal(0.0, 1.0, count) * spread * 0.5], axis=1
        )
    sizes = np.clip(rng.lognormal(math.log(0.22 if hard else 0.32), 0.4, len(positions)), 0.1, 0.5)
    bodies = [
        _particle(rng, x, y, size, mu * rng.uniform(0.55, 1.0))
        for (x, y), size in zip(positions, sizes)
    ]
    return Layout("fine_pleomorphic", distribution, bodies)


def _fine_linear_branching(rng, hard: bool, scale: float) -> Layout:
    distribution = pick(rng, {"linear": 0.5, "segmental": 0.5})
    mu = _calcium(rng, malignant=True) * (rng.uniform(0.3, 0.5) if hard else 1.0)
    length = (
        rng.uniform(6.0, 15.0) if distribution == "linear" else rng.uniform(12.0, 25.0)
    ) * scale
    ducts = [
        random_walk(
            rng, (-length / 2, 0.0), rng.normal(0.0, 0.15), length, tortuosity=0.015, step_mm=0.25
        )
    ]
    for _ in range(int(rng.integers(1, 3 if distribution == "linear" else 5))):
        trunk = ducts[0]
        at = trunk[int(rng.integers(len(trunk) // 4, len(trunk) - 1))]
        heading = rng.choice([-1, 1]) * rng.uniform(0.35, 0.8)
        ducts.append(
            random_walk(
                rng,
                tuple(at),
                heading,
                length * rng.uniform(0.3, 0.6),
                tortuosity=0.015,
                step_mm=0.25,
            )
        )
    bodies: list[Body] = []
    for duct in ducts:
        i = int(rng.integers(0, 4))
        while i < len(duct) - 2 and len(bodies) < (10 if hard else 40):
            piece = int(rng.uniform(0.3, 2.5) / 0.25) + 1
            points = duct[i : i + piece + 1] + rng.normal(
                0.0, 0.03, (len(duct[i : i + piece + 1]), 2)
            )
            if len(points) >= 2:
                if rng.random() < 0.3:  # a short side branch: Y / V shaped cast
                    turn = rng.uniform(-1.0, 1.0)
                    tip = points[-1] + rng.uniform(0.4, 1.2) * np.array(
                        [math.cos(turn), math.sin(turn)]
                    )
                    points = np.vstack([points, points[-2:-1], tip])
                centre = points.mean(axis=0)
                bodies.append(
                    Body(
                        "polyline",
                        *centre,
                        mu * rng.uniform(0.5, 1.0),
                        points_mm=points - centre,
                        width_mm=float(rng.uniform(0.1, 0.3)),
                    )
                )
            elif len(points) == 1:
                bodies.append(
                    _particle(rng, *points[0], rng.uniform(0.1, 0.3), mu * rng.uniform(0.4, 0.9))
                )
            i += piece + int(rng.uniform(0.3, 2.0) / 0.25) + 1
    if len(bodies) < 3:  # too short a duct: add fine dots along it
        for point in ducts[0][:: max(1, len(ducts[0]) // 5)]:
            bodies.append(_particle(rng, *point, rng.uniform(0.12, 0.35), mu))
    return Layout("fine_linear_branching", distribution, bodies)


def _round_punctate(rng, hard: bool, scale: float) -> Layout:
    mu = _calcium(rng) * (rng.uniform(0.5, 0.8) if hard else rng.uniform(0.7, 1.0))
    count = int(rng.integers(5, 13)) if hard else int(rng.integers(3, 16))
    sigma = (rng.uniform(1.5, 3.0) if hard else rng.uniform(2.5, 7.0)) * scale
    median = rng.uniform(0.6, 0.75) if hard else rng.uniform(0.7, 1.3)
    positions = _scatter_positions(rng, count, sigma, sigma * rng.uniform(0.6, 1.0), 1.2)
    bodies = []
    for x, y in positions:
        d = float(np.clip(median * rng.lognormal(0.0, 0.12), 0.55, 2.0))
        a = d / 2
        bodies.append(
            Body(
                "ellipsoid",
                x,
                y,
                mu * rng.uniform(0.85, 1.0),
                semi_axes_mm=(a, a * rng.uniform(0.8, 1.0)),
                angle_rad=rng.uniform(0, math.pi),
            )
        )
    return Layout("round_punctate", "cluster" if sigma < 4.0 else "regional", bodies)


def _coarse_popcorn(rng, hard: bool, scale: float) -> Layout:
    mu = _calcium(rng)
    bodies = []
    if rng.random() < 0.6:  # the involuting fibroadenoma's faint mass
        a = rng.uniform(4.0, 10.0) * scale
        bodies.append(
            Body(
                "ellipsoid",
                0.0,
                0.0,
                MU_GLAND - MU_FAT,
                semi_axes_mm=(a, a * rng.uniform(0.6, 0.9)),
                angle_rad=rng.uniform(0, math.pi),
                is_calcification=False,
            )
        )
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.normal(0.0, 1.5 * scale, 2)
        bodies.append(
            _particle(
                rng, x, y, rng.uniform(2.0, 7.0) * scale, mu * rng.uniform(0.8, 1.0), angular=False
            )
        )
    return Layout("coarse_popcorn", "grouped", bodies)


def _rim_eggshell(rng, hard: bool, scale: float) -> Layout:
    bodies = []
    positions = _scatter_positions(
        rng, int(rng.integers(1, 4)), 6.0 * scale, 6.0 * scale, 10.0 * scale
    )
    for x, y in positions:
        radius = rng.uniform(1.0, 5.0) * scale
        # the oil cyst's fatty content is lucent against the surrounding tissue
        lucent = -(MU_GLAND - MU_FAT) * rng.uniform(0.2, 0.6)
        bodies.append(
            Body("ellipsoid", x, y, lucent, semi_axes_mm=(radius, radius), is_calcification=False)
        )
        gaps = tuple(
            (start, start + rng.uniform(0.3, 1.5))
            for start in rng.uniform(0, 2 * math.pi, int(rng.integers(0, 3)))
        )
        # a thin, partly calcified wall: less calcium per mm than a solid calcification
        wall = rng.uniform(0.3, 0.9)
        bodies.append(
            Body("shell", x, y, wall, radius_mm=radius, shell_mm=rng.uniform(0.12, 0.4), gaps=gaps)
        )
    return Layout("rim_eggshell", "grouped" if len(bodies) > 1 else "cluster", bodies)


def _vascular(rng, hard: bool, scale: float) -> Layout:
    mu = _calcium(rng)
    length = rng.uniform(15.0, 40.0) * scale
    path = random_walk(
        rng, (-length / 2, 0.0), rng.normal(0.0, 0.3), length, tortuosity=0.02, step_mm=0.5
    )
    diameter = rng.uniform(1.5, 3.0)
    bodies = [
        Body(
            "polyline",
            0.0,
            0.0,
            MU_BLOOD - MU_FAT,
            points_mm=path,
            width_mm=diameter,
            is_calcification=False,
        )
    ]
    tangent = np.gradient(path, axis=0)
    normal = (
        np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
        / np.maximum(np.hypot(*tangent.T), 1e-9)[:, None]
    )
    for side in (-1.0, 1.0):
        track = path + side * (diameter / 2) * normal
        i = int(rng.integers(0, 6))
        while i < len(track) - 2:
            piece = int(rng.uniform(1.0, 6.0) / 0.5) + 1
            points = track[i : i + piece + 1]
            centre = points.mean(axis=0)
            bodies.append(
                Body(
                    "polyline",
                    *centre,
                    mu * rng.uniform(0.6, 1.0),
                    points_mm=points - centre,
                    width_mm=float(rng.uniform(0.25, 0.6)),
                )
            )
            i += piece + int(rng.uniform(0.5, 3.0) / 0.5) + 1
    return Layout("vascular", "linear", bodies)


def _diffuse_scattered(rng, hard: bool, scale: float) -> Layout:
    mu = _calcium(rng) * rng.uniform(0.7, 1.0)
    radius = rng.uniform(10.0, 22.0) * scale
    count = int(rng.integers(10, 30))
    r = radius * np.sqrt(rng.uniform(0, 1, count))
    theta = rng.uniform(0, 2 * math.pi, count)
    median = rng.uniform(0.6, 1.0)
    bodies = []
    for x, y in zip(r * np.cos(theta), r * np.sin(theta)):
        a = float(np.clip(median * rng.lognormal(0.0, 0.15), 0.55, 1.6)) / 2
        bodies.append(
            Body(
                "ellipsoid",
                x,
                y,
                mu * rng.uniform(0.8, 1.0),
                semi_axes_mm=(a, a * rng.uniform(0.8, 1.0)),
                angle_rad=rng.uniform(0, math.pi),
            )
        )
    return Layout("diffuse_scattered", "diffuse", bodies)


LAYOUTS = {
    "fine_pleomorphic": _fine_pleomorphic,
    "fine_linear_branching": _fine_linear_branching,
    "round_punctate": _round_punctate,
    "coarse_popcorn": _coarse_popcorn,
    "rim_eggshell": _rim_eggshell,
    "vascular": _vascular,
    "diffuse_scattered": _diffuse_scattered,
}
