"""Anatomy, texture, acquisition and spectrum of the synthetic mammogram generator."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.synth import acquisition, anatomy, presentation, texture
from calcsdk.training.synth.generator import tissue_grid
from calcsdk.training.synth.spectrum import fit_beta, image_beta, radial_power_spectrum

SPACING = 0.2
SHAPE = (500, 400)  # 100 x 80 mm


def _breast(view: str, seed: int = 0) -> tuple[anatomy.BreastShape, anatomy.Anatomy]:
    rng = np.random.default_rng(seed)
    shape = anatomy.draw_breast_shape(rng, SHAPE[1] * SPACING, SHAPE[0] * SPACING)
    return shape, anatomy.build_anatomy(rng, view, SHAPE, SPACING, shape)


@pytest.mark.parametrize("view", ["CC", "MLO"])
def test_anatomy_maps_are_consistent(view):
    shape, breast = _breast(view)
    inside, thickness, tissue = breast.inside, breast.thickness_mm, breast.tissue_path_mm
    assert inside.shape == SHAPE and inside.dtype == np.float32
    assert 0.0 <= inside.min() and inside.max() == 1.0
    assert inside[:, 0].mean() > 0.3  # chest wall at the left edge (canonical frame)
    assert inside[:, -1].max() == 0.0  # nothing at the far edge
    assert thickness.max() <= shape.thickness_mm + 1e-4 and thickness[inside == 0].max() == 0.0
    skin = breast.skin_path_mm
    assert skin.min() >= -1e-4 and (tissue <= thickness + 1e-4).all()
    interior = breast.skin_distance_mm > shape.edge_mm + 1
    # the skin line: tangential path through the skin shell is far longer near the outline
    near_edge = (breast.skin_distance_mm > 0.5 * shape.skin_mm) & (
        breast.skin_distance_mm < 2 * shape.skin_mm
    )
    assert skin[near_edge].max() > 3 * np.median(skin[interior])
    nipple_col = int(breast.nipple_xy_mm[0] / SPACING)
    assert abs(nipple_col - np.nonzero(inside.max(axis=0) > 0.5)[0].max()) <= 3


def test_mlo_has_a_pectoral_triangle_and_cc_rarely_does():
    _, mlo = _breast("MLO")
    assert mlo.muscle[:20, :20].min() > 0.1  # upper chest-wall corner
    assert mlo.muscle[-50:, :].max() == 0.0
    _, cc = _breast("CC", seed=1)
    assert cc.muscle[:, 60:].max() == 0.0  # at most a thin crescent at the chest wall


def test_bad_view_raises():
    rng = np.random.default_rng(0)
    shape = anatomy.draw_breast_shape(rng, 80, 100)
    with pytest.raises(ValueError, match="view"):
        anatomy.build_anatomy(rng, "ML", SHAPE, SPACING, shape)


@pytest.mark.parametrize("beta", [2.5, 3.0, 3.5])
def test_power_law_field_has_the_requested_exponent(beta):
    field = texture.power_law_field(
        np.random.default_rng(5), (512, 512), 0.2, beta, cutoff_mm=200.0
    )
    assert field.dtype == np.float32 and abs(float(field.std()) - 1.0) < 1e-3
    frequency, power = radial_power_spectrum(field, 0.2)
    assert fit_beta(frequency, power, (0.1, 1.5)) == pytest.approx(beta, abs=0.2)


@pytest.mark.parametrize("density", ["A", "B", "C", "D"])
def test_glandular_fraction_lands_in_the_birads_class(density):
    _, breast = _breast("CC", seed=2)
    grid = tissue_grid(breast, 2)
    fraction, dense = texture.glandular_fraction(np.random.default_rng(9), grid, density)
    low, high = texture.DENSE_FRACTION_RANGES[density]
    assert low - 0.03 <= dense <= high + 0.03
    assert fraction.shape == grid.shape and 0.0 <= fraction.min() and fraction.max() <= 0.8
    assert fraction[grid.inside == 0].max() < 1e-3  # no gland outside the breast


def test_glandular_fraction_rejects_unknown_density():
    _, breast = _breast("CC")
    with pytest.raises(ValueError, match="density"):
        texture.glandular_fraction(np.random.default_rng(0), tissue_grid(breast, 2), "E")


@pytest.mark.parametrize("film", [False, True])
def test_exposure_follows_beer_lambert_with_poisson_noise(film):
    rng = np.random.default_rng(1)
    exposure = acquisition.Exposure(2e5, 0.0, 0.0, 0.0, 10.0, 0.0, 50.0)
    line = np.full((200, 200), 2.0, dtype=np.float32)
    line[:, 100:] = 3.0
    signal, flat = acquisition.expose(line, np.ones_like(line), exposure, 0.1, False, rng)
    # AEC at the median line integral (2.5): 2e5 quanta/mm^2 * 0.01 mm^2 there
    assert flat[0] == pytest.approx(2000 * np.exp(2.5), rel=1e-4)
    ratio = signal[:, :100].mean() / signal[:, 100:].mean()
    assert ratio == pytest.approx(np.e, rel=0.01)
    left = signal[:, 20:80]
    assert left.var() == pytest.approx(left.mean(), rel=0.05)  # Poisson: variance = mean


def test_presentation_is_monochrome2_and_within_bits():
    rng = np.random.default_rng(4)
    shape, breast = _breast("CC", seed=4)
    line = acquisition.tissue_line_integral(breast, np.zeros(SHAPE, dtype=np.float32))
    exposure = acquisition.draw_exposure(rng, film=False)
    signal, flat = acquisition.expose(line, breast.inside, exposure, SPACING, False, rng)
    processing = presentation.draw_processing(rng)
    tissue = breast.inside > 0.99
    pixels = presentation.ffdm_for_presentation(
        signal,
        flat,
        breast.thickness_mm,
        breast.inside,
        shape.thickness_mm,
        2.0,
        None,
        tissue,
        processing,
        12,
        SPACING,
    )
    assert pixels.dtype == np.uint16 and pixels.max() <= 4095
    assert np.median(pixels[breast.inside == 0]) < np.median(pixels[tissue])  # background dark
    film = presentation.digitised_film(
        signal, breast.inside, presentation.draw_film(rng), SPACING, rng
    )
    assert film.dtype == np.uint8 and np.median(film[breast.inside == 0]) < np.median(film[tissue])


def test_display_lut_is_monotone_and_fills_the_range():
    processing = presentation.draw_processing(np.random.default_rng(0))
    lut = presentation.display_lut(processing, 14)
    assert lut.dtype == np.uint16 and np.all(np.diff(lut.astype(int)) >= 0)
    assert lut[-1] == 2**14 - 1


@pytest.mark.parametrize(
    ("args", "message"),
    [((np.zeros((8, 9)), 0.1), "square"), ((np.zeros((4, 4)), 0.1), "square")],
)
def test_spectrum_rejects_bad_regions(args, message):
    with pytest.raises(ValueError, match=message):
        radial_power_spectrum(*args)


def test_fit_beta_needs_frequencies_in_band_and_image_beta_needs_tissue():
    frequency = np.array([0.05, 0.1, 2.0])
    with pytest.raises(ValueError, match="fewer than 3"):
        fit_beta(frequency, frequency**-3.0)
    exact = np.linspace(0.1, 1.2, 40)
    assert fit_beta(exact, 7 * exact**-2.8) == pytest.approx(2.8)
    with pytest.raises(ValueError, match="no"):
        image_beta(np.zeros((100, 100)), np.zeros((100, 100), bool), 0.1)
