"""Calcification bodies and clusters: physics of the drawing, BI-RADS morphology statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calcsdk.training.synth import morphology
from calcsdk.training.synth.anatomy import Anatomy
from calcsdk.training.synth.calcifications import Body, describe, render
from calcsdk.training.synth.clusters import add_clusters


@pytest.mark.parametrize("spacing", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("radius", [0.15, 0.5])
def test_sphere_integrates_to_its_volume(spacing, radius):
    line = np.zeros((64, 64), dtype=np.float32)
    centre = 32 * spacing + 0.013  # off the pixel grid
    box = render(
        line, Body("ellipsoid", centre, centre, 2.0, semi_axes_mm=(radius, radius)), spacing
    )
    volume = 4 / 3 * math.pi * radius**3
    assert float(line.sum()) * spacing**2 == pytest.approx(2.0 * volume, rel=0.05)
    x1, y1, x2, y2 = box
    assert x2 - x1 == pytest.approx(2 * radius / spacing, abs=0.5)  # tight box, in pixels
    assert x1 <= centre / spacing <= x2 and y1 <= centre / spacing <= y2


@pytest.mark.parametrize(
    ("body", "diameter", "width", "circularity"),
    [
        (Body("ellipsoid", 0, 0, 1, semi_axes_mm=(0.4, 0.4)), 0.8, 0.8, 1.0),
        (Body("ellipsoid", 0, 0, 1, semi_axes_mm=(0.4, 0.1)), 0.8, 0.2, None),
        (
            Body("polygon", 0, 0, 1, points_mm=np.array([[0, 0], [0.2, 0], [0.2, 0.2], [0, 0.2]])),
            math.hypot(0.2, 0.2),
            0.2,
            math.pi / 4,
        ),
        (
            Body("polyline", 0, 0, 1, points_mm=np.array([[0, 0], [2.0, 0]]), width_mm=0.2),
            2.2,
            0.2,
            None,
        ),
        (Body("shell", 0, 0, 1, radius_mm=3.0, shell_mm=0.2), 6.0, 0.2, 1.0),
    ],
)
def test_descriptors_are_analytic(body, diameter, width, circularity):
    calc = describe(body)
    assert calc.diameter_mm == pytest.approx(diameter, rel=1e-3)
    assert calc.width_mm == pytest.approx(width, rel=1e-3)
    if circularity is not None:
        assert calc.circularity == pytest.approx(circularity, rel=1e-3)
    assert 0 < calc.circularity <= 1.0 + 1e-6


def test_shell_is_bright_at_the_rim_and_bodies_off_image_draw_nothing():
    line = np.zeros((100, 100), dtype=np.float32)
    render(line, Body("shell", 5.0, 5.0, 1.0, radius_mm=3.0, shell_mm=0.2), 0.1)
    assert line[50, 50] < 0.5 * line[50, 22]  # lucent centre, bright rim (x = 2.2 mm)
    empty = np.zeros((10, 10), dtype=np.float32)
    assert render(empty, Body("ellipsoid", -5.0, -5.0, 1.0, semi_axes_mm=(0.3, 0.3)), 0.1) is None
    assert not empty.any()


def _disc_anatomy(radius_mm: float, spacing: float = 0.1, size: int = 700) -> Anatomy:
    """A round 'breast' centred in the image, chest wall ignored: enough for placement."""
    y, x = (np.mgrid[0:size, 0:size] + 0.5) * spacing
    centre = size * spacing / 2
    distance = np.clip(radius_mm - np.hypot(x - centre, y - centre), 0, None).astype(np.float32)
    zeros = np.zeros((size, size), dtype=np.float32)
    return Anatomy(
        spacing,
        "CC",
        (distance > 0).astype(np.float32),
        distance,
        zeros,
        zeros,
        zeros,
        (centre + radius_mm, centre),
        50.0,
    )


@pytest.mark.parametrize(
    "labels", [(), ("malignant",), ("benign", "malignant", "benign", "malignant")]
)
def test_clusters_lie_inside_the_breast_apart_and_in_order(labels):
    breast = _disc_anatomy(32.0)
    line = np.zeros(breast.inside.shape, dtype=np.float32)
    glandular = np.full((350, 350), 0.5, dtype=np.float32)
    placed = add_clusters(np.random.default_rng(3), line, breast, glandular, labels, False, 0.25)
    assert [c.label for c in placed] == list(labels)
    for i, cluster in enumerate(placed):
        x1, y1, x2, y2 = cluster.box_xyxy
        region = breast.skin_distance_mm[int(y1) : math.ceil(y2), int(x1) : math.ceil(x2)]
        assert region.min() > 1.0  # the whole box inside the breast, clear of the skin
        assert len(cluster.calcifications) >= 1
        for other in placed[i + 1 :]:
            o = other.box_xyxy
            assert x2 <= o[0] or o[2] <= x1 or y2 <= o[1] or o[3] <= y1
    assert (line > 0).any() == bool(labels)


def test_a_breast_too_small_for_the_clusters_raises():
    breast = _disc_anatomy(3.0, size=100)
    with pytest.raises(ValueError, match="too small"):
        add_clusters(
            np.random.default_rng(0),
            np.zeros((100, 100), np.float32),
            breast,
            np.ones((50, 50), np.float32),
            ("benign",),
            False,
            0.0,
        )


def _all_calcifications(label: str, hard: bool, n: int = 40):
    rng = np.random.default_rng(17 if hard else 7)
    table = (
        morphology.MALIGNANT_MORPHOLOGIES
        if label == "malignant"
        else morphology.BENIGN_MORPHOLOGIES
    )
    found = {}
    for name in table:
        calcs = []
        for _ in range(n // len(table) + 1):
            layout = morphology.draw_layout(rng, name, hard)
            calcs += [describe(b) for b in layout.bodies if b.is_calcification]
        found[name] = calcs
    return found


@pytest.mark.parametrize("hard", [False, True])
def test_morphology_statistics_differ_as_birads_says(hard):
    malignant = _all_calcifications("malignant", hard)
    benign = _all_calcifications("benign", hard)
    # malignant: fine (caliber 0.1-0.5 mm); pleomorphic particles 0.1-0.5 mm across
    mal_widths = np.array([c.width_mm for calcs in malignant.values() for c in calcs])
    assert mal_widths.min() >= 0.1 / 3 - 1e-6 and np.percentile(mal_widths, 95) <= 0.5
    pleomorphic = np.array([c.diameter_mm for c in malignant["fine_pleomorphic"]])
    assert (
        pleomorphic.min() >= 0.1 - 1e-6 and pleomorphic.max() <= 0.5 + 1e-6
    )  # float32 descriptors
    # benign: larger and coarser; round/punctate > 0.5 mm and round
    round_calcs = benign["round_punctate"]
    assert min(c.diameter_mm for c in round_calcs) > 0.5
    ben_diameters = np.array([c.diameter_mm for calcs in benign.values() for c in calcs])
    assert np.median(ben_diameters) > 2 * np.median(pleomorphic)
    assert np.median(ben_diameters) > 0.5
    # malignant particles are irregular, benign round ones are not
    assert (
        np.mean([c.circularity for c in malignant["fine_pleomorphic"]])
        < np.mean([c.circularity for c in round_calcs]) - 0.15
    )
    # pleomorphic: varied sizes within a cluster (coefficient of variation)
    assert np.std(pleomorphic) / np.mean(pleomorphic) > 0.2


def test_malignant_clusters_are_five_or_more_within_about_a_square_centimetre():
    rng = np.random.default_rng(2)
    for _ in range(30):
        layout = morphology.draw_layout(rng, "fine_pleomorphic", False)
        if layout.distribution != "cluster":
            continue
        points = np.array([[b.x_mm, b.y_mm] for b in layout.bodies])
        assert len(points) >= 5
        spread = points.max(axis=0) - points.min(axis=0)
        assert spread.max() <= 20.0 and np.median(np.hypot(*(points - points.mean(0)).T)) <= 6.0
