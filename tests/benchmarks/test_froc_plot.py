"""The FROC plot harness reads evaluation reports and refuses ones without a curve."""

from __future__ import annotations

import json

import pytest

from calcsdk.benchmarks.froc_plot import load_curve, main

CURVE = {"fp_per_image": [0.5, 1.0, 3.0], "sensitivity": [0.2, 0.4, 0.6], "n_images": 4}


def test_writes_a_png_for_two_reports(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"overall": {"froc": {"any": CURVE}}}))
    out = tmp_path / "froc.png"
    assert main([f"A={tmp_path / 'a.json'}", f"B={tmp_path / 'b.json'}", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_without_a_curve_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"overall": {}}))
    with pytest.raises(ValueError, match=r"no overall\.froc\.any"):
        load_curve(path)
