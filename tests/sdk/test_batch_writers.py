"""Batch outputs: torn journal lines, atomic replacement, resume headers, the three formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from calcsdk.batch.durable import DurableLog, atomic_write, read_json_lines
from calcsdk.batch.errors_log import ErrorsLog, failure_from_exception, read_errors
from calcsdk.batch.writers import (
    CSV_COLUMNS,
    ResultWriter,
    csv_rows,
    format_from_path,
    journal_path,
)
from calcsdk.errors import CalcSdkError, CorruptImageError

NAMES = ["malignant", "benign"]


def record(name: str, boxes=(), spacing=(0.1, 0.05), source="file", uid=None) -> dict:
    boxes = [list(b) for b in boxes]
    return {
        "key": f"/data/{name}",
        "file": name,
        "width": 100,
        "height": 80,
        "spacing_mm": list(spacing) if spacing else None,
        "spacing_source": source,
        "sop_instance_uid": uid,
        "model_version": "m@1",
        "overlay": None,
        "detections": {
            "boxes": boxes,
            "scores": [0.9 - 0.1 * i for i in range(len(boxes))],
            "labels": [i % 2 for i in range(len(boxes))],
            "class_names": NAMES,
        },
    }


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("r.csv", "csv"),
        ("R.CSV", "csv"),
        ("r.jsonl", "jsonl"),
        ("r.ndjson", "jsonl"),
        ("r.json", "coco"),
    ],
)
def test_format_from_path(path, fmt):
    assert format_from_path(path) == fmt


@pytest.mark.parametrize("path", ["r.txt", "r", "r.csv.gz"])
def test_format_from_path_refuses_unknown(path):
    with pytest.raises(CalcSdkError, match="cannot tell the output format"):
        format_from_path(path)


@pytest.mark.parametrize(
    ("source", "spacing", "mm"),
    [
        ("file", (0.1, 0.05), ["0.5", "0.2", "1.0", "0.6"]),
        ("option", (0.2, 0.2), ["2.0", "0.4", "4.0", "1.2"]),
        (None, (0.1, 0.1), ["", "", "", ""]),
        ("file", None, ["", "", "", ""]),
    ],
)
def test_csv_rows_mm_only_for_stated_spacing(source, spacing, mm):
    rows = csv_rows(record("a.png", [(10, 2, 20, 6)], spacing, source, uid="1.2.3"))
    assert tuple(rows[0]) == CSV_COLUMNS
    got = [
        "" if rows[0][k] is None else str(rows[0][k]) for k in ("x1_mm", "y1_mm", "x2_mm", "y2_mm")
    ]
    assert got == mm
    assert rows[0]["sop_instance_uid"] == "1.2.3" and rows[0]["model_version"] == "m@1"


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "tr')
    assert read_json_lines(path) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes().endswith(b"tr")  # not repaired unless asked
    assert read_json_lines(path, repair=True) == [{"a": 1}, {"a": 2}]
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n'


@pytest.mark.parametrize("content", [b'{"a": 1}\nnot json\n', b"[1, 2]\n"])
def test_corrupt_middle_line_raises(tmp_path: Path, content):
    path = tmp_path / "log.jsonl"
    path.write_bytes(content)
    with pytest.raises(CalcSdkError, match="line"):
        read_json_lines(path)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path: Path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")

    def fail(handle):
        handle.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left


def test_durable_log_appends_and_truncates(tmp_path: Path):
    path = tmp_path / "j"
    with DurableLog(path, truncate=True) as log:
        log.append({"n": 1})
    with DurableLog(path, truncate=False) as log:
        log.append({"n": 2})
    assert read_json_lines(path) == [{"n": 1}, {"n": 2}]
    with DurableLog(path, truncate=True):
        pass
    assert read_json_lines(path) == []


def _writer(out: Path, fmt: str = "csv", resume: bool = False, conf=None, version="m@1"):
    return ResultWriter(
        out,
        fmt,
        class_names=NAMES,
        model_version=version,
        conf=conf,
        resume=resume,
        snapshot_interval_s=1e9,
    )


def test_writer_snapshot_is_sorted_and_complete(tmp_path: Path):
    out = tmp_path / "r.csv"
    writer = _writer(out)
    writer.add(record("b.png", [(1, 1, 5, 5)]))
    writer.add(record("a.png", [(1, 1, 5, 5), (10, 10, 20, 20)]))
    writer.add(record("c.png"))  # no detection: no CSV row
    assert not out.exists()  # not due yet: only the journal holds the results
    writer.close()
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["file"] for r in rows] == ["a.png", "a.png", "b.png"]
    assert len(read_json_lines(journal_path(out))) == 4  # header + 3 images


@pytest.mark.parametrize(
    ("conf", "version", "error"),
    [(None, "m@1", None), (0.5, "m@1", "conf"), (None, "m@2", "model_version")],
)
def test_resume_checks_the_journal_header(tmp_path: Path, conf, version, error):
    out = tmp_path / "r.jsonl"
    writer = _writer(out, "jsonl")
    writer.add(record("a.png", [(1, 1, 5, 5)]))
    writer.close()
    with open(journal_path(out), "a") as handle:
        handle.write('{"key": "/data/torn')  # a kill in the middle of the next line
    if error:
        with pytest.raises(CalcSdkError, match=error):
            _writer(out, "jsonl", resume=True, conf=conf, version=version)
        return
    resumed = _writer(out, "jsonl", resume=True)
    assert resumed.done_keys == {"/data/a.png"} and resumed.resumed == 1
    resumed.add(record("b.png"))
    resumed.close()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [ln["file"] for ln in lines] == ["a.png", "b.png"]
    assert lines[0]["detections"][0]["class"] == "malignant" and lines[1]["detections"] == []


def test_coco_output(tmp_path: Path):
    out = tmp_path / "r.json"
    writer = _writer(out, "coco")
    writer.add(record("a.png", [(10, 20, 30, 60)], uid="9.9"))
    writer.add(record("z.png"))
    writer.close()
    coco = json.loads(out.read_text())
    assert [i["file_name"] for i in coco["images"]] == ["a.png", "z.png"]
    assert coco["images"][0]["sop_instance_uid"] == "9.9"
    (annotation,) = coco["annotations"]
    assert annotation["bbox"] == [10.0, 20.0, 20.0, 40.0] and annotation["area"] == 800.0
    assert annotation["category_id"] == 1 and annotation["image_id"] == 1


@pytest.mark.parametrize(
    ("exc", "error", "message"),
    [
        (CorruptImageError("truncated", "x.png"), "CorruptImageError", "truncated"),
        (ValueError("bad value"), "ValueError", "bad value"),
        (RuntimeError(), "RuntimeError", "RuntimeError"),
    ],
)
def test_errors_log(tmp_path: Path, exc, error, message):
    path = tmp_path / "errors.jsonl"
    log = ErrorsLog(path)
    log.record(failure_from_exception("x.png", exc))
    log.close()
    (failure,) = read_errors(path)
    assert (failure.file, failure.error, failure.message) == ("x.png", error, message)


def test_operator_guide_names_every_csv_column():
    import re

    guide = (Path(__file__).resolve().parents[2] / "docs" / "batch.md").read_text()
    table = guide[guide.index("CSV columns") : guide.index("Beside `--out`")]
    named = {word for span in re.findall(r"`([^`]+)`", table) for word in span.split()}
    named |= (
        {f"{axis}{i}_mm" for axis in "xy" for i in (1, 2)} if "x1_mm ... y2_mm" in table else set()
    )
    assert set(CSV_COLUMNS) <= named, sorted(set(CSV_COLUMNS) - named)
