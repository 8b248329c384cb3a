"""Data-set plan: counts scale the paper's, classes match the request, ROIs split 2:1:1."""

from __future__ import annotations

from collections import Counter

import pytest

from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.plan import DatasetCounts, paper_counts, plan_dataset


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (3265, (883, 552, 2500, 5000)),  # the paper's data set
        (20, (5, 3, 15, 31)),
        (0, (0, 0, 0, 0)),
        (1, (0, 0, 0, 2)),  # no featuring image: boxes clamp to 0
    ],
)
def test_paper_counts_scale_the_papers_proportions(images, expected):
    counts = paper_counts(images)
    assert (counts.malignant_images, counts.benign_images, counts.boxes, counts.rois) == expected
    assert counts.strict is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"images": 4, "malignant_images": 3, "benign_images": 2, "boxes": 5, "rois": 0},
            "exceeds",
        ),
        ({"images": 4, "malignant_images": 1, "benign_images": 1, "boxes": 1, "rois": 0}, "boxes"),
        ({"images": 4, "malignant_images": 1, "benign_images": 0, "boxes": 5, "rois": 0}, "boxes"),
        (
            {"images": -1, "malignant_images": 0, "benign_images": 0, "boxes": 0, "rois": 0},
            "images",
        ),
    ],
)
def test_inconsistent_counts_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DatasetCounts(**kwargs)


@pytest.mark.parametrize(
    ("rois", "split"),
    [(0, (0, 0, 0)), (4, (2, 1, 1)), (5000, (2500, 1250, 1250)), (31, (16, 8, 7))],
)
def test_roi_split_is_two_one_one(rois, split):
    assert DatasetCounts(8, 2, 1, 3, rois).roi_split == split


@pytest.mark.parametrize(
    ("images", "malignant", "benign", "boxes", "rois"),
    [(20, 5, 3, 15, 40), (9, 2, 2, 9, 8), (6, 0, 0, 0, 0)],
)
def test_plan_matches_the_requested_counts(images, malignant, benign, boxes, rois):
    counts = DatasetCounts(images, malignant, benign, boxes, rois)
    plans = plan_dataset(counts, SynthConfig(), seed=3)
    roles = Counter(p.role for p in plans)
    assert len(plans) == images
    assert roles["malignant"] == malignant and roles["benign"] == benign
    assert sum(len(p.cluster_labels) for p in plans) == boxes
    assert all(len(p.cluster_labels) <= 4 for p in plans)
    assert all(len(p.cluster_rois) == len(p.cluster_labels) for p in plans)
    per_label = Counter()
    for p in plans:
        for label, n in zip(p.cluster_labels, p.cluster_rois):
            per_label[label] += n
        per_label["normal"] += p.normal_rois
    assert (per_label["malignant"], per_label["benign"], per_label["normal"]) == counts.roi_split


def test_plan_is_deterministic_and_groups_views_by_patient():
    counts = DatasetCounts(10, 3, 2, 7, 12)
    first = plan_dataset(counts, SynthConfig(), seed=11)
    assert first == plan_dataset(counts, SynthConfig(), seed=11)
    assert first != plan_dataset(counts, SynthConfig(), seed=12)
    assert [(p.laterality, p.view) for p in first[:4]] == [
        ("L", "CC"),
        ("L", "MLO"),
        ("R", "CC"),
        ("R", "MLO"),
    ]
    for patient in {p.patient_index for p in first}:
        images = [p for p in first if p.patient_index == patient]
        assert len({p.density for p in images}) == 1 and len({p.film for p in images}) == 1
    assert [p.image_id for p in first] == list(range(1, 11))


def test_rois_for_a_missing_class_raise_when_explicit_and_drop_when_derived():
    with pytest.raises(ValueError, match="no malignant cluster"):
        plan_dataset(DatasetCounts(4, 0, 1, 1, 8), SynthConfig(), seed=0)
    derived = paper_counts(1)  # no featuring image, 2 ROIs: 1 malignant (dropped), 1 normal
    plans = plan_dataset(derived, SynthConfig(), seed=0)
    assert derived.roi_split == (1, 0, 1)
    assert sum(p.normal_rois for p in plans) == 1
    assert all(not p.cluster_labels for p in plans)
