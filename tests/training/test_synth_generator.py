"""One synthetic image: pixel format, orientation, ground truth, markers, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.generator import generate_image
from calcsdk.training.synth.plan import ImagePlan

SMALL = {"spacing_mm": 0.2, "width_px": 400, "height_px": 500}  # 80 x 100 mm


def _plan(
    index=0, view="CC", laterality="L", density="B", film=False, labels=("malignant", "benign")
):
    return ImagePlan(
        index, 42, index // 4, view, laterality, density, film, labels, (0,) * len(labels), 0
    )


@pytest.mark.parametrize(("bits", "film"), [(12, False), (14, False), (16, False), (12, True)])
def test_pixels_are_monochrome2_within_bits(bits, film):
    image = generate_image(SynthConfig(bits=bits, **SMALL), _plan(film=film))
    expected_bits = 8 if film else bits
    assert image.bits_stored == expected_bits
    assert image.pixels.dtype == (np.uint8 if film else np.uint16)
    assert image.pixels.shape == (500, 400) and int(image.pixels.max()) <= 2**expected_bits - 1
    background = np.median(image.pixels[~image.breast_mask])
    tissue = np.median(image.pixels[image.breast_mask & ~image.pectoral_mask])
    assert background < tissue  # air dark, breast bright-ish
    assert image.spacing_mm == 0.2 and image.metadata["film"] is film


@pytest.mark.parametrize(
    ("view", "laterality"), [("CC", "L"), ("CC", "R"), ("MLO", "L"), ("MLO", "R")]
)
def test_orientation_and_boxes(view, laterality):
    plan = _plan(view=view, laterality=laterality, labels=("malignant", "benign", "malignant"))
    image = generate_image(SynthConfig(**SMALL), plan)
    mask = image.breast_mask
    left, right = mask[:, :5].mean(), mask[:, -5:].mean()
    assert (right > left) if laterality == "R" else (left > right)  # chest wall at the image side
    if view == "MLO":  # pectoral muscle in the upper chest-wall corner
        corner = (
            image.pectoral_mask[:30, -30:] if laterality == "R" else image.pectoral_mask[:30, :30]
        )
        assert corner.mean() > 0.5
    assert [c.label for c in image.clusters] == list(plan.cluster_labels)
    for cluster in image.clusters:
        x1, y1, x2, y2 = cluster.box_xyxy
        assert 0 <= x1 < x2 <= 400 and 0 <= y1 < y2 <= 500
        assert mask[int(y1) : math.ceil(y2), int(x1) : math.ceil(x2)].all()  # inside the breast
        spacing = image.spacing_mm
        for calc in cluster.calcifications:  # calcifications lie in their box
            assert x1 <= calc.x_mm / spacing <= x2 and y1 <= calc.y_mm / spacing <= y2


def test_normal_image_has_no_clusters_and_metadata_is_complete():
    image = generate_image(SynthConfig(**SMALL), _plan(density="D", labels=()))
    assert image.clusters == ()
    for key in (
        "density",
        "view",
        "laterality",
        "seed",
        "index",
        "patient_id",
        "dense_area_fraction",
    ):
        assert key in image.metadata
    assert image.metadata["density"] == "D" and image.metadata["dense_area_fraction"] > 0.7


def test_same_seed_same_bytes_and_other_index_differs():
    config = SynthConfig(**SMALL)
    first = generate_image(config, _plan(index=3))
    again = generate_image(config, _plan(index=3))
    other = generate_image(config, _plan(index=4))
    assert first.pixels.tobytes() == again.pixels.tobytes()
    assert [c.box_xyxy for c in first.clusters] == [c.box_xyxy for c in again.clusters]
    assert first.pixels.tobytes() != other.pixels.tobytes()


@pytest.mark.parametrize("markers", [True, False])
def test_markers_are_burned_into_the_background_only_when_asked(markers):
    image = generate_image(SynthConfig(markers=markers, **SMALL), _plan(labels=()))
    far = ~_dilate(image.breast_mask, 10)
    bright = image.pixels[far] > 0.6 * (2**image.bits_stored - 1)
    assert bright.any() == markers


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    grown = mask.copy()
    for _ in range(steps):
        grown[1:] |= grown[:-1]
        grown[:-1] |= grown[1:]
        grown[:, 1:] |= grown[:, :-1]
        grown[:, :-1] |= grown[:, 1:]
    return grown


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="spacing_mm"):
        SynthConfig(spacing_mm=0.3)
    with pytest.raises(ValueError, match="bits"):
        SynthConfig(bits=10)
    with pytest.raises(ValueError, match="40 x 50 mm"):
        SynthConfig(spacing_mm=0.05, width_px=400, height_px=500)
