"""Reading detection results back, ours or another system's, for ``calcsdk eval``.

Accepted (told by the suffix, then by the content):

* CSV (``.csv``) with at least ``file, x1, y1, x2, y2, class, score`` (pixels, xyxy, the
  ``calcsdk detect`` columns). Images without detections have no row.
* JSON lines (``.jsonl``/``.ndjson``), one image per line: ``{"file", "detections": [{x1, y1,
  x2, y2, class, score}, ...]}`` (``calcsdk detect --format jsonl``); every image is listed.
* COCO JSON (``.json``) either as a dataset with scored annotations (``images``,
  ``annotations`` with ``score``, ``categories``: ``calcsdk detect --format coco``), keyed by
  ``file_name``, or as a COCO *results* list ``[{"image_id", "category_id", "bbox", "score"}]``
  keyed by image id (only meaningful against a COCO ground truth, which names the ids).

COCO ``bbox`` is ``[x, y, w, h]`` in pixels; it becomes xyxy. Classes are matched by name to
``class_names``; a class outside them is an error.
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calcsdk.batch.durable import read_json_lines
from calcsdk.detections import DEFAULT_CLASS_NAMES, Detections
from calcsdk.errors import CalcSdkError

__all__ = ["ResultSet", "empty_like", "read_results"]


@dataclass(frozen=True)
class ResultSet:
    """Detections per image of one results file.

    Attributes:
        by_file: file name as written in the results -> :class:`Detections` (boxes xyxy in
            original pixels).
        by_image_id: COCO image id -> :class:`Detections` (COCO results lists only).
        class_names: the class order of every :class:`Detections`.
        complete: True when images without detections are listed too (JSONL, COCO dataset);
            False for a CSV or a COCO results list, which only name images with detections.
    """

    by_file: dict[str, Detections] = field(default_factory=dict)
    by_image_id: dict[int, Detections] = field(default_factory=dict)
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES
    complete: bool = True

    def __len__(self) -> int:
        return len(self.by_file) + len(self.by_image_id)


def _detections(rows: Sequence[Mapping[str, Any]], names: tuple[str, ...], where: str):
    try:
        return Detections.from_csv_rows(rows, names)
    except (ValueError, TypeError) as exc:
        raise CalcSdkError(f"bad detections for {where}: {exc}") from None


def _xyxy_rows(annotations: Sequence[Mapping[str, Any]], category_names: Mapping[Any, str]):
    rows = []
    for annotation in annotations:
        if "score" not in annotation:
            raise CalcSdkError(
                "COCO annotations without 'score': this looks like ground truth, not results"
            )
        category = annotation.get("category_id")
        if category not in category_names:
            raise CalcSdkError(f"unknown category_id {category!r}; categories {category_names}")
        x, y, w, h = (float(v) for v in annotation["bbox"])
        rows.append(
            {"x1": x, "y1": y, "x2": x + w, "y2": y + h, "class": category_names[category],
             "score": annotation["score"]}
        )  # fmt: skip
    return rows


def _read_csv(path: str, names: tuple[str, ...]) -> ResultSet:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"file", "x1", "y1", "x2", "y2", "class", "score"} - set(reader.fieldnames or ())
        if missing:
            raise CalcSdkError(f"the CSV lacks the columns {sorted(missing)}", path)
        grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in reader:
            grouped[row["file"]].append(row)
    by_file = {file: _detections(rows, names, f"{path}: {file}") for file, rows in grouped.items()}
    return ResultSet(by_file=by_file, class_names=names, complete=False)


def _read_jsonl(path: str, names: tuple[str, ...]) -> ResultSet:
    by_file = {}
    for number, line in enumerate(read_json_lines(path), start=1):
        if "file" not in line or not isinstance(line.get("detections"), list):
            raise CalcSdkError(f"line {number} needs 'file' and a 'detections' list", path)
        by_file[str(line["file"])] = _detections(line["detections"], names, f"{path}:{number}")
    return ResultSet(by_file=by_file, class_names=names)


def _read_coco(
    path: str, names: tuple[str, ...], category_names: Mapping[int, str] | None
) -> ResultSet:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise CalcSdkError(f"not JSON ({exc})", path) from None
    if isinstance(data, list):  # COCO results: image ids only
        categories = dict(category_names or {i + 1: n for i, n in enumerate(names)})
        grouped: dict[int, list] = defaultdict(list)
        for entry in data:
            grouped[entry["image_id"]].append(entry)
        by_id = {
            image_id: _detections(_xyxy_rows(items, categories), names, f"{path}: image {image_id}")
            for image_id, items in grouped.items()
        }
        return ResultSet(by_image_id=by_id, class_names=names, complete=False)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CalcSdkError("expected a COCO object with 'images' or a COCO results list", path)
    categories = {c["id"]: c["name"] for c in data.get("categories") or []}
    files = {image["id"]: str(image["file_name"]) for image in data["images"]}
    grouped = defaultdict(list)
    for annotation in data.get("annotations") or []:
        grouped[annotation["image_id"]].append(annotation)
    by_file = {
        file: _detections(
            _xyxy_rows(grouped.get(image_id, []), categories), names, f"{path}: {file}"
        )
        for image_id, file in files.items()
    }
    return ResultSet(by_file=by_file, class_names=names)


def read_results(
    path: str | os.PathLike,
    class_names: Sequence[str] = DEFAULT_CLASS_NAMES,
    *,
    category_names: Mapping[int, str] | None = None,
) -> ResultSet:
    """Read a results file (see the module docstring) into per-image :class:`Detections`.

    Args:
        class_names: the classes of the ground truth; results must use these names.
        category_names: COCO category id -> class name for a COCO results list (default:
            ``i + 1`` -> ``class_names[i]``).
    Raises:
        CalcSdkError: unreadable file, missing columns/keys, unknown classes, bad boxes.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CalcSdkError("results file not found", path)
    names = tuple(class_names)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".csv":
        return _read_csv(path, names)
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path, names)
    if suffix == ".json":
        return _read_coco(path, names, category_names)
    raise CalcSdkError(
        f"unknown results format {suffix or 'none'!r}: use .csv, .jsonl or .json", path
    )


def empty_like(results: ResultSet) -> Detections:
    """No detections, in the results' classes."""
    return Detections(
        np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, np.int64), results.class_names
    )
