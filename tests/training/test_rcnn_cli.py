"""``calcsdk train rcnn`` refuses bad counts before it reads any data."""

from __future__ import annotations

import argparse

import pytest

from calcsdk.training.rcnn import command


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epochs", "0"], "--epochs should be >= 1, got 0"),  # once silently meant 50
        (["--batch-size", "-4"], "--batch-size should be >= 1, got -4"),
        (["--folds", "0"], "--folds should be >= 1, got 0"),
    ],
)
def test_bad_counts_are_refused(tmp_path, extra, message):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path / "missing"), "--out", str(tmp_path), *extra])
    with pytest.raises(SystemExit, match=message):
        command.run(args)
