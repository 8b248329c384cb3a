"""fp32 vs static QDQ int8 fc7 latency of the FULL-size AlexNet in onnxruntime, one process.

Random weights (AlexNetConfig()), exported with ``export_fc7``; int8 calibrated on 32
structured random crops (latency does not depend on the calibration). Batch 64, 2 intra-op
threads, ORT_ENABLE_ALL, median of ``--runs`` timed runs after ``--warmup`` runs; times the
``session.run`` call only (crops already in memory). In the same run, the machine's fp32 matmul
rate (a 4096^3 onnxruntime MatMul) is measured, and each precision's throughput is given as
fp32-equivalent GFLOP/s (2 x the net's multiply-accumulates per crop) and as a share of that
rate (the speed issue's "70% of this machine's measured matmul FLOP/s").
Writes ``benchmarks/results/int8_fc7.json``.

    .venv/bin/python -m calcsdk.benchmarks.int8_fc7
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

import numpy as np
import onnxruntime as ort
import torch

from calcsdk.export.onnx_fc7 import export_fc7
from calcsdk.export.quantize import quantize_fc7
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig

RESULT = Path(__file__).resolve().parent / "results" / "int8_fc7.json"


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _median_ms(session: ort.InferenceSession, crops: np.ndarray, warmup: int, runs: int):
    for _ in range(warmup):
        out = session.run(["fc7"], {"crops": crops})[0]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = session.run(["fc7"], {"crops": crops})[0]
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), times, out


def alexnet_macs(width: float = 1.0) -> int:
    """Multiply-accumulates of one crop through fc7 (LRN, ReLU and pooling not counted)."""
    from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig

    net = AlexNet(AlexNetConfig(width=width))
    shapes = {"conv1": 55, "conv2": 27, "conv3": 13, "conv4": 13, "conv5": 13}
    macs = 0
    for name, size in shapes.items():
        conv = getattr(net.features, name)
        k = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels // conv.groups
        macs += conv.out_channels * size * size * k
    for fc in (net.fc6_to_fc7.fc6, net.fc6_to_fc7.fc7):
        macs += fc.in_features * fc.out_features
    return macs


def matmul_peak_gflops(threads: int, n: int = 4096, runs: int = 5) -> float:
    """The machine's fp32 matmul rate: median GFLOP/s of an (n x n) @ (n x n) onnxruntime
    MatMul with ``threads`` intra-op threads (2 n^3 FLOPs per run)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "matmul",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {x: rng.random((n, n), dtype=np.float32) for x in "ab"}
    session.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def _crops(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:227, :227].astype(np.float32)
    out = np.empty((n, 1, 227, 227), np.float32)
    for i in range(n):
        cy, cx, s = [*rng.uniform(50, 177, 2).tolist(), rng.uniform(20, 80)]
        blob = 0.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        out[i, 0] = np.clip(blob + rng.normal(0, 0.05, blob.shape), 0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = export_fc7(AlexNet(AlexNetConfig()).eval(), Path(tmp) / "fc7.onnx")
        calibration = _crops(32, seed=0)
        paths = {"fp32": fp32_path}
        for act in ("quint8", "qint8"):
            paths[f"int8_{act}"] = quantize_fc7(
                fp32_path, Path(tmp) / f"fc7_{act}.onnx", calibration, activation_type=act
            )
        crops = _crops(args.batch, seed=1)
        outputs = {}
        for name, path in paths.items():
            median, times, outputs[name] = _median_ms(
                _session(path, args.threads), crops, args.warmup, args.runs
            )
            results[name] = {
                "median_ms": round(median, 1),
                "runs_ms": [round(t, 1) for t in times],
                "crops_per_s": round(args.batch / median * 1e3, 1),
                "file_mb": round(path.stat().st_size / 1e6, 1),
            }
    peak = matmul_peak_gflops(args.threads)
    gflop_per_crop = 2 * alexnet_macs() / 1e9
    for entry in results.values():
        entry["fp32_equivalent_gflops"] = round(entry["crops_per_s"] * gflop_per_crop, 1)
        entry["share_of_matmul_peak"] = round(entry["fp32_equivalent_gflops"] / peak, 3)
    fp32 = outputs["fp32"]
    scale = float(np.abs(fp32).max())
    for name in ("int8_quint8", "int8_qint8"):
        diff = np.abs(outputs[name] - fp32)
        cos = (outputs[name] * fp32).sum(1) / (
            np.linalg.norm(outputs[name], axis=1) * np.linalg.norm(fp32, axis=1) + 1e-12
        )
        results[name]["speedup_vs_fp32"] = round(
            results["fp32"]["median_ms"] / results[name]["median_ms"], 2
        )
        results[name]["fc7_error_vs_fp32"] = {
            "max_rel": float(diff.max() / scale),
            "mean_rel": float(diff.mean() / scale),
            "min_cosine": float(cos.min()),
        }
    record = {
        "what": "fc7 of full AlexNet (random weights), onnxruntime CPU, session.run only",
        "command": "python -m calcsdk.benchmarks.int8_fc7 " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "batch": args.batch,
        "threads": args.threads,
        "warmup": args.warmup,
        "runs": args.runs,
        "matmul_peak_gflops_fp32": round(peak, 1),
        "alexnet_gflop_per_crop": round(gflop_per_crop, 4),
        "results": results,
        "note": "machine shared with other agents' training jobs; ratios are indicative",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
