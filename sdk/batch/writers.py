"""Batch results: a durable journal, and CSV / JSONL / COCO outputs rebuilt from it atomically.

Why a journal: appending rows straight to a CSV or a COCO JSON cannot survive a kill (a torn row,
an unclosed JSON array). So every scored image is first appended to ``OUT.journal`` (JSON lines,
fsynced per image, see :mod:`calcsdk.batch.durable`); the output file itself is only ever
replaced whole (temp file + ``os.replace``), every ``snapshot_interval_s`` seconds and at the
end. After a kill the output is a complete earlier snapshot and the journal holds every image
finished before the kill; ``--resume`` reads the journal, skips those images, and the next
snapshot brings the output up to date. The journal stays beside the output as the run's resume
state (its first line names the model version and confidence threshold, which a resume must
match).

Journal record of one scored image (also what the engines produce)::

    {"key": input_key, "file": path as listed (or ARCHIVE!/MEMBER), "width": W, "height": H,
     "spacing_mm": [row, col] | null, "spacing_source": "file" | "option" | null,
     "sop_instance_uid": str | null, "study_instance_uid": str | null,
     "laterality": "L" | "R" | null, "view": "CC" | "MLO" | ... | null,
     "model_version": str, "overlay": path | null,
     "detections": Detections.to_dict()}  # boxes xyxy in original pixels

Journals written before ``study_instance_uid``, ``laterality`` and ``view`` existed resume
fine: a missing key reads as null.

Outputs, sorted by file:

* ``csv``: one row per detection, columns :data:`CSV_COLUMNS` (pixels; ``*_mm`` in mm from the
  top-left corner when the spacing came from the file or ``--spacing``, else empty). Images
  without detections have no row: use ``jsonl`` to list every image.
* ``jsonl``: one line per image with its detections (possibly none).
* ``coco``: a COCO detection JSON (``images``, ``categories``, ``annotations`` with ``score``),
  which ``calcsdk eval`` and COCO tools read.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import IO, Any

from calcsdk.batch.durable import DurableLog, atomic_write, read_json_lines
from calcsdk.detections import CSV_FIELDS, Detections
from calcsdk.errors import CalcSdkError

__all__ = [
    "CSV_COLUMNS",
    "JOURNAL_SUFFIX",
    "OUTPUT_FORMATS",
    "ResultWriter",
    "StreamWriter",
    "csv_rows",
    "format_from_path",
    "journal_path",
    "write_output",
]

logger = logging.getLogger(__name__)

OUTPUT_FORMATS: tuple[str, ...] = ("csv", "jsonl", "coco")
JOURNAL_SUFFIX = ".journal"
JOURNAL_VERSION = 1
#: Per-image columns after the detection's: what joins a row to the exam in a RIS or PACS.
IMAGE_COLUMNS: tuple[str, ...] = ("sop_instance_uid", "study_instance_uid", "laterality", "view")
EXTRA_COLUMNS: tuple[str, ...] = ("model_version", *IMAGE_COLUMNS)
#: Columns of the CSV output, in order.
CSV_COLUMNS: tuple[str, ...] = (*CSV_FIELDS, *EXTRA_COLUMNS)
_SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "coco"}


def format_from_path(path: str | os.PathLike) -> str:
    """``csv`` for ``.csv``, ``jsonl`` for ``.jsonl``/``.ndjson``, ``coco`` for ``.json``."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in _SUFFIX_FORMATS:
        raise CalcSdkError(
            f"cannot tell the output format from the suffix {suffix or 'none'!r}; use "
            f"--format {'|'.join(OUTPUT_FORMATS)} or one of {sorted(_SUFFIX_FORMATS)}",
            path,
        )
    return _SUFFIX_FORMATS[suffix]


def journal_path(out: str | os.PathLike) -> str:
    """The journal beside the output ``out`` (``results.csv`` -> ``results.csv.journal``)."""
    return os.fspath(out) + JOURNAL_SUFFIX


# --- rows ---------------------------------------------------------------------------------
def _mm_spacing(record: dict[str, Any]) -> tuple[float, float] | None:
    """The spacing the mm columns use: only one stated by the file or by the user."""
    if record.get("spacing_source") in ("file", "option") and record.get("spacing_mm"):
        row, col = record["spacing_mm"]
        return (float(row), float(col))
    return None


