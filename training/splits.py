"""Seeded, deterministic data splits: patient-level and stratified, k-fold, the paper's protocols.

numpy only. Every function takes plain per-sample arrays (``labels``, optional ``groups``: the
patient of each sample) and returns sorted int64 index arrays into them. Two rules hold for all:

* **no leakage**: all samples of one group land in the same part (train, validation or test);
* **stratification**: each part holds about its share of every label. Without groups (or when
  every group is one sample) the part sizes are exact (largest remainder) and each label's
  count in each part is within 2 of its share (about 1 in practice); with groups of several
  samples, whole groups are placed greedily, largest first, each where it most reduces the
  squared gap between the parts' per-label counts and their targets, so the counts are as
  close as the groups allow.

The same ``seed`` and inputs give the same split on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PAPER_ROI_TOTAL = 5000  # ROI crops in the paper: 2,500 malignant, 1,250 benign, 1,250 normal
PAPER_ROI_TEST = 1000  # held-out ROI test crops; the other 4,000 go to 5-fold CV (80/20)
PAPER_DETECTOR_TOTAL = 3265  # whole mammograms in the paper's ground-truth set
PAPER_DETECTOR_TEST = 377  # of which 377 test and 2,888 train

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RoiProtocol:
    """The paper's ROI-classifier protocol as indices into the ``labels`` given.

    Attributes:
        test: (n_test,) int64 held-out test indices.
        folds: one ``(train, val)`` pair of int64 index arrays per fold, both inside the
            non-test samples; each pair covers all non-test samples.
    """

    test: np.ndarray
    folds: list[Split]


def _codes(values: Sequence[Hashable] | np.ndarray, name: str) -> np.ndarray:
    """(n,) int64 codes of hashable values, numbered by first appearance."""
    table: dict[Any, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(np.asarray(values, dtype=object).reshape(-1).tolist()):
        if value is None:
            raise ValueError(f"{name}[{i}] is None; every sample needs a {name[:-1]} id")
        codes[i] = table.setdefault(value, len(table))
    return codes


def _exact_sizes(total: int, fractions: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of ``total * fractions`` to integers summing to ``total``;
    a part rounded to 0 takes 1 from the largest part (callers ensure ``total >= len``)."""
    quotas = total * fractions
    sizes = np.floor(quotas).astype(np.int64)
    remainders = np.argsort(-(quotas - sizes), kind="stable")
    sizes[remainders[: total - sizes.sum()]] += 1
    for part in np.flatnonzero(sizes == 0):
        sizes[np.argmax(sizes)] -= 1
        sizes[part] = 1
    return sizes


def _interleave(sizes: np.ndarray) -> np.ndarray:
    """A sequence of part indices with exactly ``sizes[p]`` of part p, spread evenly: item j of
    part p sits at ``(j + 0.5) * total / sizes[p]``, so every stretch holds each part about in
    proportion."""
    total = int(sizes.sum())
    keys = [(np.arange(s) + 0.5) * (total / max(int(s), 1)) for s in sizes]
    parts = [np.full(s, p, dtype=np.int64) for p, s in enumerate(sizes)]
    return np.concatenate(parts)[np.argsort(np.concatenate(keys), kind="stable")]


