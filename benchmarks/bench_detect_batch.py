"""Serial ``detect`` vs pipelined ``detect_batch`` on the same images, in one process.

    python -m calcsdk.benchmarks.bench_detect_batch [--model BUNDLE] [--precision int8] \
        [--images DIR] [--repeat 2] [--device cuda]

The images default to the shipped samples, each used ``--repeat`` times. Both runs are timed
after one warm-up image; identical detections are asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from calcsdk import Detector
    from calcsdk.samples import sample_paths

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = sorted(args.images.iterdir()) if args.images else sample_paths()
    images = [str(p) for p in paths] * args.repeat
    detector = Detector(args.model, precision=args.precision, device=args.device)
    detector.detect(images[0])  # warm-up
    t = time.perf_counter()
    serial = [detector.detect(p) for p in images]
    serial_s = time.perf_counter() - t
    t = time.perf_counter()
    batch = detector.detect_batch(images)
    batch_s = time.perf_counter() - t
    same = all(len(a) == len(b) and (a.boxes == b.boxes).all() for a, b in zip(serial, batch))
    report = {
        "benchmark": "detect_batch",
        "model": detector.model_version,
        "precision": args.precision,
        "device": args.device,
        "images": len(images),
        "serial_seconds": round(serial_s, 3),
        "pipelined_seconds": round(batch_s, 3),
        "speedup": round(serial_s / batch_s, 3),
        "identical_detections": same,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
