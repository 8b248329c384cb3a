"""``calcsdk detect`` driven as a user would, through a subprocess: mixed valid and corrupt
inputs (DICOM included), outputs in every format, the errors file, exit codes, ``--resume`` and a
SIGKILL in the middle of a run."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from calcsdk.batch.writers import CSV_COLUMNS
from calcsdk.benchmarks.phantom import draw_phantom
from calcsdk.image import write_png

pydicom = pytest.importorskip("pydicom")

SOP_UID = "1.2.826.0.1.3680043.10.99"
STUDY_UID = "1.2.826.0.1.3680043.10.98"
IMAGES_TO_KILL = 30  # ~50 ms each: the kill lands after 8 of them, well before the end
SHAPE = (300, 240)


def calcsdk(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "calcsdk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_dicom(path: Path, pixels: np.ndarray, spacing: float = 0.2) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = SOP_UID
    ds.SOPClassUID, ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPClassUID, SOP_UID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [spacing, spacing]
    ds.StudyInstanceUID, ds.ImageLaterality, ds.ViewPosition = STUDY_UID, "L", "CC"
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


# file name -> (kind, expected error class or None when scored, expected spacing source)
MIXED = {
    "a.png": ("png", None, "file"),
    "nested/b.png": ("png-nospacing", None, "option"),  # --spacing fills in
    "nested/deeper/c.dcm": ("dicom", None, "file"),
    "IM-0004": ("dicom", None, "file"),  # no suffix: found by its DICM magic
    "d.tif": ("tiff", None, "option"),
    "e.pgm": ("pgm", None, "option"),
    "truncated.png": ("truncated-png", "CorruptImageError", None),
    "broken.dcm": ("broken-dicom", "CorruptImageError", None),
    "empty.tif": ("empty", "CorruptImageError", None),
}
N_GOOD = sum(error is None for _, error, _ in MIXED.values())


def make_mixed_folder(root: Path) -> Path:
    folder = root / "exams"
    for index, (name, (kind, _, _)) in enumerate(MIXED.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels, _ = draw_phantom(index, SHAPE)
        if kind == "png":
            write_png(path, pixels, (0.2, 0.2))
        elif kind == "png-nospacing":
            write_png(path, pixels)
        elif kind == "dicom":
            write_dicom(path, pixels)
        elif kind in ("tiff", "pgm"):
            cv2.imwrite(str(path), pixels)
        elif kind == "truncated-png":
            write_png(path, pixels, (0.2, 0.2))
            path.write_bytes(path.read_bytes()[:60])
        elif kind == "broken-dicom":
            write_dicom(path, pixels)
            data = path.read_bytes()
            path.write_bytes(data[:200] + b"\xff" * 64)
        else:
            path.write_bytes(b"")
    (folder / "notes.txt").write_text("not an image: never listed")
    return folder


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, toy_bundle):
    """One run over the mixed folder (CSV + overlays), shared by the checks below."""
    root = tmp_path_factory.mktemp("mixed")
    make_mixed_folder(root)
    result = calcsdk(
        "detect",
        "exams",
        "--model",
        str(toy_bundle),
        "--out",
        "out/results.csv",
        "--overlays",
        "out/overlays",
        "--spacing",
        "0.2",
        "--conf",
        "0.5",
        "--threads",
        "1",
        cwd=root,
    )
    return root, result


def test_mixed_folder_exit_status_and_summary(mixed):
    _, result = mixed
    assert result.returncode == 1, result.stderr  # some files failed
    assert f"images: {N_GOOD} scored, {len(MIXED) - N_GOOD} failed" in result.stderr
    assert "throughput:" in result.stderr and "malignant" in result.stderr


@pytest.mark.parametrize(("name", "case"), sorted(MIXED.items()))
def test_mixed_folder_each_file(mixed, name, case):
    root, _ = mixed
    kind, expected_error, spacing_source = case
    errors = {e["file"]: e for e in journal_lines(root / "out" / "results.errors.jsonl")}
    journal = {r["file"]: r for r in journal_lines(root / "out" / "results.csv.journal")[1:]}
    listed = f"exams/{name}"
    if expected_error is None:
        assert listed in journal and listed not in errors
        record = journal[listed]
        assert (record["width"], record["height"]) == (SHAPE[1], SHAPE[0])
        assert record["spacing_source"] == spacing_source
        is_dicom = kind == "dicom"
        assert record["sop_instance_uid"] == (SOP_UID if is_dicom else None)
        assert record["study_instance_uid"] == (STUDY_UID if is_dicom else None)
        assert (record["laterality"], record["view"]) == (("L", "CC") if is_dicom else (None,) * 2)
        assert (root / "out" / "overlays" / (name.replace("/", "__") + ".png")).is_file()
    else:
        assert listed in errors and listed not in journal
        assert errors[listed]["error"] == expected_error
        assert errors[listed]["message"]  # a reason, not an empty string


def test_mixed_folder_csv_rows(mixed):
    root, _ = mixed
    rows = read_csv(root / "out" / "results.csv")
    assert rows, "the phantoms' bright clusters should give detections"
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["file"] for r in rows] == sorted(r["file"] for r in rows)
    for row in rows:
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
        assert 0 <= x1 < x2 <= SHAPE[1] and 0 <= y1 < y2 <= SHAPE[0]
        assert float(row["score"]) >= 0.5 and row["class"] in ("malignant", "benign")
        assert row["model_version"] == "toy-rcnn@0.0.1"
        assert float(row["x2_mm"]) == pytest.approx(x2 * 0.2, abs=1e-3)  # every file has spacing
        is_dicom = row["file"].endswith((".dcm", "IM-0004"))
        assert (row["sop_instance_uid"] == SOP_UID) == is_dicom
        assert (row["study_instance_uid"] == STUDY_UID) == is_dicom
        assert (row["laterality"], row["view"]) == (("L", "CC") if is_dicom else ("", ""))


def test_formats_hold_the_same_detections(mixed, toy_bundle):
    root, _ = mixed
    csv_rows = read_csv(root / "out" / "results.csv")
    for fmt, name in (("jsonl", "r.jsonl"), ("coco", "r.json")):
        result = calcsdk(
            "detect",
            "exams",
            "--model",
            str(toy_bundle),
            "--out",
            f"fmt/{name}",
            "--spacing",
            "0.2",
            "--quiet",
            "--workers",
            "2",
            cwd=root,
        )
        assert result.returncode == 1 and result.stderr == ""  # --quiet: no summary
        if fmt == "jsonl":
            lines = [json.loads(x) for x in (root / "fmt" / name).read_text().splitlines()]
            assert len(lines) == N_GOOD
            images = lines
            got = [(ln["file"], d["x1"], d["score"]) for ln in lines for d in ln["detections"]]
        else:
            coco = json.loads((root / "fmt" / name).read_text())
            files = {image["id"]: image["file_name"] for image in coco["images"]}
            got = [(files[a["image_id"]], a["bbox"][0], a["score"]) for a in coco["annotations"]]
            assert [c["name"] for c in coco["categories"]] == ["malignant", "benign"]
            images = [dict(image, file=image["file_name"]) for image in coco["images"]]
        dicom = [im for im in images if im["file"].endswith((".dcm", "IM-0004"))]
        assert len(dicom) == 2 and all(
            (im["study_instance_uid"], im["laterality"], im["view"]) == (STUDY_UID, "L", "CC")
            for im in dicom
        )
        want = [(r["file"], float(r["x1"]), float(r["score"])) for r in csv_rows]
        got, want = sorted(got), sorted(want)
        assert [g[0] for g in got] == [w[0] for w in want]
        # the CSV holds float32 scores as shortest decimals, JSON holds them as float64
        flat = [value for g in got for value in g[1:]]
        assert flat == pytest.approx([value for w in want for value in w[1:]], abs=1e-6)


def test_stdout_when_no_out(tmp_path, toy_bundle):
    pixels, _ = draw_phantom(1, SHAPE)
    write_png(tmp_path / "one.png", pixels, (0.2, 0.2))
    result = calcsdk("detect", "one.png", "--model", str(toy_bundle), "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["file"] for r in rows} == {"one.png"}


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["nothing-here/*.png"], 2, "no image files found"),
        (["a.png", "--resume"], 2, "--resume needs --out"),
        (["a.png", "--model", "no-such-bundle"], 2, "bundle not found"),
        (["a.png", "--out", "r.txt"], 2, "cannot tell the output format"),
        (["a.png", "--conf", "1.5"], 2, "--conf should be in [0, 1]"),
        (["a.png", "missing.png", "--out", "r.csv"], 1, "1 failed"),
        (["a.png", "--out", "r.csv"], 0, "1 scored, 0 failed"),
    ],
)
def test_exit_status(tmp_path, toy_bundle, args, status, message):
    pixels, _ = draw_phantom(0, SHAPE)
    write_png(tmp_path / "a.png", pixels, (0.2, 0.2))
    model = [] if "--model" in args else ["--model", str(toy_bundle)]
    result = calcsdk("detect", *args, *model, cwd=tmp_path)
    assert result.returncode == status, result.stderr
    assert message in result.stderr


def test_resume_scores_only_new_and_failed_files(tmp_path, toy_bundle):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(3):
        write_png(folder / f"m{index}.png", draw_phantom(index, SHAPE)[0], (0.2, 0.2))
    (folder / "late.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not yet complete: fails
    model = ["--model", str(toy_bundle), "--out", "r.csv"]
    first = calcsdk("detect", "in", *model, cwd=tmp_path)
    assert first.returncode == 1 and "3 scored, 1 failed" in first.stderr
    write_png(folder / "late.png", draw_phantom(7, SHAPE)[0], (0.2, 0.2))  # now complete
    write_png(folder / "new.png", draw_phantom(8, SHAPE)[0], (0.2, 0.2))
    second = calcsdk("detect", "in", *model, "--resume", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "2 scored, 0 failed, 3 already done (resumed)" in second.stderr
    records = journal_lines(tmp_path / "r.csv.journal")[1:]
    assert sorted(r["file"] for r in records) == sorted(f"in/{p.name}" for p in folder.iterdir())
    assert (tmp_path / "r.errors.jsonl").read_text() == ""  # the retried file succeeded
    assert {r["file"] for r in read_csv(tmp_path / "r.csv")} <= {r["file"] for r in records}
    third = calcsdk("detect", "in", *model, "--resume", "--conf", "0.9", cwd=tmp_path)
    assert third.returncode == 2 and "cannot resume" in third.stderr


def test_sigkill_midway_loses_nothing_written(tmp_path, toy_bundle):
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(IMAGES_TO_KILL):
        write_png(folder / f"img{index:02d}.png", draw_phantom(index, SHAPE)[0], (0.2, 0.2))
    args = ["detect", "many", "--model", str(toy_bundle), "--threads", "1"]
    args += ["--out", "r.csv", "--snapshot-every", "0"]  # a snapshot per image: many replaces
    process = subprocess.Popen(
        [sys.executable, "-m", "calcsdk.cli", *args, "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    journal = tmp_path / "r.csv.journal"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 9:  # header + 8 images
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    # what was written is intact: every complete journal line parses; the output is a snapshot
    data = journal.read_bytes()
    complete = [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]
    done_before_kill = {r["file"] for r in complete[1:]}
    assert 8 <= len(done_before_kill) < IMAGES_TO_KILL
    if (tmp_path / "r.csv").exists():
        snapshot = read_csv(tmp_path / "r.csv")
        assert all(len(row) == len(CSV_COLUMNS) and None not in row.values() for row in snapshot)
    resumed = calcsdk(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done_before_kill)} already done" in resumed.stderr
    fresh = calcsdk(*args[:-4], "--out", "fresh.csv", "--quiet", cwd=tmp_path)
    assert fresh.returncode == 0
    assert read_csv(tmp_path / "r.csv") == read_csv(tmp_path / "fresh.csv")
    records = journal_lines(journal)[1:]
    assert len(records) == len({r["file"] for r in records}) == IMAGES_TO_KILL  # none lost or twice


def test_archives_are_scored_member_by_member(tmp_path, toy_bundle):
    """A folder holding a zip and a tar.gz of exams beside a loose file: every member is scored
    under its ``ARCHIVE!/MEMBER`` name, a corrupt member fails alone, a corrupt archive fails
    alone, and ``--resume`` knows the members already done."""
    import tarfile
    import zipfile

    staging = make_mixed_folder(tmp_path / "staging")
    folder = tmp_path / "exams"
    folder.mkdir()
    zipped = ["a.png", "nested/deeper/c.dcm", "IM-0004", "truncated.png"]
    with zipfile.ZipFile(folder / "day1.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for name in zipped:
            archive.write(staging / name, f"study/{name}")
    with tarfile.open(folder / "day2.tar.gz", "w:gz") as archive:
        archive.add(staging / "d.tif", "d.tif")
    (folder / "day3.zip").write_bytes(b"PK\x03\x04 damaged on the way")
    os.replace(staging / "e.pgm", folder / "loose.pgm")
    args = ["detect", "exams", "--model", str(toy_bundle), "--out", "r.jsonl"]
    args += ["--overlays", "ov", "--spacing", "0.2", "--threads", "1", "--workers", "2"]
    result = calcsdk(*args, cwd=tmp_path)  # two threads read members of one zip at once
    assert result.returncode == 1 and "5 scored, 2 failed" in result.stderr, result.stderr
    scored = {line["file"]: line for line in journal_lines(tmp_path / "r.jsonl")}
    assert sorted(scored) == sorted(
        ["exams/day1.zip!/study/a.png", "exams/day1.zip!/study/nested/deeper/c.dcm",
         "exams/day1.zip!/study/IM-0004", "exams/day2.tar.gz!/d.tif", "exams/loose.pgm"]
    )  # fmt: skip
    assert scored["exams/day1.zip!/study/IM-0004"]["sop_instance_uid"] == SOP_UID
    assert (tmp_path / "ov" / "day1.zip!__study__a.png.png").is_file()
    errors = {e["file"]: e for e in journal_lines(tmp_path / "r.errors.jsonl")}
    assert errors["exams/day1.zip!/study/truncated.png"]["error"] == "CorruptImageError"
    assert errors["exams/day3.zip"]["error"] == "ArchiveError"
    assert "zip" in errors["exams/day3.zip"]["message"]
    again = calcsdk(*args, "--resume", cwd=tmp_path)
    assert "0 scored, 2 failed, 5 already done (resumed)" in again.stderr, again.stderr
    listed = calcsdk("detect", "exams", "--dry-run", "--out", "dry.csv", cwd=tmp_path)
    assert listed.returncode == 0 and "7 inputs" in listed.stderr
    assert listed.stdout.splitlines() == sorted([*scored, *errors])
    assert not (tmp_path / "dry.csv").exists() and not (tmp_path / "dry.errors.jsonl").exists()
