"""``calcsdk demo``: the main job on the embedded default, with no training and no network.

Scores the sample mammograms shipped inside the package with the shipped default bundle,
exactly as ``calcsdk detect`` would: writes ``detections.csv`` and annotated overlays under
``--out``, then prints the detections and a summary. If the package holds no default bundle
(a source checkout that has not built one), it shows the preprocessing instead and says so.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--conf", type=float, default=None, help="confidence threshold")


def run(args: argparse.Namespace) -> int:
    from calcsdk.cli_commands import detect, preprocess
    from calcsdk.detector import DEFAULT_BUNDLE
    from calcsdk.errors import CalcSdkError
    from calcsdk.samples import SAMPLES_DIR, sample_paths

    paths = sample_paths()
    if not paths:
        raise CalcSdkError("no sample mammograms are installed", SAMPLES_DIR)
    args.out.mkdir(parents=True, exist_ok=True)
    if not (DEFAULT_BUNDLE / "manifest.json").exists():
        print(
            f"no default bundle at {DEFAULT_BUNDLE}: showing the preprocessing only",
            file=sys.stderr,
        )
        return preprocess.run(
            argparse.Namespace(paths=paths, out=args.out, working_spacing=0.1, spacing=None)
        )
    out_csv = args.out / "detections.csv"
    for stale in args.out.glob("detections.csv*"):
        stale.unlink()  # a demo always starts afresh
    parser = argparse.ArgumentParser()
    detect.add_arguments(parser)
    argv = [*map(str, paths), "--out", str(out_csv), "--overlays", str(args.out / "overlays")]
    if args.conf is not None:
        argv += ["--conf", str(args.conf)]
    status = detect.run(parser.parse_args(argv))
    with open(out_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    print(f"\n{len(rows)} detection(s) on {len(paths)} sample mammogram(s):")
    for row in rows:
        print(
            f"  {Path(row['file']).name:32s} {row['class']:9s} score {float(row['score']):.2f}  "
            f"box x {float(row['x1']):.0f}-{float(row['x2']):.0f}, y {float(row['y1']):.0f}-"
            f"{float(row['y2']):.0f} px"
        )
    if not rows:
        threshold = "the bundle's threshold" if args.conf is None else f"{args.conf:g}"
        print(f"  none scored at or above {threshold}; `calcsdk demo --conf 0.1` lists "
              "lower-scored detections too")  # fmt: skip
    print(f"results: {out_csv}\noverlays: {args.out / 'overlays'}")
    return status
