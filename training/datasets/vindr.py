"""VinDr-Mammo loader (5,000 four-view screening exams, 20,000 DICOM images).

Real layout::

    root/
      finding_annotations.csv
      breast-level_annotations.csv        (not needed here)
      images/<study_id>/<image_id>.dicom  (or .dcm / .png after conversion)

``finding_annotations.csv`` has one row per finding, and one "No Finding" row for an image
without findings; columns ``study_id, series_id, image_id, laterality (L/R), view_position
(CC/MLO), height, width, breast_birads ("BI-RADS 2"), breast_density ("DENSITY C"),
finding_categories`` (a Python list literal, e.g. ``"['Mass', 'Suspicious Calcification']"``),
``finding_birads`` ("BI-RADS 4", empty for No Finding), ``xmin, ymin, xmax, ymax`` (image
pixels, empty for No Finding) and ``split`` ("training"/"test").

A finding whose categories include a calcification category ("Suspicious Calcification")
becomes a box, clipped to ``width x height``; its class comes from the FINDING's BI-RADS:
4, 5 -> malignant, 2, 3 -> benign (VinDr has no pathology; BI-RADS 4-5 are "suspicious" and
"highly suggestive of malignancy", 2-3 benign and probably benign). Other findings are listed in
``metadata["other_findings"]``. Images without calcification findings are normal records
(no boxes). VinDr gives no patient id: ``study_id`` (one exam of one woman) is used.

Skips: a row without study/image id is skipped with a warning. A calcification finding without
a usable box or class (e.g. BI-RADS missing) drops its whole image with a warning, since
keeping it would mark the lesion as background.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.boxes import clip_boxes
from calcsdk.training.datasets.record import (
    BENIGN,
    MALIGNANT,
    ImageRecord,
    SkipLog,
    first_existing,
    normalize_density,
    normalize_laterality,
    normalize_view,
    read_csv_rows,
)

logger = logging.getLogger(__name__)

FINDING_BIRADS_TO_LABEL: Mapping[str, int] = {
    "2": BENIGN,
    "3": BENIGN,
    "4": MALIGNANT,
    "5": MALIGNANT,
}
REQUIRED_COLUMNS = ("study id", "image id", "finding categories", "finding birads")
BOX_COLUMNS = ("xmin", "ymin", "xmax", "ymax")


def parse_finding_categories(text: str) -> list[str]:
    """``"['Mass', 'Suspicious Calcification']"`` -> ``["Mass", "Suspicious Calcification"]``.

    Falls back to splitting on commas when the text is not a Python list literal.
    """
    text = (text or "").strip()
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part.strip(" '\"") for part in text.strip("[]").split(",") if part.strip(" '\"")]


def birads_number(text: str) -> str:
    """``"BI-RADS 4"`` -> ``"4"``, ``"4a"`` -> ``"4a"``, empty -> ``""``."""
    match = re.search(r"(\d[a-c]?)", (text or "").lower())
    return match.group(1) if match else ""


def load_vindr(
    root: str | Path,
    *,
    csv_file: str = "finding_annotations.csv",
    image_dir: str = "images",
    image_suffixes: Sequence[str] = (".dicom", ".dcm", ".png"),
    birads_to_label: Mapping[str, int] = FINDING_BIRADS_TO_LABEL,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read VinDr-Mammo ``finding_annotations.csv`` into one record per image, in CSV order.

    Args:
        root: dataset folder. csv_file, image_dir: names under ``root``.
        image_suffixes: tried in order for ``image_dir/<study_id>/<image_id><suffix>``.
        birads_to_label: finding BI-RADS number ("2".."5") -> label.
        check_images: skip (with a warning) images without a file; with ``False`` the record
            points at the first suffix's path.

    Returns:
        Records: boxes (M, 4) float32 xyxy in image pixels, labels 0/1, ``spacing_mm`` ``None``
        (it is in the DICOM headers only), ``patient_id`` = study_id; metadata ``study_id``,
        ``series_id``, ``image_id``, ``split``, ``breast_birads``, ``finding_birads`` (per box),
        ``other_findings``, height, width, view, laterality, density.

    Raises:
        FileNotFoundError: no CSV. ValueError: the CSV lacks a required column.
    """
    root = Path(root)
    csv_path = root / csv_file
    images: dict[tuple[str, str], dict[str, Any]] = {}
    for line, row in read_csv_rows(csv_path, REQUIRED_COLUMNS):
        where = f"{csv_path}:{line}"
        if not row["study id"] or not row["image id"]:
            logger.warning("%s: skipped: empty study_id or image_id", where)
            continue
        entry = images.get((row["study id"], row["image id"]))
        if entry is None:
            entry = images[(row["study id"], row["image id"])] = _new_entry(row, where)
        _add_finding(entry, row, birads_to_label, where)

    skipped = SkipLog("image")
    records = []
    for (study_id, image_id), entry in images.items():
        if entry["problem"]:
            skipped.add(entry["where"], entry["problem"])
            continue
        candidates = [root / image_dir / study_id / f"{image_id}{s}" for s in image_suffixes]
        image_path = first_existing(candidates)
        if image_path is None:
            if check_images:
                skipped.add(entry["where"], f"no image file {candidates[0]} (or other suffix)")
                continue
            image_path = candidates[0]
        records.append(_record(entry, image_path, study_id))
    skipped.summarize()
    return records


