"""Speed of the synthetic mammogram generator at 2048 x 2560 pixels (0.1 mm).

    python -m calcsdk.benchmarks.synth_speed --json benchmarks/results/synth_speed.json

Two measurements, after one burn-in image:

1. ``generate_image`` alone, in this process with OpenCV limited to one thread: seconds per
   image on one core (pixels and ground truth in memory, nothing written).
2. ``synthesize_dataset`` with ``--workers`` processes (default 2): images per second for the
   whole job, writing 16-bit PNG, DICOM, COCO JSON and the classifier ROIs (three PNGs each),
   process start-up included.

The image mix follows the paper's proportions (normal, malignant- and benign-featuring images,
some digitised film).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.dataset import synthesize_dataset
from calcsdk.training.synth.dicom import dicom_available
from calcsdk.training.synth.generator import generate_image
from calcsdk.training.synth.plan import paper_counts, plan_dataset


def single_core_seconds(config: SynthConfig, images: int, seed: int) -> list[float]:
    """Seconds per ``generate_image`` call on one core (after a burn-in image)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        plans = plan_dataset(paper_counts(max(images, 4) * 4), config, seed)[: images + 1]
        generate_image(config, plans[0])  # burn-in: imports, allocator, caches
        times = []
        for plan in plans[1:]:
            start = time.perf_counter()
            generate_image(config, plan)
            times.append(time.perf_counter() - start)
        return times
    finally:
        cv2.setNumThreads(threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/synth_speed.json")
    parser.add_argument(
        "--images",
        type=int,
        default=8,
        help="images timed on one core (twice as many in the data set)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = SynthConfig()  # 2048 x 2560 at 0.1 mm, 12 bits
    load_before = os.getloadavg()[0]
    times = single_core_seconds(config, args.images, args.seed)
    dicom = dicom_available()
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        counts = paper_counts(args.images * 2)
        summary = synthesize_dataset(
            out, config, counts, args.seed, workers=args.workers, dicom=dicom
        )
        elapsed = time.perf_counter() - start
    result = {
        "benchmark": "synth_speed",
        "size_px": [config.width_px, config.height_px],
        "spacing_mm": config.spacing_mm,
        "single_core": {
            "images": len(times),
            "seconds_per_image_median": round(statistics.median(times), 3),
            "seconds_per_image_mean": round(statistics.mean(times), 3),
            "includes": "generate_image only (anatomy, texture, clusters, exposure, processing, markers); nothing written",
        },
        "dataset": {
            "workers": args.workers,
            "images": summary.images,
            "seconds": round(elapsed, 2),
            "images_per_second": round(summary.images / elapsed, 3),
            "includes": f"process start-up, generation, 16-bit PNG{', DICOM' if dicom else ''}, COCO JSON, ROIs",
            "rois": summary.rois,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "opencv_threads_default": cv2.getNumThreads(),
            "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "note": "shared machine (other jobs running); timings vary with its load",
        },
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(
        f"synth speed: {result['single_core']['seconds_per_image_median']} s/image on one core; "
        f"{result['dataset']['images_per_second']} images/s with {args.workers} workers -> {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
