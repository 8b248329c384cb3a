"""The GPU model benchmark harness, run on the CPU with tiny models (its GPU rows skip here)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from calcsdk.benchmarks import gpu_models


def test_cpu_variants_time_and_match_torch(tmp_path, capsys):
    out = tmp_path / "report.json"
    variants = "ort-cpu-fp32,torch-cpu-fp32,ort-cuda-fp32,torch-cuda-fp16-resident"
    argv = [
        "--out", str(out), "--variants", variants, "--models", "alexnet_fc7",
        "--alexnet-width", "0.0625", "--alexnet-batches", "1,3", "--warmup", "0", "--runs", "2",
    ]  # fmt: skip
    assert gpu_models.main(argv) == 0
    report = json.loads(out.read_text())
    rows = report["models"]["alexnet_fc7"]["variants"]
    for name in ("ort-cpu-fp32", "torch-cpu-fp32"):
        row = rows[name]
        assert row["status"] == "ok" and set(row["batches"]) == {"1", "3"}
        assert row["best_batch"] in (1, 3)
        assert all(b["p50_ms"] > 0 and b["items_per_s"] > 0 for b in row["batches"].values())
        assert row["rel_error_vs_torch_cpu_fp32"] < 1e-5
    if not torch.cuda.is_available():
        for name in ("ort-cuda-fp32", "torch-cuda-fp16-resident"):
            assert rows[name]["status"] == "unavailable" and rows[name]["reason"]
    table = capsys.readouterr().out
    assert "| alexnet_fc7 | ort-cpu-fp32 |" in table and "unavailable" in table


def test_relative_error_and_fp16_copy(tmp_path):
    ref = np.ones((2, 3))
    assert gpu_models.relative_error(ref * 1.001, ref) == pytest.approx(1e-3)
    assert np.isnan(gpu_models.relative_error(np.full((2, 3), np.nan), ref))
    models = gpu_models.build_models(0.0625, 0.0625, 0.34, 64)
    path = gpu_models.export_onnx("yolov4", models["yolov4"][0], 64, tmp_path)
    fp16 = gpu_models.to_fp16(path)
    import onnx

    names = [node.name for node in onnx.load(str(fp16)).graph.node]
    assert len(names) == len(set(names))  # the converter's duplicate Cast names are fixed


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        gpu_models.main(["--out", str(tmp_path / "r.json"), "--variants", "ort-cuda-fp64"])