def _int_or_none(text: str) -> int | None:
    try:
        value = int(float(text))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _new_entry(row: dict[str, str], where: str) -> dict[str, Any]:
    return {
        "where": where,
        "problem": None,
        "boxes": [],
        "labels": [],
        "finding_birads": [],
        "other_findings": [],
        "height": _int_or_none(row.get("height", "")),
        "width": _int_or_none(row.get("width", "")),
        "row": row,
    }


def _add_finding(
    entry: dict[str, Any], row: dict[str, str], birads_to_label: Mapping[str, int], where: str
) -> None:
    categories = parse_finding_categories(row["finding categories"])
    if not any("calcification" in category.lower() for category in categories):
        entry["other_findings"] += [c for c in categories if c.lower() != "no finding"]
        return
    birads = birads_number(row["finding birads"])
    label = birads_to_label.get(birads)
    if label is None:
        entry["problem"] = entry["problem"] or f"{where}: finding BI-RADS {birads!r} has no class"
        return
    box = _box(row, entry["height"], entry["width"])
    if box is None:
        values = [row.get(c, "") for c in BOX_COLUMNS]
        entry["problem"] = entry["problem"] or f"{where}: unusable box {values}"
        return
    entry["boxes"].append(box)
    entry["labels"].append(label)
    entry["finding_birads"].append(birads)


def _box(row: dict[str, str], height: int | None, width: int | None) -> np.ndarray | None:
    try:
        box = np.array([[float(row.get(c, "")) for c in BOX_COLUMNS]], dtype=np.float64)
    except ValueError:
        return None
    if not np.isfinite(box).all():
        return None
    box[:, :2] = np.maximum(box[:, :2], 0.0)
    if height is not None and width is not None:
        box = clip_boxes(box, height, width)
    if box[0, 2] <= box[0, 0] or box[0, 3] <= box[0, 1]:
        return None
    return box[0].astype(np.float32)


def _record(entry: dict[str, Any], image_path: Path, study_id: str) -> ImageRecord:
    row = entry["row"]
    metadata = {
        "source": "vindr-mammo",
        "study_id": study_id,
        "series_id": row.get("series id") or None,
        "image_id": row["image id"],
        "split": row.get("split") or None,
        "view": normalize_view(row.get("view position")),
        "laterality": normalize_laterality(row.get("laterality")),
        "density": normalize_density(row.get("breast density")),
        "breast_birads": birads_number(row.get("breast birads", "")) or None,
        "finding_birads": tuple(entry["finding_birads"]),
        "other_findings": tuple(dict.fromkeys(entry["other_findings"])),
        "height": entry["height"],
        "width": entry["width"],
    }
    return ImageRecord(
        image_path=str(image_path),
        boxes=np.array(entry["boxes"], dtype=np.float32).reshape(-1, 4),
        labels=np.array(entry["labels"], dtype=np.int64),
        spacing_mm=None,
        patient_id=study_id,
        metadata=metadata,
    )
