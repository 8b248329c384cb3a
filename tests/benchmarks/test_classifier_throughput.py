"""The classifier throughput benchmark times the trainer's step and, on request, the plain one."""

from __future__ import annotations

import json

from calcsdk.benchmarks import classifier_throughput


def test_throughput_run_with_plain_comparison(tmp_path):
    out = tmp_path / "t.json"
    code = classifier_throughput.main(
        [
            "--width",
            "0.0625",
            "--batch-size",
            "4",
            "--steps",
            "2",
            "--compare-plain",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    training, comparison = result["training"], result["training_vs_plain"]
    assert training["layer"].startswith("ConvLRN")
    assert comparison["plain"]["layer"] == "nn.LocalResponseNorm, NCHW"
    assert len(training["seconds_per_step"]) == 2
    for record in (training, comparison["plain"], comparison["trainer_again"]):
        assert record["rois_per_second"] > 0
    assert comparison["speedup_median"] > 0
    assert result["cv_estimate_upper_bound"]["rcnn-1"]["epochs"] == 50


def test_throughput_without_comparison_leaves_it_out():
    result = classifier_throughput.run(batch_size=2, steps=1, width=0.0625)
    assert result["training_vs_plain"] is None
