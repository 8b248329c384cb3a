"""Fixtures shared by the detector-training tests."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture(scope="session")
def tiny_detection_data(tmp_path_factory):
    """24 small synthetic mammograms (60 x 80 mm at 0.1 mm, no film, no hard clusters; 10 with
    a malignant cluster, 8 benign): the folder with ``annotations.json``."""
    from calcsdk.training.synth import command as synth

    data = tmp_path_factory.mktemp("rcnn-data")
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = ["--out", str(data), "--images", "24", "--malignant-images", "10"]
    args += ["--benign-images", "8", "--boxes", "20", "--rois", "8", "--spacing", "0.1"]
    args += ["--size", "60x80mm", "--film-fraction", "0", "--hard-fraction", "0", "--no-dicom"]
    args += ["--seed", "3"]
    assert synth.run(parser.parse_args(args)) == 0
    return data
