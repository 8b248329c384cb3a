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


def _demo(out, *extra):
    return subprocess.run(
        [sys.executable, "-m", "calcsdk.cli", "demo", "--out", str(out), *extra],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_scores_every_shipped_sample_and_draws_its_overlay(tmp_path):
    """At ``--conf 0.1``, below the bundle's calibrated threshold of 0.5 (which the shipped
    default reaches on none of the samples' six clusters; BENCHMARKS.md), so that the rows
    exist and each is checked."""
    out = tmp_path / "demo"
    run = _demo(out, "--conf", "0.1")
    assert run.returncode == 0, run.stderr[-2000:]
    samples = sample_paths()
    assert len(samples) >= 3 and {p.suffix for p in samples} >= {".png", ".dcm"}
    assert f"images: {len(samples)} scored, 0 failed" in run.stderr

    with open(out / "detections.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    said = re.search(r"(\d+) detection\(s\) on (\d+) sample mammogram\(s\)", run.stdout)
    assert said and (int(said[1]), int(said[2])) == (len(rows), len(samples))
    assert rows, "the default bundle scores nothing >= 0.1 on its own samples"
    manifest = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())
    names = {str(p) for p in samples}
    for row in rows:
        assert row["file"] in names
        assert row["model_version"] == f"{manifest['name']}@{manifest['version']}"
        assert row["class"] in ("malignant", "benign")
        assert 0.1 <= float(row["score"]) <= 1.0
    for sample in samples:  # one overlay per sample, the sample's shape within DEFAULT_MAX_SIDE
        overlay = cv2.imread(str(out / "overlays" / f"{sample.name}.png"))
        assert overlay is not None, sample.name
        height, width = read_mammogram(sample).pixels.shape
        scale = min(1.0, DEFAULT_MAX_SIDE / max(height, width))
        assert overlay.shape[:2] == (round(height * scale), round(width * scale))
    assert str(out / "detections.csv") in run.stdout


def test_demo_at_the_bundles_threshold_keeps_only_scores_of_at_least_its_confidence(tmp_path):
    out = tmp_path / "demo"
    run = _demo(out)
    assert run.returncode == 0, run.stderr[-2000:]
    with open(out / "detections.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    threshold = json.loads((DEFAULT_BUNDLE / "manifest.json").read_text())["thresholds"]
    assert all(float(row["score"]) >= threshold["confidence"] for row in rows)
    if not rows:
        assert "none scored at or above the bundle's threshold" in run.stdout