def csv_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV rows (columns :data:`CSV_COLUMNS`) of one journal record."""
    detections = Detections.from_dict(record["detections"])
    return detections.to_csv_rows(
        record["file"], _mm_spacing(record), **{key: record.get(key) for key in EXTRA_COLUMNS}
    )


def _jsonl_line(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("file", "width", "height", "spacing_mm", "spacing_source", *IMAGE_COLUMNS)
    line = {key: record.get(key) for key in keep}
    line["model_version"] = record.get("model_version")
    line["overlay"] = record.get("overlay")
    line["detections"] = [
        {k: v for k, v in row.items() if k not in ("file", *EXTRA_COLUMNS)}
        for row in csv_rows(record)
    ]
    return line


def _write_csv(handle: IO[str], records: Sequence[dict[str, Any]]) -> None:
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerows(csv_rows(record))


def _write_jsonl(handle: IO[str], records: Sequence[dict[str, Any]]) -> None:
    for record in records:
        handle.write(json.dumps(_jsonl_line(record), ensure_ascii=False) + "\n")


def _coco(records: Sequence[dict[str, Any]], class_names: Sequence[str], model_version: str):
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": record["file"],
                "width": record.get("width"),
                "height": record.get("height"),
                "spacing_mm": _mm_spacing(record) and list(_mm_spacing(record)),
                **{key: record.get(key) for key in IMAGE_COLUMNS},
            }
        )
        detections = Detections.from_dict(record["detections"])
        for entry in detections.to_coco_results(image_id):
            entry["id"] = len(annotations) + 1
            entry["area"] = entry["bbox"][2] * entry["bbox"][3]
            annotations.append(entry)
    return {
        "info": {"description": "calcsdk detections", "model_version": model_version},
        "images": images,
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(class_names)],
        "annotations": annotations,
    }


def _sorted(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (str(r["file"]), str(r.get("key"))))


def write_output(
    handle: IO[str],
    records: Iterable[dict[str, Any]],
    fmt: str,
    class_names: Sequence[str],
    model_version: str,
) -> None:
    """Write ``records`` (journal records) to ``handle`` in ``fmt``, sorted by file."""
    ordered = _sorted(records)
    if fmt == "csv":
        _write_csv(handle, ordered)
    elif fmt == "jsonl":
        _write_jsonl(handle, ordered)
    elif fmt == "coco":
        json.dump(_coco(ordered, class_names, model_version), handle, indent=1)
        handle.write("\n")
    else:
        raise ValueError(f"fmt should be one of {OUTPUT_FORMATS}, got {fmt!r}")


# --- the writers --------------------------------------------------------------------------
def _header(model_version: str, conf: float | None) -> dict[str, Any]:
    return {
        "calcsdk_journal": JOURNAL_VERSION,
        "model_version": model_version,
        "conf": conf,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _check_header(header: dict[str, Any], model_version: str, conf: float | None, path: str):
    if header.get("calcsdk_journal") != JOURNAL_VERSION:
        raise CalcSdkError("not a calcsdk journal (or of another version)", path)
    for key, now in (("model_version", model_version), ("conf", conf)):
        if header.get(key) != now:
            raise CalcSdkError(
                f"cannot resume: the journal was written with {key}={header.get(key)!r}, this "
                f"run uses {now!r}; use the same settings or run without --resume",
                path,
            )


class ResultWriter:
    """Journal + atomic output file (see the module docstring).

    Args:
        out: the output file; ``OUT.journal`` is created beside it.
        fmt: one of :data:`OUTPUT_FORMATS`.
        class_names, model_version, conf: the detector's; stored in the journal header.
        resume: keep an existing journal's records (they are then skipped by the engines).
        snapshot_interval_s: rebuild the output at most this often while running.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        fmt: str,
        *,
        class_names: Sequence[str],
        model_version: str,
        conf: float | None,
        resume: bool = False,
        snapshot_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"fmt should be one of {OUTPUT_FORMATS}, got {fmt!r}")
        self.out, self.fmt = os.fspath(out), fmt
        self.journal = journal_path(out)
        self.class_names, self.model_version = tuple(class_names), model_version
        self._records: dict[str, dict[str, Any]] = {}
        self._interval, self._clock = snapshot_interval_s, clock
        resuming = resume and os.path.exists(self.journal)
        if resume and not resuming:
            logger.info("%s: no journal, nothing to resume", self.journal)
        if resuming:
            lines = read_json_lines(self.journal, repair=True)
            if not lines:
                raise CalcSdkError("the journal is empty; run without --resume", self.journal)
            _check_header(lines[0], model_version, conf, self.journal)
            self._records = {record["key"]: record for record in lines[1:]}
        self._log = DurableLog(self.journal, truncate=not resuming)
        if not resuming:
            self._log.append(_header(model_version, conf))
        self._last_snapshot = self._clock()
        self.resumed = len(self._records)

    @property
    def done_keys(self) -> frozenset[str]:
        """Real paths of the images already in the journal."""
        return frozenset(self._records)

    @property
    def records(self) -> list[dict[str, Any]]:
        return _sorted(self._records.values())

    def add(self, record: dict[str, Any]) -> None:
        """Journal one scored image (durable on return); snapshot the output when due."""
        self._log.append(record)
        self._records[record["key"]] = record
        if self._clock() - self._last_snapshot >= self._interval:
            self.snapshot()

    def snapshot(self) -> None:
        """Replace the output file with all records so far, atomically."""
        records = list(self._records.values())
        atomic_write(
            self.out,
            lambda handle: write_output(
                handle, records, self.fmt, self.class_names, self.model_version
            ),
        )
        self._last_snapshot = self._clock()

    def close(self) -> None:
        """Final snapshot; the journal is kept (it is the resume state)."""
        if self._log is not None:
            self.snapshot()
            self._log.close()
            self._log = None


class StreamWriter:
    """Results to a text stream (stdout) as they come: CSV rows or JSON lines at once, COCO at
    :meth:`close`. Nothing is journalled, so there is no resume."""

    def __init__(
        self, stream: IO[str], fmt: str, *, class_names: Sequence[str], model_version: str
    ):
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"fmt should be one of {OUTPUT_FORMATS}, got {fmt!r}")
        self.stream, self.fmt = stream, fmt
        self.class_names, self.model_version = tuple(class_names), model_version
        self._records: list[dict[str, Any]] = []
        self._csv = None
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
            self._csv.writeheader()
        self.resumed = 0
        self.done_keys: frozenset[str] = frozenset()

    @property
    def records(self) -> list[dict[str, Any]]:
        return _sorted(self._records)

    def add(self, record: dict[str, Any]) -> None:
        self._records.append(record)
        if self._csv is not None:
            self._csv.writerows(csv_rows(record))
        elif self.fmt == "jsonl":
            self.stream.write(json.dumps(_jsonl_line(record), ensure_ascii=False) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.fmt == "coco":
            write_output(self.stream, self._records, "coco", self.class_names, self.model_version)
        self.stream.flush()
