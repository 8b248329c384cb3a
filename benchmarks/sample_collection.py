"""Speed of the R-CNN's training-sample collection (proposals, labels, warps) against the number
of processes (``calcsdk train rcnn --sample-workers N``).

Each run makes the samples of the first ``--images`` images of a ``calcsdk synth`` set into a
fresh temporary cache, as ``--samples-cache`` does, and times it, process start-up included.
The worker counts are run in the order given, alternated ``--repeat`` times, so that their
ratio is taken in one run on this shared machine.

    python -m calcsdk.benchmarks.sample_collection --data synth_default --images 40 \\
        --workers 1 2 --repeat 2 --json benchmarks/results/sample_collection.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from calcsdk.benchmarks.environment import environment_fingerprint
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.rcnn.samples import SampleConfig
from calcsdk.training.rcnn.train import collect_samples


def measure(data: Path, images: int, workers: list[int], repeat: int, negatives: int) -> dict:
    """Seconds per run for each worker count; medians and the ratio to the first count."""
    records = load_coco(data / "annotations.json")[:images]
    config = SampleConfig(negatives_per_image=negatives)
    seconds: dict[int, list[float]] = {n: [] for n in workers}
    for _ in range(repeat):
        for n in workers:
            with tempfile.TemporaryDirectory() as cache:
                start = time.perf_counter()
                collect_samples(records, config, cache_dir=cache, workers=n)
                seconds[n].append(round(time.perf_counter() - start, 2))
    medians = {n: statistics.median(v) for n, v in seconds.items()}
    return {
        "benchmark": "sample_collection",
        "data": str(data),
        "images": len(records),
        "negatives_per_image": negatives,
        "seconds": {str(n): v for n, v in seconds.items()},
        "median_seconds": {str(n): medians[n] for n in workers},
        "images_per_second": {str(n): round(len(records) / medians[n], 3) for n in workers},
        "speedup_vs_first": {str(n): round(medians[workers[0]] / medians[n], 2) for n in workers},
        "environment": environment_fingerprint(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.sample_collection")
    parser.add_argument("--data", type=Path, required=True, help="calcsdk synth output folder")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--negatives-per-image", type=int, default=24)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = measure(args.data, args.images, args.workers, args.repeat, args.negatives_per_image)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
