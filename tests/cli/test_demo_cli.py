"""``calcsdk demo``, the README's main job: the shipped default bundle on the shipped sample
mammograms, run as a user runs it (a subprocess), with no training and no network."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import cv2

from calcsdk.detector import DEFAULT_BUNDLE
from calcsdk.image import read_mammogram
from calcsdk.overlay import DEFAULT_MAX_SIDE
from calcsdk.samples import sample_paths


def test_demo_scores_every_shipped_sample_and_draws_its_overlay(tmp_path):
    out = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "calcsdk.cli", "demo", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    samples = sample_paths()
    assert len(samples) >= 3 and {p.suffix for p in samples} >= {".png", ".dcm"}
    assert f"images: {len(samples)} scored, 0 failed" in run.stderr

    with open(out / "detections.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    said = re.search(r"(\d+) detection\(s\) on (\d+) sample mammogram\(s\)", run.stdout)
    assert said and (int(said[1]), int(said[2])) == (len(rows), len(samples))
    assert rows, "the default bundle finds nothing on its own samples"
    manifest = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())
    names = {str(p) for p in samples}
    for row in rows:
        assert row["file"] in names
        assert row["model_version"] == f"{manifest['name']}@{manifest['version']}"
        assert row["class"] in ("malignant", "benign")
        assert 0.5 <= float(row["score"]) <= 1.0  # the bundle's threshold, 0.5
    for sample in samples:  # one overlay per sample, the sample's shape within DEFAULT_MAX_SIDE
        overlay = cv2.imread(str(out / "overlays" / f"{sample.name}.png"))
        assert overlay is not None, sample.name
        height, width = read_mammogram(sample).pixels.shape
        scale = min(1.0, DEFAULT_MAX_SIDE / max(height, width))
        assert overlay.shape[:2] == (round(height * scale), round(width * scale))
    assert str(out / "detections.csv") in run.stdout
