"""``calcsdk demo``: the main job on the embedded default, with no training and no network.

Runs on the sample mammograms shipped inside the package. Until the shipped detector bundle
exists this shows the preprocessing (breast mask, working-spacing image) of each sample.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")


def run(args: argparse.Namespace) -> int:
    from calcsdk.commands import preprocess
    from calcsdk.errors import CalcSdkError
    from calcsdk.samples import SAMPLES_DIR, sample_paths

    paths = sample_paths()
    if not paths:
        raise CalcSdkError("no sample mammograms are installed", SAMPLES_DIR)
    ns = argparse.Namespace(
        paths=paths,
        out=args.out,
        working_spacing=preprocess.DEFAULT_WORKING_SPACING_MM,
        spacing=None,
    )
    return preprocess.run(ns)