def _assign_parts(
    group_codes: np.ndarray,
    label_codes: np.ndarray,
    fractions: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n,) part index of each sample; see the module doc for the rule."""
    n_groups, n_parts = int(group_codes.max()) + 1, len(fractions)
    if n_groups < n_parts:
        raise ValueError(f"cannot make {n_parts} parts from {n_groups} group(s)")
    if n_groups == len(group_codes):  # one sample per group: exact sizes
        order = np.concatenate(
            [rng.permutation(np.flatnonzero(label_codes == c)) for c in np.unique(label_codes)]
        )
        parts = np.empty(len(order), dtype=np.int64)
        parts[order] = _interleave(_exact_sizes(len(order), fractions))
        return parts
    counts = np.zeros((n_groups, int(label_codes.max()) + 1))
    np.add.at(counts, (group_codes, label_codes), 1.0)
    targets = fractions[:, None] * counts.sum(axis=0)[None, :]
    current = np.zeros_like(targets)
    part_of_group = np.empty(n_groups, dtype=np.int64)
    shuffled = rng.permutation(n_groups)
    for group in shuffled[np.argsort(-counts[shuffled].sum(axis=1), kind="stable")]:
        change = (counts[group] * (counts[group] + 2.0 * (current - targets))).sum(axis=1)
        part = int(np.argmin(change))
        part_of_group[group] = part
        current[part] += counts[group]
    _fill_empty_parts(part_of_group, counts.sum(axis=1), n_parts)
    return part_of_group[group_codes]


def _fill_empty_parts(part_of_group: np.ndarray, group_sizes: np.ndarray, n_parts: int) -> None:
    """Give each empty part the smallest group of the biggest part that holds two or more
    groups (in place; callers ensure there are at least ``n_parts`` groups)."""
    for part in range(n_parts):
        if (part_of_group == part).any():
            continue
        loads = np.bincount(part_of_group, weights=group_sizes, minlength=n_parts)
        loads[np.bincount(part_of_group, minlength=n_parts) < 2] = -np.inf
        donor_groups = np.flatnonzero(part_of_group == int(np.argmax(loads)))
        part_of_group[donor_groups[np.argmin(group_sizes[donor_groups])]] = part


def _inputs(
    labels: Sequence[Hashable] | np.ndarray, groups: Sequence[Hashable] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    label_codes = _codes(labels, "labels")
    if groups is None:
        return np.arange(len(label_codes)), label_codes
    group_codes = _codes(groups, "groups")
    if len(group_codes) != len(label_codes):
        raise ValueError(f"groups has {len(group_codes)} entries, labels {len(label_codes)}")
    return group_codes, label_codes


def _test_fraction(test_size: float, n: int) -> float:
    """The test share as ``count / n``; a fraction is rounded UP to a count in [1, n - 1] (as
    scikit-learn's ``train_test_split`` does)."""
    if isinstance(test_size, bool) or not isinstance(test_size, int | float | np.number):
        raise TypeError(f"test_size should be a fraction or a count, got {test_size!r}")
    if isinstance(test_size, int | np.integer):
        if not 1 <= test_size < n:
            raise ValueError(f"test_size count should be in [1, {n - 1}], got {test_size}")
        return test_size / n
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size fraction should be in (0, 1), got {test_size}")
    count = math.ceil(float(test_size) * n - 1e-9)  # tolerance: 0.7 * 10 is 7.000000000000001
    return min(max(count, 1), n - 1) / n


def patient_stratified_split(
    groups: Sequence[Hashable] | np.ndarray | None,
    labels: Sequence[Hashable] | np.ndarray,
    test_size: float,
    seed: int = 0,
) -> Split:
    """Split samples into train and test, never putting one patient in both, stratified by label.

    Args:
        groups: (n,) patient id of each sample (any hashable, not None), or None when every
            sample is its own patient.
        labels: (n,) class of each sample (any hashable).
        test_size: fraction in (0, 1) (rounded up to whole samples, at least 1 and at most
            n - 1) or a count in [1, n - 1] of samples; exact without groups, approximate (as
            the groups allow) with them.
        seed: the random seed.

    Returns:
        ``(train, test)`` sorted int64 index arrays, disjoint, covering ``range(n)``, both
        non-empty.

    Raises:
        ValueError: fewer than 2 samples or groups, bad ``test_size``. TypeError: ``test_size``
        neither a float nor an int.
    """
    group_codes, label_codes = _inputs(labels, groups)
    if len(label_codes) < 2:
        raise ValueError(f"need at least 2 samples to split, got {len(label_codes)}")
    fraction = _test_fraction(test_size, len(label_codes))
    rng = np.random.default_rng([seed, 0])
    parts = _assign_parts(group_codes, label_codes, np.array([1.0 - fraction, fraction]), rng)
    return np.flatnonzero(parts == 0), np.flatnonzero(parts == 1)


def kfold_indices(
    n_or_labels: int | Sequence[Hashable] | np.ndarray,
    n_splits: int = 5,
    seed: int = 0,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    stratify: bool = True,
) -> list[Split]:
    """K-fold cross-validation indices, group-aware and (optionally) stratified.

    Args:
        n_or_labels: the number of samples, or their (n,) labels.
        n_splits: number of folds, >= 2 and <= the number of groups.
        seed: the random seed.
        groups: (n,) patient ids, or None.
        stratify: balance the labels across folds (ignored when only a count is given).

    Returns:
        ``n_splits`` pairs ``(train, val)`` of sorted int64 indices; the validation sets are
        disjoint and cover ``range(n)``; no group is in both members of a pair.
    """
    if isinstance(n_or_labels, int | np.integer) and not isinstance(n_or_labels, bool):
        labels: Any = np.zeros(int(n_or_labels), dtype=np.int64)
    else:
        labels = n_or_labels
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ValueError(f"n_splits should be an int >= 2, got {n_splits!r}")
    group_codes, label_codes = _inputs(labels, groups)
    if len(label_codes) == 0:
        raise ValueError("cannot make folds from 0 samples")
    if not stratify:
        label_codes = np.zeros_like(label_codes)
    rng = np.random.default_rng([seed, 1])
    parts = _assign_parts(group_codes, label_codes, np.full(n_splits, 1.0 / n_splits), rng)
    return [(np.flatnonzero(parts != k), np.flatnonzero(parts == k)) for k in range(n_splits)]


def _paper_count(n_test: int, n: int, paper_total: int) -> int:
    """``n_test`` as in the paper when there are at least ``paper_total`` samples, else scaled
    down proportionally (at least 1)."""
    if isinstance(n_test, bool) or not isinstance(n_test, int | np.integer) or n_test < 1:
        raise ValueError(f"n_test should be an int >= 1, got {n_test!r}")
    count = int(n_test) if n >= paper_total else max(1, round(n_test * n / paper_total))
    if count >= n:
        raise ValueError(f"n_test={count} leaves no training data among {n} samples")
    return count


def paper_roi_protocol(
    labels: Sequence[Hashable] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    seed: int = 0,
    n_test: int = PAPER_ROI_TEST,
    n_folds: int = 5,
    val_fraction: float = 0.2,
) -> RoiProtocol:
    """The paper's ROI-classifier protocol: 1,000 of 5,000 crops held out for test, 5-fold CV
    with 80 % train / 20 % validation inside the other 4,000.

    With fewer than 5,000 samples the test count is scaled down proportionally
    (``round(n_test * n / 5000)``); with more, ``n_test`` is used as is. When
    ``val_fraction == 1 / n_folds`` (the paper: 0.2 and 5) the folds are k-fold (each non-test
    sample validated once); otherwise each fold is an independent stratified split with
    ``val_fraction`` of the non-test samples for validation (repeated hold-out).

    Args:
        labels: (n,) class of each crop (e.g. 0 malignant, 1 benign, 2 normal).
        groups: (n,) patient of each crop, or None; no patient is split across parts.
        seed: the random seed. n_test: test crops at the paper's size (1,000).
        n_folds: number of folds (5). val_fraction: validation share inside a fold (0.2).

    Returns:
        :class:`RoiProtocol` with indices into ``labels``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction should be in (0, 1), got {val_fraction}")
    group_codes, label_codes = _inputs(labels, groups)
    count = _paper_count(n_test, len(label_codes), PAPER_ROI_TOTAL)
    pool, test = patient_stratified_split(group_codes, label_codes, count, seed)
    pool_groups = None if groups is None else group_codes[pool]
    if math.isclose(val_fraction, 1.0 / n_folds):
        folds = kfold_indices(label_codes[pool], n_folds, seed, groups=pool_groups)
    else:
        folds = [
            patient_stratified_split(pool_groups, label_codes[pool], val_fraction, seed + 1 + k)
            for k in range(n_folds)
        ]
    return RoiProtocol(test=test, folds=[(pool[train], pool[val]) for train, val in folds])


def paper_detector_split(
    records: Sequence[Any], n_test: int = PAPER_DETECTOR_TEST, seed: int = 0
) -> Split:
    """The paper's detector split: 377 test / 2,888 train whole mammograms of 3,265.

    Patient-level (``record.group_id``: the patient id, else the image path) and stratified by
    the image-level class (``record.image_label``: malignant, benign or normal). With fewer than
    3,265 records the test count is scaled down proportionally; with patient groups it is
    approximate.

    Args:
        records: :class:`~calcsdk.training.datasets.ImageRecord` (or anything with
            ``group_id`` and ``image_label``).
        n_test: test images at the paper's size (377). seed: the random seed.

    Returns:
        ``(train, test)`` sorted int64 indices into ``records``.
    """
    count = _paper_count(n_test, len(records), PAPER_DETECTOR_TOTAL)
    groups = [record.group_id for record in records]
    labels = [record.image_label for record in records]
    return patient_stratified_split(groups, labels, count, seed)
