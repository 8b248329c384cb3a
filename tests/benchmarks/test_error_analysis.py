"""The error-analysis harness groups clusters and writes readable tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calcsdk.benchmarks.error_analysis import _group, held_out_paths, markdown, size_bin


def test_size_bins_cover_the_range():
    assert [size_bin(v) for v in (5.0, 8.0, 15.0, 15.1)] == [
        "< 8 mm", "8-15 mm", "8-15 mm", "> 15 mm"
    ]  # fmt: skip


def test_groups_report_shares_per_value():
    rows = [
        {"density": "B", "proposed": True, "found": True, "correct": False},
        {"density": "B", "proposed": False, "found": False, "correct": False},
        {"density": "C", "proposed": None, "found": True, "correct": True},
    ]
    groups = _group(rows, "density")
    assert groups["B"] == {"clusters": 2, "proposed": 0.5, "found": 0.5, "correct_class": 0.0}
    assert groups["C"]["proposed"] is None and groups["C"]["correct_class"] == 1.0
    report = {
        "model": "m@1", "images": 2, "clusters": 3, "median_seconds_per_image": 1.0,
        "tables": {"table6": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "map": 0.4},
                   "sensitivity_at_fp": {"0.5": 0.1, "1.0": 0.2, "2.0": 0.3}},
        "breakdown": {"density": groups},
        "false_positives_per_image_cf_0.5": {"B": {"images": 1, "mean": 2.0}},
    }  # fmt: skip
    text = markdown(report)
    assert "| B | 2 | 0.50 | 0.50 | 0.00 |" in text and "| C | 1 | - | 1.00 | 1.00 |" in text


@pytest.mark.parametrize("key", ["test", "test_images"])
def test_split_files_name_the_held_out_images(tmp_path, key):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({key: ["a.png", str(tmp_path / "b.png")]}))
    assert held_out_paths(split) == {
        str((tmp_path / "b.png").resolve()),
        str(Path("a.png").resolve()),
    }


def test_split_file_without_test_images_is_an_error(tmp_path):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": []}))
    with pytest.raises(ValueError, match="no 'test' or 'test_images'"):
        held_out_paths(split)
