"""``calcsdk train rcnn`` refuses bad counts before it reads any data."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from calcsdk.training.rcnn import command


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "0"], "--epochs should be >= 1, got 0"),  # once silently meant 50
        (["--batch-size", "-4"], "--batch-size should be >= 1, got -4"),
        (["--folds", "0"], "--folds should be >= 1, got 0"),
        (["--mine-images", "0"], "--mine-images should be >= 1, got 0"),
        (["--svm-rounds", "0"], "--svm-rounds should be >= 1, got 0"),
    ],
)
def test_bad_counts_are_refused(tmp_path, extra, message):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path / "missing"), "--out", str(tmp_path), *extra])
    with pytest.raises(SystemExit, match=message):
        command.run(args)


@pytest.mark.slow
def test_one_split_run_fills_the_samples_cache_and_reports(tiny_detection_data, tmp_path):
    # --samples-cache numbers samples by position among the training images, as --folds
    # does, so one cache serves both; its entries are the run's own samples
    from calcsdk import Detector
    from calcsdk.training.datasets.coco import load_coco
    from calcsdk.training.splits import paper_detector_split

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    cache = tmp_path / "samples"
    args = ["--data", str(tiny_detection_data), "--out", str(tmp_path / "run"), "--width",
            "0.0625", "--epochs", "1", "--batch-size", "32", "--max-boxes", "100",
            "--negatives-per-image", "8", "--samples-cache", str(cache)]  # fmt: skip
    assert command.run(parser.parse_args(args)) == 0
    records = load_coco(tiny_detection_data / "annotations.json")
    train, _ = paper_detector_split(records)
    entries = sorted(cache.glob("*.npz"))
    assert len(entries) == len(train)
    with np.load(entries[-1]) as last:
        assert str(last["image_path"]) == records[train[-1]].image_path
    Detector(tmp_path / "run" / "bundle")
    # the same report as --folds: Tables 5/6, FROC, overlays, proposal recall
    run = tmp_path / "run"
    report = (run / "report.md").read_text()
    assert "one split" in report and "Table 5" in report and "Proposal recall" in report
    assert (run / "froc.png").stat().st_size > 0 and list((run / "overlays").glob("*.png"))
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) + len(split["val"]) == len(train)
    assert len(split["test"]) == len(records) - len(train)
