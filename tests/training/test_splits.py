"""Splits: no patient leakage, stratification, determinism, the paper's protocol sizes."""

from __future__ import annotations

import numpy as np
import pytest

from calcsdk.training.datasets import ImageRecord
from calcsdk.training.splits import (
    kfold_indices,
    paper_detector_split,
    paper_roi_protocol,
    patient_stratified_split,
)


def grouped_data(n_patients=200, per_patient=3, seed=0):
    """Patients with 1..per_patient samples each; a patient's samples share a label mostly."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, per_patient + 1, n_patients)
    groups = np.repeat([f"p{i}" for i in range(n_patients)], sizes)
    patient_label = rng.choice(3, n_patients, p=[0.5, 0.25, 0.25])
    labels = np.repeat(patient_label, sizes)
    flip = rng.random(len(labels)) < 0.1  # some patients hold mixed labels
    labels[flip] = rng.integers(0, 3, flip.sum())
    return groups, labels


def assert_partition(parts, n):
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))
    for part in parts:
        assert part.dtype == np.int64 and np.array_equal(part, np.sort(part))


def assert_no_leak(groups, *parts):
    sets = [set(np.asarray(groups)[part].tolist()) for part in parts]
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            assert not sets[i] & sets[j]


@pytest.mark.parametrize("test_size", [0.2, 0.5, 0.05, 100])
@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_split_no_leakage_and_stratified(test_size, seed):
    groups, labels = grouped_data(seed=seed)
    train, test = patient_stratified_split(groups, labels, test_size, seed)
    assert_partition([train, test], len(labels))
    assert_no_leak(groups, train, test)
    fraction = test_size if isinstance(test_size, float) else test_size / len(labels)
    assert abs(len(test) / len(labels) - fraction) < 0.02
    for label in range(3):
        share = (labels == label).sum() * fraction
        assert abs((labels[test] == label).sum() - share) <= max(3, 0.05 * share)


@pytest.mark.parametrize(
    ("n", "test_size", "expected"),
    [
        (5000, 1000, 1000),
        (5000, 0.2, 1000),
        (3265, 377, 377),
        (10, 0.25, 3),
        (10, 0.7, 7),
        (3, 0.01, 1),
        (2, 0.99, 1),
    ],  # a fraction rounds up, as in scikit-learn
)
def test_ungrouped_sizes_are_exact(n, test_size, expected):
    labels = np.arange(n) % 3
    train, test = patient_stratified_split(None, labels, test_size, seed=0)
    assert len(test) == expected and len(train) == n - expected
    for label in range(3):
        share = (labels == label).sum() * expected / n
        assert abs((labels[test] == label).sum() - share) < 2


def test_split_is_deterministic_and_seeded():
    groups, labels = grouped_data()
    first = patient_stratified_split(groups, labels, 0.2, seed=3)
    again = patient_stratified_split(list(groups), list(labels), 0.2, seed=3)
    other = patient_stratified_split(groups, labels, 0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[1], other[1])


def test_stratification_beats_chance_on_a_rare_class():
    labels = np.array([1] * 10 + [0] * 990)
    for seed in range(5):
        _, test = patient_stratified_split(None, labels, 0.1, seed)
        assert (labels[test] == 1).sum() == 1


def test_no_part_is_left_empty():
    groups = ["big"] * 10 + ["small"]
    train, test = patient_stratified_split(groups, [0] * 11, 0.01, seed=0)
    assert len(train) and len(test)
    assert_no_leak(groups, train, test)


@pytest.mark.parametrize(
    ("groups", "labels", "test_size", "error"),
    [
        (None, [], 0.2, ValueError),  # empty
        (None, [0], 0.2, ValueError),  # one sample
        (["a", "a", "a"], [0, 1, 0], 0.3, ValueError),  # one patient
        (None, [0, 1, 0], 0.0, ValueError),
        (None, [0, 1, 0], 1.0, ValueError),
        (None, [0, 1, 0], 3, ValueError),  # a count that leaves no train
        (None, [0, 1, 0], True, TypeError),
        (None, [0, 1, 0], "0.2", TypeError),
        (["a", None, "b"], [0, 1, 0], 0.3, ValueError),  # unknown patient
        (["a", "b"], [0, 1, 0], 0.3, ValueError),  # length mismatch
    ],
)
def test_split_rejects_degenerate_input(groups, labels, test_size, error):
    with pytest.raises(error):
        patient_stratified_split(groups, labels, test_size)


@pytest.mark.parametrize("n_splits", [2, 5])
def test_kfold_from_a_count(n_splits):
    folds = kfold_indices(23, n_splits=n_splits, seed=1)
    assert len(folds) == n_splits
    assert_partition([val for _, val in folds], 23)
    for train, val in folds:
        assert_partition([train, val], 23)
        assert abs(len(val) - 23 / n_splits) < 1


def test_kfold_stratified_and_grouped():
    groups, labels = grouped_data(n_patients=300)
    folds = kfold_indices(labels, 5, seed=0, groups=groups)
    assert_partition([val for _, val in folds], len(labels))
    for train, val in folds:
        assert_no_leak(groups, train, val)
        for label in range(3):
            share = (labels == label).sum() / 5
            assert abs((labels[val] == label).sum() - share) <= max(3, 0.06 * share)


def test_kfold_stratify_flag():
    labels = np.array([0] * 50 + [1] * 50)
    stratified = kfold_indices(labels, 5, seed=0)
    assert all((labels[val] == 1).sum() == 10 for _, val in stratified)
    plain = kfold_indices(labels, 5, seed=0, stratify=False)
    assert_partition([val for _, val in plain], 100)
    assert any((labels[val] == 1).sum() != 10 for _, val in plain)  # seed 0: chance imbalance


@pytest.mark.parametrize(
    ("n_or_labels", "n_splits", "groups"),
    [
        (0, 5, None),
        (4, 5, None),
        (10, 1, None),
        ([0, 1, 0, 1], 3, ["a", "a", "b", "b"]),
        (True, 2, None),
    ],
)
def test_kfold_rejects_degenerate_input(n_or_labels, n_splits, groups):
    with pytest.raises((ValueError, TypeError)):
        kfold_indices(n_or_labels, n_splits, groups=groups)


def test_paper_roi_protocol_sizes():
    labels = np.repeat([0, 1, 2], [2500, 1250, 1250])  # malignant, benign, normal crops
    protocol = paper_roi_protocol(labels, seed=0)
    assert len(protocol.test) == 1000
    assert np.bincount(labels[protocol.test]).tolist() == [500, 250, 250]
    pool = np.setdiff1d(np.arange(5000), protocol.test)
    assert len(protocol.folds) == 5
    assert np.array_equal(np.sort(np.concatenate([v for _, v in protocol.folds])), pool)
    for train, val in protocol.folds:
        assert (len(train), len(val)) == (3200, 800)
        assert np.bincount(labels[val]).tolist() == [400, 200, 200]
        assert not set(train) & set(protocol.test.tolist())
    again = paper_roi_protocol(labels, seed=0)
    assert np.array_equal(again.test, protocol.test)


@pytest.mark.parametrize(("n", "n_test"), [(500, 100), (5000, 1000), (6000, 1000), (7, 1)])
def test_paper_roi_protocol_scales_down(n, n_test):
    protocol = paper_roi_protocol(np.arange(n) % 3, n_folds=2 if n < 10 else 5)
    assert len(protocol.test) == n_test


def test_paper_roi_protocol_repeated_holdout_and_groups():
    groups, labels = grouped_data(n_patients=400)
    protocol = paper_roi_protocol(labels, groups, seed=2, val_fraction=0.25, n_folds=3)
    pool = np.setdiff1d(np.arange(len(labels)), protocol.test)
    assert_no_leak(groups, pool, protocol.test)
    vals = []
    for train, val in protocol.folds:
        assert np.array_equal(np.sort(np.concatenate([train, val])), pool)
        assert_no_leak(groups, train, val)
        assert abs(len(val) / len(pool) - 0.25) < 0.03
        vals.append(set(val.tolist()))
    assert vals[0] != vals[1]  # independent hold-outs, not one repeated split


@pytest.mark.parametrize("bad", [{"val_fraction": 0.0}, {"n_test": 0}, {"n_test": 5000}])
def test_paper_roi_protocol_rejects(bad):
    with pytest.raises(ValueError):
        paper_roi_protocol(np.arange(5000) % 3, **bad)


def make_records(n, patients=None):
    records = []
    for i in range(n):
        label = [[0], [1], []][i % 3]
        records.append(
            ImageRecord(
                f"img{i}.png",
                [[0, 0, 4, 4]] * len(label),
                label,
                patient_id=None if patients is None else patients[i],
            )
        )
    return records


@pytest.mark.parametrize(
    ("n", "n_train", "n_test"), [(3265, 2888, 377), (326, 288, 38), (4000, 3623, 377)]
)
def test_paper_detector_split_sizes(n, n_train, n_test):
    records = make_records(n)
    train, test = paper_detector_split(records, seed=0)
    assert (len(train), len(test)) == (n_train, n_test)
    image_labels = np.array([r.image_label for r in records])
    for label in range(3):
        assert abs((image_labels[test] == label).sum() - n_test / 3) < 2


def test_paper_detector_split_keeps_patients_together():
    patients = [f"p{i // 4}" for i in range(400)]  # four views per woman
    records = make_records(400, patients)
    train, test = paper_detector_split(records, seed=1)
    assert_partition([train, test], 400)
    assert_no_leak(patients, train, test)
    assert abs(len(test) - round(377 * 400 / 3265)) <= 4


@pytest.mark.parametrize("seed", range(4))
def test_kfold_never_leaves_a_fold_empty(seed):
    groups = ["a"] * 10 + ["b", "c"]  # one patient holds most samples
    folds = kfold_indices([0] * 12, 3, seed=seed, groups=groups)
    assert all(len(val) for _, val in folds)
    assert_partition([val for _, val in folds], 12)
