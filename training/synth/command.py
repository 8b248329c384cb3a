"""``calcsdk synth``: write a synthetic mammogram data set (images, COCO boxes, ROIs).

Examples::

    calcsdk synth --images 20 --out out/synth-small --spacing 0.2 --size 100x125mm
    calcsdk synth --out out/synth --workers 8            # the paper's scale: 3,265 images
    calcsdk synth --images 200 --out out/ins --backgrounds my_mammograms/
"""

from __future__ import annotations

import argparse
import logging
import re

from calcsdk.training.synth.config import SUPPORTED_BITS, SynthConfig
from calcsdk.training.synth.plan import PAPER_IMAGES, paper_counts

logger = logging.getLogger(__name__)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[xX]\s*(\d+(?:\.\d+)?)\s*(mm)?\s*$")


def parse_size(text: str, spacing_mm: float) -> tuple[int, int]:
    """``"WxH"`` pixels or ``"WxHmm"`` millimetres -> ``(width_px, height_px)``.

    Raises:
        ValueError: not of that form.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"--size should look like 2048x2560 (pixels) or 240x300mm, got {text!r}")
    width, height = float(match.group(1)), float(match.group(2))
    if match.group(3):
        return round(width / spacing_mm), round(height / spacing_mm)
    if width != int(width) or height != int(height):
        raise ValueError(
            f"a size in pixels needs whole numbers, got {text!r} (add 'mm' for millimetres)"
        )
    return int(width), int(height)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``synth`` options to ``parser``."""
    defaults = SynthConfig()
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--images",
        type=int,
        default=PAPER_IMAGES,
        help="number of images (default: %(default)s, the paper's)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="data-set seed; same seed, same bytes (default: %(default)s)",
    )
    parser.add_argument(
        "--rois",
        type=int,
        default=None,
        help="classifier ROIs, malignant:benign:normal = 2:1:1 (default: 5000 per 3265 images)",
    )
    parser.add_argument(
        "--malignant-images",
        type=int,
        default=None,
        help="images with a malignant cluster (default: 883 per 3265)",
    )
    parser.add_argument(
        "--benign-images",
        type=int,
        default=None,
        help="images with only benign clusters (default: 552 per 3265)",
    )
    parser.add_argument(
        "--boxes",
        type=int,
        default=None,
        help="total clusters, 1-4 per featuring image (default: 2500 per 3265)",
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=defaults.spacing_mm,
        help="pixel spacing in mm, 0.05-0.2 (default: %(default)s)",
    )
    parser.add_argument(
        "--size",
        default=f"{defaults.width_px}x{defaults.height_px}",
        help="image size, WxH pixels or WxHmm (default: %(default)s)",
    )
    parser.add_argument(
        "--bits",
        type=int,
        choices=SUPPORTED_BITS,
        default=defaults.bits,
        help="bits stored of FFDM images (default: %(default)s)",
    )
    parser.add_argument(
        "--film-fraction",
        type=float,
        default=defaults.film_fraction,
        help="share of patients on digitised film, 8-bit (default: %(default)s)",
    )
    parser.add_argument(
        "--hard-fraction",
        type=float,
        default=defaults.hard_fraction,
        help="share of hard-case clusters (default: %(default)s)",
    )
    parser.add_argument(
        "--dicom",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also write DICOM (default: when pydicom is installed)",
    )
    parser.add_argument(
        "--markers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="burn lead markers and labels into the background (default: on)",
    )
    parser.add_argument(
        "--backgrounds", default=None, help="folder of real mammograms to insert clusters into"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes (default: %(default)s)"
    )


def run(args: argparse.Namespace) -> int:
    """Generate the data set described by ``args``; returns 0.

    Raises:
        ValueError: inconsistent arguments; ImportError: ``--dicom`` without pydicom.
    """
    from calcsdk.training.synth.background import list_backgrounds
    from calcsdk.training.synth.dataset import synthesize_dataset
    from calcsdk.training.synth.dicom import dicom_available

    width, height = parse_size(args.size, args.spacing)
    config = SynthConfig(
        spacing_mm=args.spacing,
        width_px=width,
        height_px=height,
        bits=args.bits,
        film_fraction=args.film_fraction,
        hard_fraction=args.hard_fraction,
        markers=args.markers,
    )
    counts = paper_counts(
        args.images,
        malignant_images=args.malignant_images,
        benign_images=args.benign_images,
        boxes=args.boxes,
        rois=args.rois,
    )
    dicom = dicom_available() if args.dicom is None else args.dicom
    backgrounds = list_backgrounds(args.backgrounds) if args.backgrounds else None
    logger.info(
        "synth: %d images (%d malignant, %d benign), %d boxes, %d ROIs, %dx%d px at %.3f mm -> %s",
        counts.images,
        counts.malignant_images,
        counts.benign_images,
        counts.boxes,
        counts.rois,
        width,
        height,
        args.spacing,
        args.out,
    )
    summary = synthesize_dataset(
        args.out,
        config,
        counts,
        args.seed,
        workers=args.workers,
        dicom=dicom,
        backgrounds=backgrounds,
    )
    print(
        f"synth: {summary.images} images, boxes {summary.boxes}, ROIs {summary.rois}, "
        f"{summary.seconds:.1f} s -> {summary.out_dir}"
    )
    return 0
