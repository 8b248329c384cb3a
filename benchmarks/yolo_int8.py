"""Full-size YOLOv4 (CSPDarknet53, 1 input channel, 2 classes) at 608x608 in onnxruntime on CPU:
fp32 vs static QDQ int8, one process (the speed issue's "YOLOv4 at 608, full size" target).

Random weights (latency does not depend on them); exported with the SDK's exporter (decoding
in the graph, as bundles ship it) and quantised with :func:`calcsdk.export.quantize.quantize_yolo`
on ``--calibration`` inputs cut from the shipped sample mammograms. Batch 1, ``--threads``
intra-op threads, ORT_ENABLE_ALL; the p50 of ``--runs`` timed ``session.run`` calls after one
warm-up. ``--naive-mish`` also times the graph with onnxruntime's own Mish expansion
(Softplus), the export before ``calcsdk.export.mish_export``. Writes
``benchmarks/results/yolo_int8.json``.

    python -m calcsdk.benchmarks.yolo_int8 --naive-mish
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import numpy as np
import onnxruntime as ort
import torch

from calcsdk.export.onnx_yolo import export_yolo
from calcsdk.export.quantize import quantize_yolo
from calcsdk.image import read_mammogram
from calcsdk.prepare import prepare_mammogram
from calcsdk.samples import sample_paths
from calcsdk.training.models.yolov4 import YOLOv4, YOLOv4Config

RESULT = Path(__file__).resolve().parent / "results" / "yolo_int8.json"
ANCHORS = np.array(  # YOLOv4's COCO anchors at 608 (latency does not depend on them)
    [[12, 16], [19, 36], [40, 28], [36, 75], [76, 55], [72, 146], [142, 110], [192, 243],
     [459, 401]], np.float32,
)  # fmt: skip


def sample_inputs(n: int, size: int, spacing_mm: float = 0.2, seed: int = 0) -> np.ndarray:
    """(n, 1, size, size) float32 windows of the shipped samples at ``spacing_mm``."""
    rng = np.random.default_rng(seed)
    images = [prepare_mammogram(read_mammogram(p), spacing_mm).image01 for p in sample_paths()]
    out = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        image = images[i % len(images)]
        h, w = image.shape
        y = int(rng.integers(0, max(1, h - size)))
        x = int(rng.integers(0, max(1, w - size // 2)))
        window = image[y : y + size, x : x + size]
        out[i, 0, : window.shape[0], : window.shape[1]] = window
    return out


def _time(path: Path, x: np.ndarray, threads: int, runs: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"images": x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, {"images": x})
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), times, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=608)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calibration", type=int, default=8, help="calibration inputs")
    parser.add_argument("--naive-mish", action="store_true", help="also time Softplus Mish")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = YOLOv4(YOLOv4Config()).eval()
    load_before = os.getloadavg()
    x = sample_inputs(1, args.size, seed=1)
    results = {}
    with tempfile.TemporaryDirectory(prefix="calcsdk-yolo-int8-") as tmp:
        fp32 = export_yolo(model, Path(tmp) / "fp32.onnx", anchors=ANCHORS, input_size=args.size)
        paths = {"fp32": fp32}
        paths["int8"] = quantize_yolo(
            paths["fp32"], Path(tmp) / "int8.onnx", sample_inputs(args.calibration, args.size)
        )
        if args.naive_mish:
            with mock.patch("calcsdk.export.onnx_yolo.with_exp_mish", lambda m: m):
                paths["fp32_softplus_mish"] = export_yolo(
                    model, Path(tmp) / "naive.onnx", anchors=ANCHORS, input_size=args.size
                )
        outputs = {}
        for name, path in paths.items():
            median, times, outputs[name] = _time(path, x, args.threads, args.runs)
            results[name] = {
                "p50_ms": round(median, 1),
                "runs_ms": [round(t, 1) for t in times],
                "file_mb": round(path.stat().st_size / 1e6, 1),
            }
    for name in results:
        results[name]["speedup_vs_fp32"] = round(
            results["fp32"]["p50_ms"] / results[name]["p50_ms"], 2
        )
    boxes, scores = outputs["fp32"]
    boxes8, scores8 = outputs["int8"]
    results["int8"]["error_vs_fp32"] = {
        "scores_max_abs": float(np.abs(scores8 - scores).max()),
        "boxes_median_abs_px": float(np.median(np.abs(boxes8 - boxes))),
    }
    record = {
        "what": "full-size YOLOv4 (random weights) at 608, onnxruntime CPU, session.run, batch 1",
        "command": "python -m calcsdk.benchmarks.yolo_int8 "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "threads": args.threads,
        "runs": args.runs,
        "calibration_inputs": args.calibration,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
