"""The common per-image record that every dataset loader returns, and the vocabulary it uses.

Boxes follow calcsdk's one convention (see :mod:`calcsdk.boxes`): ``xyxy`` float32 in ORIGINAL
image pixels (the pixel grid of the file as stored), origin at the top-left corner, x = column,
y = row, ``x2``/``y2`` exclusive. Labels index :data:`CLASS_NAMES` (``0`` malignant, ``1``
benign), calcsdk's class order.

Metadata keys shared by all loaders (a loader adds dataset-specific keys beside them):

====================  =========================================================================
``source``            dataset name: ``"mini-mias"``, ``"cbis-ddsm"``, ``"inbreast"``,
                      ``"vindr-mammo"`` or ``"coco"``
``view``              ``"CC"``, ``"MLO"`` (other views upper-cased as given) or ``None``
``laterality``        ``"L"``, ``"R"`` or ``None``
``density``           ACR/BI-RADS breast density ``"A"``..``"D"`` or ``None``
``height``/``width``  image size in pixels when the annotation files state it
====================  =========================================================================

The module also holds the small helpers the loaders share (vocabulary normalisation, CSV
reading with clear errors, path probing, summarised skip warnings).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

CLASS_NAMES: tuple[str, str] = ("malignant", "benign")
MALIGNANT = 0
BENIGN = 1
NORMAL_IMAGE = 2
"""Image-level label of an image without boxes; used for stratified splits, never as a box label."""


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One mammogram and its calcification-cluster annotations.

    Attributes:
        image_path: path of the image file (DICOM, PNG, PGM, ...), as a string.
        boxes: (M, 4) float32 xyxy in original image pixels, ``0 <= x1 < x2``, ``0 <= y1 < y2``,
            x2/y2 exclusive; M may be 0 (an image without calcification clusters).
        labels: (M,) int64, ``0`` malignant or ``1`` benign.
        spacing_mm: (row, col) pixel spacing in mm/pixel when known, else ``None``.
        patient_id: patient identifier when the dataset gives one (records of one patient must
            never be split across train and test), else ``None``.
        metadata: view, laterality, density, source dataset, original ids, ... (see module doc).

    The arrays are copied and made read-only; ``eq`` is identity (arrays have no plain ``==``).
    """

    image_path: str
    boxes: np.ndarray
    labels: np.ndarray
    spacing_mm: tuple[float, float] | None = None
    patient_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.image_path, str | os.PathLike) or not str(self.image_path):
            raise TypeError(f"image_path should be a non-empty str, got {self.image_path!r}")
        boxes = _as_boxes(self.boxes)
        labels = _as_labels(self.labels, len(boxes))
        for array in (boxes, labels):
            array.setflags(write=False)
        object.__setattr__(self, "image_path", str(self.image_path))
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "spacing_mm", _as_spacing(self.spacing_mm))
        if self.patient_id is not None:
            object.__setattr__(self, "patient_id", str(self.patient_id))
        if not isinstance(self.metadata, Mapping):
            raise TypeError(f"metadata should be a mapping, got {type(self.metadata)}")
        object.__setattr__(self, "metadata", dict(self.metadata))

    @property
    def class_names(self) -> tuple[str, str]:
        """``("malignant", "benign")``: the names of label 0 and label 1."""
        return CLASS_NAMES

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    @property
    def image_label(self) -> int:
        """Image-level class: MALIGNANT if any box is malignant, else BENIGN if any box is benign,
        else NORMAL_IMAGE (2). For stratification; image-level labels without boxes (MIAS rows
        without coordinates) are not counted."""
        if (self.labels == MALIGNANT).any():
            return MALIGNANT
        if (self.labels == BENIGN).any():
            return BENIGN
        return NORMAL_IMAGE

    @property
    def group_id(self) -> str:
        """Patient id when known, else the image path (so each image is its own group)."""
        return self.patient_id if self.patient_id is not None else self.image_path


