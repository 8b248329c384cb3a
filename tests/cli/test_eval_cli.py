"""``calcsdk eval`` through a subprocess: hand-computed Tables 5/6 figures, FROC, confusion
matrices and the density breakdown, the same from every results format, a dataset loader as
truth, pairing of differently spelt paths, and refusals."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from calcsdk.batch.truth import _pair_files
from calcsdk.errors import CalcSdkError

# truth: image -> (density, [(box, class)]); detections: image -> [(box, class, score)]
TRUTH = {
    "imgs/p1.png": ("A", [([10, 10, 30, 30], "malignant")]),
    "imgs/p2.png": ("B", [([50, 50, 80, 90], "benign")]),
    "imgs/p3.png": ("B", []),
}
DETECTIONS = {
    "imgs/p1.png": [([11, 10, 30, 31], "malignant", 0.9)],  # TP
    "imgs/p2.png": [([50, 52, 80, 90], "benign", 0.4), ([100, 100, 120, 120], "malignant", 0.7)],
    "imgs/p3.png": [],  # listed by JSONL/COCO, absent from CSV
}
CLASSES = ["malignant", "benign"]


def calcsdk(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "calcsdk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def write_truth(root: Path) -> None:
    images, annotations = [], []
    for image_id, (name, (density, lesions)) in enumerate(TRUTH.items(), start=1):
        images.append(
            {"id": image_id, "file_name": name, "width": 200, "height": 200, "density": density}
        )
        for (x1, y1, x2, y2), cls in lesions:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CLASSES.index(cls) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                }
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    (root / "truth.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )


def write_results(root: Path, fmt: str) -> str:
    if fmt == "csv":
        with open(root / "r.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "x1", "y1", "x2", "y2", "class", "score"])
            for name, dets in DETECTIONS.items():
                writer.writerows([name, *box, cls, score] for box, cls, score in dets)
        return "r.csv"
    if fmt == "jsonl":
        lines = [
            {
                "file": name,
                "detections": [
                    dict(zip(("x1", "y1", "x2", "y2"), box), **{"class": cls, "score": s})
                    for box, cls, s in dets
                ],
            }
            for name, dets in DETECTIONS.items()
        ]
        (root / "r.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        return "r.jsonl"
    entries = []
    for image_id, dets in enumerate(DETECTIONS.values(), start=1):
        for (x1, y1, x2, y2), cls, score in dets:
            entries.append(
                {
                    "image_id": image_id,
                    "category_id": CLASSES.index(cls) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": score,
                }
            )
    if fmt == "coco-results":
        (root / "r.json").write_text(json.dumps(entries))
    else:  # a COCO dataset with scored annotations, as `calcsdk detect --format coco` writes
        images = [{"id": i, "file_name": n} for i, n in enumerate(DETECTIONS, start=1)]
        annotations = [dict(e, id=k) for k, e in enumerate(entries, start=1)]
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
        (root / "r.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": categories})
        )
    return "r.json"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """One eval run per results format; format -> (completed process, JSON report)."""
    out = {}
    for fmt in ("csv", "jsonl", "coco", "coco-results"):
        root = tmp_path_factory.mktemp(fmt)
        write_truth(root)
        results = write_results(root, fmt)
        result = calcsdk(
            "eval", "--results", results, "--truth", "truth.json", "--json", "e.json", cwd=root
        )
        assert result.returncode == 0, result.stderr
        out[fmt] = (result, json.loads((root / "e.json").read_text()))
    return out


# (table, class or average, key, expected), computed by hand from TRUTH and DETECTIONS
EXPECTED = [
    ("no_cf", "malignant", "tp", 1),
    ("no_cf", "malignant", "fp", 1),
    ("no_cf", "malignant", "precision", 0.5),
    ("no_cf", "malignant", "recall", 1.0),
    ("no_cf", "malignant", "ap", 1.0),
    ("no_cf", "benign", "f1", 1.0),
    ("cf_0.5", "benign", "tp", 0),
    ("cf_0.5", "benign", "fn", 1),
    ("cf_0.5", "benign", "recall", 0.0),
    ("cf_0.5", "benign", "ap", 1.0),  # AP ranks all detections whatever the CF
    ("cf_0.5", "micro", "precision", 0.5),
    ("cf_0.5", "micro", "recall", 0.5),
    ("no_cf", "micro", "f1", 0.8),
]


@pytest.mark.parametrize(("table", "row", "key", "expected"), EXPECTED)
def test_tables_match_hand_computed_values(reports, table, row, key, expected):
    _, report = reports["csv"]
    part = report["tables"][table]
    value = part["per_class"][row][key] if row in part["per_class"] else part[row][key]
    assert value == pytest.approx(expected)


def test_map_froc_confusion_and_density(reports):
    _, report = reports["csv"]
    assert report["n_images"] == 3 and report["n_lesions"] == {"malignant": 1, "benign": 1}
    assert report["tables"]["no_cf"]["mean_average_precision"] == pytest.approx(1.0)
    assert report["froc"]["all"]["sensitivity_at"] == {"0.5": 1.0, "1": 1.0, "2": 1.0}
    assert report["froc"]["all"]["curve"]["fp_per_image"] == pytest.approx([0, 1 / 3, 1 / 3])
    assert report["confusion_matrix"]["cf_0.5"]["matrix"] == [[1, 0, 0], [0, 0, 1], [1, 0, 0]]
    assert report["confusion_matrix"]["no_cf"]["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    density = report["by_density"]
    assert sorted(density) == ["A", "B"]
    assert (density["A"]["n_images"], density["B"]["n_images"]) == (1, 2)
    assert density["A"]["tables"]["cf_0.5"]["micro"]["f1"] == 1.0
    assert density["B"]["tables"]["cf_0.5"]["micro"]["f1"] == 0.0


def test_printed_tables(reports):
    result, _ = reports["csv"]
    for text in (
        "No CF",
        "CF 0.5",
        "malignant",
        "FROC",
        "confusion matrix",
        "by density",
        "mAP 1.000",
    ):
        assert text in result.stdout, text


@pytest.mark.parametrize("fmt", ["jsonl", "coco", "coco-results"])
def test_every_results_format_gives_the_same_report(reports, fmt):
    _, reference = reports["csv"]
    _, report = reports[fmt]
    for key in ("tables", "froc", "confusion_matrix", "by_density", "n_lesions"):
        assert report[key] == reference[key], key
    missing = report["pairing"]["truth_images_without_results"]
    if fmt == "coco-results":  # like a CSV, a results list only names images with detections
        assert len(missing) == 1 and missing[0].endswith("imgs/p3.png")
    else:
        assert missing == []


def test_dataset_loader_truth_mias(tmp_path):
    (tmp_path / "mias").mkdir()
    (tmp_path / "mias" / "Info.txt").write_text(
        "notes\nmdb209 G CALC M 647 503 87\nmdb003 D NORM\n"
    )
    # box of mdb209: x 560..734, y (1024 - 503) -/+ 87 = 434..608
    (tmp_path / "r.csv").write_text(
        "file,x1,y1,x2,y2,class,score\n"
        "scans/mdb209.pgm,562,430,734,610,malignant,0.8\n"
        "scans/mdb003.pgm,10,10,60,60,benign,0.6\n"
    )
    result = calcsdk(
        "eval",
        "--results",
        "r.csv",
        "--truth",
        "mias/Info.txt",
        "--truth-format",
        "mias",
        "--json",
        "e.json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "e.json").read_text())
    malignant = report["tables"]["cf_0.5"]["per_class"]["malignant"]
    assert (malignant["tp"], malignant["fp"], malignant["fn"]) == (1, 0, 0)
    assert report["tables"]["cf_0.5"]["per_class"]["benign"]["fp"] == 1
    assert sorted(report["by_density"]) == ["B", "C"]  # MIAS tissue G -> B, D -> C


@pytest.mark.parametrize(
    ("results", "extra", "message"),
    [
        ("file,x1,y1,x2,y2,class,score\nimgs/p1.png,1,1,5,5,cancer,0.9\n", [], "cancer"),
        ("file,x1,y1,x2,y2,class,score\nother/q.png,1,1,5,5,benign,0.9\n", [], "no result names"),
        ("file,x1,y1,x2,class\n", [], "lacks the columns"),
        ("file,x1,y1,x2,y2,class,score\n", ["--truth-format", "vindr"], "ground truth"),
        (None, [], "results file not found"),
    ],
)
def test_refusals(tmp_path, results, extra, message):
    write_truth(tmp_path)
    if results is not None:
        (tmp_path / "r.csv").write_text(results)
    result = calcsdk("eval", "--results", "r.csv", "--truth", "truth.json", *extra, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_truth_as_results_is_refused(tmp_path):
    write_truth(tmp_path)
    result = calcsdk("eval", "--results", "truth.json", "--truth", "truth.json", cwd=tmp_path)
    assert result.returncode == 2 and "looks like ground truth" in result.stderr


@pytest.mark.parametrize(
    ("truth", "results", "pairs"),
    [
        (["/d/a/x.png"], ["a/x.png"], {"/d/a/x.png": "a/x.png"}),
        (
            ["/d/a/0.dcm", "/d/b/0.dcm"],
            ["b/0.dcm", "a/0.dcm"],
            {"/d/a/0.dcm": "a/0.dcm", "/d/b/0.dcm": "b/0.dcm"},
        ),
        (["/d/a/0.dcm", "/d/b/0.dcm"], ["a/0.dcm"], {"/d/a/0.dcm": "a/0.dcm"}),  # b is not a's
        (["/d/x.png"], ["y.png"], {}),
        ([], [], {}),
    ],
)
def test_pairing_by_unique_path_tail(truth, results, pairs):
    assert _pair_files(truth, results) == pairs


def test_pairing_refuses_ambiguous_results():
    with pytest.raises(CalcSdkError, match="cannot tell"):
        _pair_files(["/d/a/x.png"], ["p/a/x.png", "q/a/x.png"])
