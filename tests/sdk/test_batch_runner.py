"""The local batch engine: results independent of the worker count, failures recorded per file,
and the per-file record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calcsdk.batch.errors_log import ErrorsLog
from calcsdk.batch.runner import (
    BatchSummary,
    ScoringOptions,
    pending_files,
    run_local,
    score_file,
)
from calcsdk.benchmarks.phantom import draw_phantom
from calcsdk.detections import Detections
from calcsdk.errors import InvalidPixelsError
from calcsdk.image import write_png


class FakeDetector:
    """Finds one box per image whose size encodes the image width."""

    model_version = "fake@1"

    def detect(self, mammogram, conf=None):
        if mammogram.spacing_mm is None:
            raise InvalidPixelsError("pixel spacing is unknown", mammogram.source)
        width = float(mammogram.width)
        return Detections(np.array([[0, 0, width / 2, 4]]), np.array([0.75]), np.array([1]))


class ListSink:
    def __init__(self):
        self.records = []

    def add(self, record):
        self.records.append(record)


@pytest.fixture()
def images(tmp_path: Path) -> list[str]:
    paths = []
    for index, width in enumerate((40, 48, 56, 64, 72, 80)):
        path = tmp_path / f"m{index}.png"
        pixels, _ = draw_phantom(index, (64, width))
        write_png(path, pixels, None if index == 3 else (0.1, 0.1))  # m3: no spacing
        paths.append(str(path))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    return [*paths, str(tmp_path / "bad.png"), str(tmp_path / "missing.png")]


@pytest.mark.parametrize(("workers", "fallback"), [(1, None), (3, None), (4, 0.2)])
def test_run_local_same_results_whatever_the_workers(images, workers, fallback):
    sink, errors = ListSink(), ErrorsLog(None)
    options = ScoringOptions(fallback_spacing_mm=fallback)
    summary = run_local(FakeDetector(), images, options, sink, errors, workers=workers)
    failed = {"bad.png": "CorruptImageError", "missing.png": "ImageNotFoundError"}
    if fallback is None:
        failed["m3.png"] = "InvalidPixelsError"
    assert {Path(f.file).name: f.error for f in errors.failures} == failed
    scored = sorted(Path(r["file"]).name for r in sink.records)
    assert scored == sorted(set(Path(p).name for p in images) - set(failed))
    assert (summary.scored, summary.failed) == (len(scored), len(failed))
    assert summary.detections == {"benign": len(scored)}
    for record in sink.records:
        assert record["detections"]["boxes"][0][2] == record["width"] / 2
        expected = "option" if Path(record["file"]).name == "m3.png" else "file"
        assert record["spacing_source"] == expected


def test_run_local_with_no_files():
    summary = run_local(FakeDetector(), [], ScoringOptions(), ListSink(), ErrorsLog(None))
    assert (summary.scored, summary.failed, summary.images_per_second) == (0, 0, 0.0)


@pytest.mark.parametrize("workers", [0, -1])
def test_run_local_refuses_bad_worker_count(workers):
    with pytest.raises(ValueError, match="workers"):
        run_local(
            FakeDetector(), [], ScoringOptions(), ListSink(), ErrorsLog(None), workers=workers
        )


def test_score_file_writes_the_overlay(images, tmp_path: Path):
    overlays = tmp_path / "ov"
    overlays.mkdir()
    options = ScoringOptions(overlays_dir=str(overlays))
    record = score_file(FakeDetector(), images[0], options)
    assert record["overlay"] == str(overlays / "m0.png.png") and Path(record["overlay"]).is_file()
    assert record["model_version"] == "fake@1" and record["spacing_mm"] == [0.1, 0.1]


def test_pending_files_compares_real_paths(images):
    done = {str(Path(images[0]).resolve())}
    assert pending_files(images[:2], done) == images[1:2]


def test_summary_format():
    summary = BatchSummary(scored=3, failed=1, resumed=2, seconds=2.0)
    summary.detections.update({"malignant": 4})
    text = summary.format(("malignant", "benign"))
    assert "3 scored, 1 failed, 2 already done" in text
    assert "detections: 4 (malignant 4, benign 0)" in text and "2.00 images/s" in text