def _as_boxes(boxes: Any) -> np.ndarray:
    array = np.array(boxes, dtype=np.float64, copy=True)
    if array.size == 0:
        return np.zeros((0, 4), dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes should have shape (M, 4), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("boxes should hold finite values, got NaN or inf")
    if (array[:, :2] < 0).any():
        raise ValueError("boxes should have x1 >= 0 and y1 >= 0 (original image pixels)")
    if (array[:, 2] <= array[:, 0]).any() or (array[:, 3] <= array[:, 1]).any():
        raise ValueError("boxes should have x1 < x2 and y1 < y2 (xyxy, x2/y2 exclusive)")
    return array.astype(np.float32)


def _as_labels(labels: Any, num_boxes: int) -> np.ndarray:
    array = np.array(labels, copy=True)
    if array.size == 0:
        array = array.reshape(0).astype(np.int64)
    if array.ndim != 1 or len(array) != num_boxes:
        raise ValueError(f"labels should have shape ({num_boxes},), got {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"labels should be integers, got dtype {array.dtype}")
    if not np.isin(array, (MALIGNANT, BENIGN)).all():
        raise ValueError(f"labels should be 0 (malignant) or 1 (benign), got {np.unique(array)}")
    return array.astype(np.int64)


def _as_spacing(spacing: Any) -> tuple[float, float] | None:
    if spacing is None:
        return None
    values = tuple(float(v) for v in np.ravel(spacing))
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing_mm should be (row, col) mm/pixel > 0, got {spacing!r}")
    return values  # type: ignore[return-value]


def records_to_ground_truth(records: Sequence[ImageRecord]) -> list[Any]:
    """One ``calcsdk.detections.GroundTruth(boxes, labels, class_names)`` per record, in order.

    ``calcsdk.detections`` is imported only here, so the loaders do not depend on it.
    """
    from calcsdk.detections import GroundTruth

    return [GroundTruth(r.boxes, r.labels, r.class_names) for r in records]


# --- helpers shared by the loaders ---------------------------------------------------------
_DENSITY_DIGITS = {"1": "A", "2": "B", "3": "C", "4": "D"}
_VIEW_ALIASES = {"CRANIOCAUDAL": "CC", "MEDIOLATERAL OBLIQUE": "MLO", "MEDIOLATERAL-OBLIQUE": "MLO"}


def normalize_laterality(value: Any) -> str | None:
    """``"L"``/``"LEFT"`` -> ``"L"``, ``"R"``/``"RIGHT"`` -> ``"R"`` (any case); else ``None``."""
    text = str(value).strip().upper() if value is not None else ""
    if text in ("L", "LEFT"):
        return "L"
    if text in ("R", "RIGHT"):
        return "R"
    return None


def normalize_view(value: Any) -> str | None:
    """Upper-cased view (``"CC"``, ``"MLO"``, other views as given); empty -> ``None``."""
    text = str(value).strip().upper() if value is not None else ""
    return _VIEW_ALIASES.get(text, text) or None


def normalize_density(value: Any) -> str | None:
    """ACR density as ``"A"``..``"D"`` from ``"A"``..``"D"``, ``1``..``4``, ``"DENSITY C"``...;
    anything else -> ``None``."""
    text = str(value).strip().upper() if value is not None else ""
    text = re.sub(r"^(ACR|DENSITY|BI-?RADS)[\s:_-]*", "", text)
    if text.endswith(".0"):  # 3.0 from a spreadsheet export
        text = text[:-2]
    if text in ("A", "B", "C", "D"):
        return text
    return _DENSITY_DIGITS.get(text)


def normalize_column(name: str | None) -> str:
    """CSV header name for matching: lower case, ``_`` -> space, whitespace collapsed."""
    return " ".join(str(name or "").replace("\ufeff", "").replace("_", " ").lower().split())


def read_csv_rows(
    path: Path, required_columns: Iterable[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` for each data row of a comma- or semicolon-separated file.

    Row keys are :func:`normalize_column` names, values are stripped strings. Rows with a
    different number of fields than the header are skipped with a logged warning.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty file, or a header without one of ``required_columns`` (normalised
            names); the message names the file and line 1.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        header_line = handle.readline()
        if not header_line.strip():
            raise ValueError(f"{path}:1: empty file, expected a CSV header")
        delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        header = [normalize_column(name) for name in next(reader)]
        missing = [c for c in required_columns if c not in header]
        if missing:
            raise ValueError(f"{path}:1: header lacks column(s) {missing}; found {header}")
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                logger.warning(
                    "%s:%d: skipped: %d fields, the header has %d",
                    path,
                    reader.line_num,
                    len(fields),
                    len(header),
                )
                continue
            yield reader.line_num, {k: v.strip() for k, v in zip(header, fields)}


def first_existing(candidates: Iterable[Path]) -> Path | None:
    """The first candidate path that is an existing file, or ``None``."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


class SkipLog:
    """Collects skipped items and logs the first ``max_logged`` of them, then one summary.

    Used for skips that can be numerous (e.g. images missing from a partial download), so a
    loader does not flood the log; rare skips (a garbled row) are logged directly.
    """

    def __init__(self, what: str, max_logged: int = 10):
        self.what = what
        self.max_logged = max_logged
        self.count = 0

    def add(self, source: Any, reason: str) -> None:
        self.count += 1
        if self.count <= self.max_logged:
            logger.warning("%s: %s skipped: %s", source, self.what, reason)

    def summarize(self) -> None:
        if self.count > self.max_logged:
            logger.warning(
                "%d %ss skipped in all (first %d logged)", self.count, self.what, self.max_logged
            )
