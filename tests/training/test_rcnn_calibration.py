"""The SVM head's Platt calibration honours row weights (background restored to its share)."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.rcnn.head import HeadConfig, train_head


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    positives = rng.normal(1.0, 1.0, (60, 8))
    background = rng.normal(-1.0, 1.0, (240, 8))
    features = np.concatenate([positives, background]).astype(np.float32)
    labels = np.concatenate([np.zeros(60), np.ones(240)]).astype(np.int64)  # class 0, bg = 1
    return features, labels


def test_weighting_background_up_lowers_every_probability():
    features, labels = _data()
    config = HeadConfig(hard_negative_rounds=1)
    plain = train_head(features, labels, 1, config, calib_features=features, calib_labels=labels)
    weights = np.where(labels == 1, 30.0, 1.0)
    weighted = train_head(
        features, labels, 1, config, calib_features=features, calib_labels=labels,
        calib_weights=weights,
    )  # fmt: skip
    np.testing.assert_array_equal(plain.weight, weighted.weight)  # the SVM itself is unchanged
    p_plain = plain.probabilities(features)[:, 0]
    p_weighted = weighted.probabilities(features)[:, 0]
    assert np.all(p_weighted <= p_plain + 1e-9)
    # with background 30x as common, far fewer rows clear 0.5
    assert (p_weighted >= 0.5).sum() < (p_plain >= 0.5).sum()


def test_unit_weights_equal_no_weights():
    features, labels = _data(1)
    config = HeadConfig(hard_negative_rounds=1)
    a = train_head(features, labels, 1, config, calib_features=features, calib_labels=labels)
    b = train_head(
        features, labels, 1, config, calib_features=features, calib_labels=labels,
        calib_weights=np.ones(len(labels)),
    )  # fmt: skip
    np.testing.assert_allclose(a.platt_a, b.platt_a, rtol=1e-6)
    np.testing.assert_allclose(a.platt_b, b.platt_b, rtol=1e-6, atol=1e-9)


def test_background_samples_stand_for_every_background_proposal(tmp_path):
    from calcsdk.image import read_mammogram, write_png
    from calcsdk.prepare import prepare_mammogram
    from calcsdk.proposals import propose
    from calcsdk.training.datasets import ImageRecord
    from calcsdk.training.rcnn.labels import label_proposals
    from calcsdk.training.rcnn.samples import BACKGROUND, SampleConfig, image_samples
    from tests.conftest import draw_toy_mammogram

    pixels, box = draw_toy_mammogram(0)
    path = tmp_path / "toy.png"
    write_png(path, pixels, spacing_mm=0.1, bits_stored=12)
    record = ImageRecord(str(path), [box.tolist()], [0], (0.1, 0.1))
    config = SampleConfig(working_spacing_mm=0.1, negatives_per_image=5, jitter_per_gt=0)
    samples = image_samples(0, record, config)
    background = samples.labels == BACKGROUND
    assert background.sum() == 5 and np.all(samples.weights[~background] == 1.0)
    # the 5 kept background samples stand for all background proposals of the image
    working = prepare_mammogram(read_mammogram(str(path)), 0.1)
    proposals, _ = propose(working.image01, working.mask, 0.1, config.proposals)
    labels, _ = label_proposals(proposals, box[None], np.array([0]), background_label=BACKGROUND)
    total = int((labels == BACKGROUND).sum())
    assert total > 5
    np.testing.assert_allclose(samples.weights[background].sum(), total, rtol=1e-5)


def test_svm_positives_choose_the_svm_training_rows():
    from calcsdk.training.rcnn.train import _svm_rows

    is_gt = np.array([True, True, False, False, False, False])
    labels = np.array([0, 1, 0, 1, 2, 2])  # GT mal, GT ben, proposal mal, proposal ben, 2 bg
    np.testing.assert_array_equal(
        _svm_rows(is_gt, labels, "gt"), [True, True, False, False, True, True]
    )
    np.testing.assert_array_equal(_svm_rows(is_gt, labels, "overlap"), [True] * 6)
    with pytest.raises(ValueError, match="svm_positives"):
        _svm_rows(is_gt, labels, "all")
    from calcsdk.training.rcnn.train import RcnnTrainConfig

    with pytest.raises(ValueError, match="svm_positives"):
        RcnnTrainConfig(svm_positives="all")
