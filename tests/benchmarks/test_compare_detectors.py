"""compare_detectors: evaluations side by side, refused when not comparable."""

from __future__ import annotations

import gzip
import json

import pytest

from calcsdk.benchmarks.compare_detectors import comparison_markdown, load_evaluation, main


def _evaluation(f1: float, n_images: int = 10) -> dict:
    row = {"precision_no_cf": 0.1, "precision_cf_0.5": 0.6, "recall_no_cf": 0.9,
           "recall_cf_0.5": 0.4, "n_truths": 7}  # fmt: skip
    subset = {
        "n_images": n_images,
        "table5": {"malignant": row, "benign": {**row, "n_truths": 5}},
        "table6": {"precision": 0.5, "recall": 0.25, "f1": f1, "map": 0.125},
        "sensitivity_at_fp": {"any": {"0.5": 0.2, "1.0": 0.3, "2.0": 0.4}},
    }
    return {"model": "m", "median_seconds_per_image": 1.5, "overall": subset,
            "by_density": {"C": {**subset, "n_images": 4}}}  # fmt: skip


def test_rows_in_order_with_the_papers_figures():
    text = comparison_markdown(
        [("R-CNN", _evaluation(0.33)), ("YOLOv4-1", _evaluation(0.66))], paper=["yolov4-2"]
    )
    table6 = next(line for line in text.splitlines() if line.startswith("| R-CNN |"))
    assert table6 == "| R-CNN | 0.50 | 0.25 | 0.33 | 0.12 | 0.20 / 0.30 / 0.40 | 1.50 |"
    assert text.index("| YOLOv4-1 | 0.50 | 0.25 | 0.66") > text.index(table6)
    assert "| paper YOLOv4-2 (5-fold mean) | 0.77 | 0.78 | 0.77 | 0.70 | | |" in text
    assert "| YOLOv4-1 | benign | 0.10 | 0.60 | 0.90 | 0.40 | 5 |" in text
    assert "| R-CNN | n/a | n/a | 0.33 / 0.12 (4 images) | n/a |" in text
    assert "All on the same 10 test images." in text


def test_evaluations_of_different_image_sets_or_unknown_papers_are_refused():
    with pytest.raises(ValueError, match="different numbers of images"):
        comparison_markdown([("a", _evaluation(0.1)), ("b", _evaluation(0.1, n_images=9))])
    with pytest.raises(ValueError, match="no paper figures"):
        comparison_markdown([("a", _evaluation(0.1))], paper=["yolov9"])
    with pytest.raises(ValueError, match="at least one"):
        comparison_markdown([])


def test_command_reads_json_and_gzip_and_names_a_bad_file(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps(_evaluation(0.2)))
    with gzip.open(tmp_path / "b.json.gz", "wt") as handle:
        json.dump(_evaluation(0.4), handle)
    out = tmp_path / "c.md"
    assert main(["--run", f"A={tmp_path / 'a.json'}", "--run", f"B={tmp_path / 'b.json.gz'}",
                 "--paper", "rcnn-2", "--title", "T", "--out", str(out)]) == 0  # fmt: skip
    assert out.read_text().startswith("# T\n") and "| B | 0.50 | 0.25 | 0.40" in out.read_text()
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit, match=r"bad\.json: not a readable evaluation JSON"):
        main(["--run", f"X={tmp_path / 'bad.json'}"])
    (tmp_path / "other.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match=r"other\.json: no overall"):
        load_evaluation(tmp_path / "other.json")
