"""Measure the two ways of exporting the R-CNN's SVM head (issue: "measure both, pick one").

A. skl2onnx: ``Pipeline(StandardScaler, LinearSVC)`` converted with skl2onnx (decision scores),
   followed by Platt scaling as numpy (skl2onnx has no Platt node for a bare LinearSVC).
B. folded: standardisation, SVM and Platt folded into one ONNX Gemm + Sigmoid
   (:mod:`calcsdk.export.onnx_head`), what calcsdk ships.

Both run in onnxruntime (1 thread) on the same fc7-like features; reported: median latency of
2,000 rows, max error against the numpy reference, and model size.

    python -m calcsdk.benchmarks.svm_head_export --json benchmarks/results/svm_head_export.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


def _median_ms(fn, repeat: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def run(dim: int = 4096, rows: int = 2000, train_rows: int = 3000, seed: int = 0) -> dict:
    import onnxruntime as ort
    import skl2onnx
    from skl2onnx import to_onnx
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from calcsdk.export.onnx_head import export_head, fold_head
    from calcsdk.training.rcnn.head import HeadConfig, train_head

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (3, dim)).astype(np.float32)
    labels = rng.integers(0, 3, train_rows)
    x = np.maximum(centres[labels] + rng.normal(0, 2, (train_rows, dim)), 0).astype(np.float32)
    test = np.maximum(centres[rng.integers(0, 3, rows)] + rng.normal(0, 2, (rows, dim)), 0)
    test = test.astype(np.float32)
    head = train_head(x, labels, 2, HeadConfig(hard_negative_rounds=1))
    reference = head.probabilities(test)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # B. folded Gemm + Sigmoid
        w, b = fold_head(head.weight, head.bias, head.mean, head.scale, head.platt_a, head.platt_b)
        path = export_head(w, b, Path(tmp) / "folded.onnx")
        folded = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out = folded.run(None, {"fc7": test})[0]
        results["folded_gemm_sigmoid"] = {
            "median_ms_2000_rows": _median_ms(lambda: folded.run(None, {"fc7": test})),
            "max_abs_error_vs_numpy": float(np.abs(out - reference).max()),
            "bytes": path.stat().st_size,
        }
        # A. skl2onnx: one pipeline per class (decision score), Platt in numpy afterwards
        sessions = []
        for c in range(2):
            pipe = make_pipeline(StandardScaler(), LinearSVC(C=1e-3, dual="auto")).fit(
                x, labels == c
            )
            svc = pipe.steps[-1][1]
            onx = to_onnx(pipe, x[:1], options={id(svc): {}}, target_opset=18)
            file = Path(tmp) / f"skl_{c}.onnx"
            file.write_bytes(onx.SerializeToString())
            sessions.append(
                ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
            )

        def skl_scores():
            margins = [s.run(None, {s.get_inputs()[0].name: test})[1][:, -1] for s in sessions]
            z = head.platt_a * np.stack(margins, axis=1) + head.platt_b
            return 0.5 * (1 + np.tanh(0.5 * z))

        results["skl2onnx_plus_numpy_platt"] = {
            "median_ms_2000_rows": _median_ms(skl_scores),
            "bytes": sum((Path(tmp) / f"skl_{c}.onnx").stat().st_size for c in range(2)),
            "note": "separately fitted sklearn pipelines: scores are comparable in cost, not in value",
        }
    return {
        "benchmark": "svm_head_export",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "features": dim,
        "rows": rows,
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "versions": {"onnxruntime": ort.__version__, "skl2onnx": skl2onnx.__version__},
        "results": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run()
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
