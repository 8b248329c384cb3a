"""``calcsdk preprocess PATH... --out DIR``: the runtime's preprocessing, made visible.

For each mammogram: read it, find the breast mask, resample to the working spacing and
normalise to [0, 1]; write ``<stem>_working.png`` (8-bit, the network's view of the breast),
``<stem>_mask.png`` and a ``preprocess.jsonl`` line with shapes, spacings and the breast area.
One unreadable file is reported and skipped; the exit status is 1 if any file failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_WORKING_SPACING_MM = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, help="mammogram files")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--working-spacing",
        type=float,
        default=DEFAULT_WORKING_SPACING_MM,
        help="working pixel spacing in mm (default %(default)s)",
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=None,
        help="pixel spacing in mm to assume when a file does not state one",
    )


def preprocess_file(path: Path, out: Path, working_mm: float, spacing_mm: float | None) -> dict:
    """Preprocess one file and write its PNGs; returns the summary row. Raises CalcSdkError."""
    import cv2
    import numpy as np

    from calcsdk.errors import InvalidPixelsError
    from calcsdk.image import read_mammogram
    from calcsdk.preprocess import breast_mask, normalize_image, resample_to_spacing

    mammo = read_mammogram(path)
    spacing = mammo.spacing_mm or ((spacing_mm, spacing_mm) if spacing_mm else None)
    if spacing is None:
        raise InvalidPixelsError("pixel spacing unknown; pass --spacing", path)
    working, scale = resample_to_spacing(mammo.pixels, spacing, working_mm)
    mask = breast_mask(working, working_mm)
    image01 = normalize_image(working, mask)
    stem = path.stem
    cv2.imwrite(str(out / f"{stem}_working.png"), np.round(image01 * mask * 255).astype(np.uint8))
    cv2.imwrite(str(out / f"{stem}_mask.png"), mask.astype(np.uint8) * 255)
    return {
        "file": str(path),
        "shape": list(mammo.pixels.shape),
        "dtype": str(mammo.pixels.dtype),
        "spacing_mm": list(spacing),
        "working_spacing_mm": working_mm,
        "working_shape": list(working.shape),
        "scale": list(scale),
        "view": mammo.view,
        "laterality": mammo.laterality,
        "breast_area_cm2": round(float(mask.sum()) * working_mm * working_mm / 100.0, 2),
    }


def run(args: argparse.Namespace) -> int:
    from calcsdk.errors import CalcSdkError

    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with open(args.out / "preprocess.jsonl", "w", encoding="utf-8") as log:
        for path in args.paths:
            try:
                row = preprocess_file(path, args.out, args.working_spacing, args.spacing)
            except CalcSdkError as exc:
                failures += 1
                print(f"skipped {exc}", file=sys.stderr)
                continue
            log.write(json.dumps(row) + "\n")
            print(
                f"{path.name}: {row['shape'][1]}x{row['shape'][0]} px at "
                f"{row['spacing_mm'][0]:.3f} mm -> {row['working_shape'][1]}x"
                f"{row['working_shape'][0]} at {args.working_spacing} mm, breast "
                f"{row['breast_area_cm2']} cm2"
            )
    print(f"wrote {args.out} ({len(args.paths) - failures} ok, {failures} failed)")
    return 1 if failures else 0
