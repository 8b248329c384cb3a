"""Training tiles per second that one CPU core prepares for YOLOv4 (the data path alone).

    python -m calcsdk.benchmarks.yolo_data_throughput --coco synth_default/annotations.json \\
        --images 24 --json benchmarks/results/yolo_data_throughput.json

Answers whether a GPU run waits for its loader: with W DataLoader workers the loader can
supply about W times the figure here (each worker is one process doing exactly this work).

Two steps are timed, in this process, for the named config (network size, tiling, spacing),
with and without mosaic:

1. ``prepare``: read, resample to the working spacing, mask, normalise and plan the tiles of
   ``--images`` images, caching each working image as float16 ``.npy`` (once per image and
   run; later epochs only memory-map it).
2. ``sample``: ``dataset[i]`` for the first ``--samples`` items of epoch 0's training order
   (jitter, optional mosaic, flips, intensity jitter and the tensor conversion). The median
   and p90 of single items, and the items per second over the whole loop.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from calcsdk.benchmarks.environment import environment_fingerprint
from calcsdk.training.datasets import ImageRecord, load_coco
from calcsdk.training.yolo.config import get_config
from calcsdk.training.yolo.data import YoloTileDataset


def measure(
    records: list[ImageRecord], config_name: str, samples: int, mosaic: bool, **overrides
) -> dict:
    """One prepare + sample pass (see the module docstring); times in seconds."""
    config = get_config(config_name, mosaic=mosaic, **overrides)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        dataset = YoloTileDataset(records, config, train=True, cache_dir=cache)
        prepare = time.perf_counter() - start
        order = dataset.epoch_indices(0)[:samples]
        times = []
        start = time.perf_counter()
        for index in order:
            begin = time.perf_counter()
            dataset[int(index)]
            times.append(time.perf_counter() - begin)
        total = time.perf_counter() - start
    return {
        "mosaic": mosaic,
        "network_size": config.network_size,
        "working_spacing_mm": config.working_spacing_mm,
        "images": len(records),
        "tiles": len(dataset),
        "prepare_seconds": prepare,
        "prepare_images_per_second": len(records) / prepare,
        "samples": len(times),
        "sample_median_ms": 1000 * statistics.median(times),
        "sample_p90_ms": 1000 * float(np.percentile(times, 90)),
        "tiles_per_second": len(times) / total,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco", required=True, help="annotations.json of a synthetic set")
    parser.add_argument("--images", type=int, default=24, help="first N images of the set")
    parser.add_argument("--samples", type=int, default=200, help="items timed per pass")
    parser.add_argument("--config", default="yolov4-1")
    parser.add_argument("--network-size", type=int, help="override the config's network size")
    parser.add_argument("--tile-overlap", type=int, help="override the config's tile overlap")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.images < 1 or args.samples < 1:
        raise SystemExit("--images and --samples should be >= 1")
    records = load_coco(args.coco)[: args.images]
    overrides = {
        field: value
        for field, value in (
            ("network_size", args.network_size),
            ("tile_overlap", args.tile_overlap),
        )
        if value is not None
    }
    runs = [measure(records, args.config, args.samples, m, **overrides) for m in (False, True)]
    result = {
        "benchmark": "yolo_data_throughput",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "config": args.config,
        "includes": "one process, one core: prepare (read + resample + mask + tiles + float16 "
        "cache) then dataset[i] (jitter, mosaic when on, flips, intensity, tensors)",
        "environment": environment_fingerprint(),
        "runs": runs,
        "command": "python -m calcsdk.benchmarks.yolo_data_throughput " + " ".join(argv or []),
    }
    for run in runs:
        print(
            f"mosaic {'on ' if run['mosaic'] else 'off'}: {run['tiles_per_second']:.1f} tiles/s "
            f"(median {run['sample_median_ms']:.1f} ms, p90 {run['sample_p90_ms']:.1f} ms); "
            f"prepare {run['prepare_images_per_second']:.1f} images/s"
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
