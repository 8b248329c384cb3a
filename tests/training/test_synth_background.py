"""Clusters inserted into user-supplied mammograms (``--backgrounds``)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from calcsdk.image import read_mammogram, write_png
from calcsdk.training.synth import command
from calcsdk.training.synth.background import insert_clusters, list_backgrounds
from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.generator import generate_image
from calcsdk.training.synth.plan import ImagePlan

SMALL = SynthConfig(spacing_mm=0.2, width_px=400, height_px=500, markers=False)


@pytest.fixture(scope="module")
def backgrounds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backgrounds")
    for index, laterality in enumerate("LR"):
        plan = ImagePlan(index, 1, 0, "CC", laterality, "B", False, ())
        image = generate_image(SMALL, plan)
        write_png(folder / f"bg{index}.png", image.pixels, 0.2, bits_stored=image.bits_stored)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("labels", [(), ("malignant",), ("malignant", "benign", "benign")])
def test_clusters_are_added_inside_the_breast_only(backgrounds, labels):
    path = backgrounds / "bg1.png"
    original = read_mammogram(path).pixels
    plan = ImagePlan(0, 3, 0, "CC", "R", "B", False, labels, (0,) * len(labels), 0)
    image = insert_clusters(path, plan, SMALL)
    assert image.pixels.dtype == original.dtype and image.pixels.shape == original.shape
    assert image.spacing_mm == pytest.approx(0.2, rel=1e-3) and image.metadata["laterality"] == "R"
    assert [c.label for c in image.clusters] == list(labels)
    changed = image.pixels.astype(int) != original.astype(int)
    allowed = np.zeros_like(changed)
    for cluster in image.clusters:
        x1, y1, x2, y2 = cluster.box_xyxy
        assert image.breast_mask[int(y1) : math.ceil(y2), int(x1) : math.ceil(x2)].all()
        allowed[
            max(0, int(y1) - 3) : math.ceil(y2) + 3, max(0, int(x1) - 3) : math.ceil(x2) + 3
        ] = True
    assert changed.any() == bool(labels)
    assert not (changed & ~image.breast_mask).any()  # nothing changes outside the breast
    if "benign" not in labels:  # benign ones may bring soft tissue (fibroadenoma, vessel, oil cyst)
        assert not (changed & ~allowed).any()  # nothing outside the boxes (plus blur) changes
        assert (image.pixels.astype(int) >= original.astype(int)).all()  # calcium adds attenuation


def test_command_cycles_through_backgrounds(backgrounds, tmp_path):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path),
            "--images",
            "3",
            "--malignant-images",
            "1",
            "--benign-images",
            "1",
            "--boxes",
            "2",
            "--rois",
            "4",
            "--backgrounds",
            str(backgrounds),
            "--no-dicom",
        ]
    )
    assert command.run(args) == 0
    document = json.loads((tmp_path / "annotations.json").read_text())
    assert [entry["background"] for entry in document["images"]] == [
        "bg0.png",
        "bg1.png",
        "bg0.png",
    ]
    assert len(document["annotations"]) == 2 and not (tmp_path / "dicom").exists()


def test_listing_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_backgrounds(tmp_path / "missing")
    with pytest.raises(ValueError, match="no image files"):
        list_backgrounds(tmp_path)
