"""The ROI data set of the paper's classifier: writer and reader.

Layout under ``root`` (usually ``<out>/rois``)::

    index.csv                       one row per ROI (columns: INDEX_COLUMNS)
    grayscale/<roi_id>.png          16-bit PNG of round(value * 65535), value in [0, 1]
    binary/<roi_id>.png             8-bit PNG, 0 or 255
    filtered/<roi_id>.png           16-bit PNG of round(value * 65535)

``index.csv`` columns: ``roi_id``, ``label`` (``malignant``, ``benign`` or ``normal``),
``image_id``, ``patient_id``, ``density``, the source box ``x1, y1, x2, y2`` (pixels of the
source image, x2/y2 exclusive) and one column per representation holding the file path
relative to ``root``.

Crops: each box is warped, with R-CNN context padding, to 227 x 227 by
:func:`calcsdk.warp.warp_boxes` (the one crop implementation, shared with inference), from the
source image scaled to [0, 1] by its full scale (``2**bits_stored - 1``); the three
representations come from :func:`calcsdk.representations.roi_representations`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from calcsdk.image import write_png
from calcsdk.representations import REPRESENTATIONS, roi_representations
from calcsdk.warp import CONTEXT_PAD, ROI_SIZE, warp_boxes

ROI_LABELS = ("malignant", "benign", "normal")  # label index = position (0, 1, 2)
INDEX_COLUMNS = (
    "roi_id",
    "label",
    "image_id",
    "patient_id",
    "density",
    "x1",
    "y1",
    "x2",
    "y2",
    *REPRESENTATIONS,
)
INDEX_FILE = "index.csv"


@dataclass(frozen=True)
class RoiRecord:
    """One row of ``index.csv``.

    Attributes:
        roi_id: unique name, also the file stem.
        label: ``"malignant"``, ``"benign"`` or ``"normal"``.
        image_id: id of the source image (the COCO image id for synthetic data).
        patient_id: patient of the source image (keep a patient's ROIs in one split).
        density: BI-RADS density of the source image, ``""`` when unknown.
        box_xyxy: crop box in source-image pixels, x2/y2 exclusive.
        files: representation -> file path relative to the ROI root.
    """

    roi_id: str
    label: str
    image_id: int
    patient_id: str
    density: str
    box_xyxy: tuple[float, float, float, float]
    files: dict[str, str]

    def row(self) -> dict[str, str]:
        """The CSV row (strings)."""
        x1, y1, x2, y2 = (f"{v:.2f}" for v in self.box_xyxy)
        return {
            "roi_id": self.roi_id,
            "label": self.label,
            "image_id": str(self.image_id),
            "patient_id": self.patient_id,
            "density": self.density,
            "x1": x1,
            "y1": y1,
            "x2": x2,
            "y2": y2,
            **{name: self.files[name] for name in REPRESENTATIONS},
        }


def write_rois(
    root: str | os.PathLike,
    pixels: np.ndarray,
    full_scale: int,
    boxes_xyxy: np.ndarray,
    labels: Sequence[str],
    roi_ids: Sequence[str],
    *,
    image_id: int,
    patient_id: str,
    density: str = "",
) -> list[RoiRecord]:
    """Crop, represent and write the ROIs of one image; returns their index rows.

    Args:
        root: ROI root folder (the representation folders are created as needed).
        pixels: ``(H, W)`` integer source image (MONOCHROME2).
        full_scale: value mapped to 1.0 (``2**bits_stored - 1``).
        boxes_xyxy: ``(N, 4)`` crop boxes in ``pixels``' frame, x2/y2 exclusive.
        labels: N labels from :data:`ROI_LABELS`.
        roi_ids: N unique ids (file stems).
        image_id, patient_id, density: provenance written to the index.

    Raises:
        ValueError: mismatched lengths, an unknown label or a bad full scale.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    if not (len(boxes) == len(labels) == len(roi_ids)):
        raise ValueError(
            f"need as many boxes, labels and ids, got {len(boxes)}, {len(labels)}, {len(roi_ids)}"
        )
    unknown = sorted(set(labels) - set(ROI_LABELS))
    if unknown:
        raise ValueError(f"labels should be among {ROI_LABELS}, got {unknown}")
    if full_scale <= 0:
        raise ValueError(f"full_scale should be positive, got {full_scale}")
    if len(boxes) == 0:
        return []
    root = Path(root)
    for name in REPRESENTATIONS:
        (root / name).mkdir(parents=True, exist_ok=True)
    image = pixels.astype(np.float32) * np.float32(1.0 / full_scale)
    crops = warp_boxes(image, boxes, size=ROI_SIZE, context_pad=CONTEXT_PAD)
    records = []
    for crop, box, label, roi_id in zip(crops, boxes, labels, roi_ids):
        files = {}
        for name, values in roi_representations(crop).items():
            relative = f"{name}/{roi_id}.png"
            write_png(root / relative, _encode(name, values))
            files[name] = relative
        records.append(
            RoiRecord(
                roi_id, label, image_id, patient_id, density, tuple(float(v) for v in box), files
            )
        )
    return records


def write_roi_index(root: str | os.PathLike, records: Iterable[RoiRecord]) -> Path:
    """Write ``index.csv`` (rows in the given order); returns its path."""
    path = Path(root) / INDEX_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(record.row())
    return path


def read_roi_index(root: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of ``index.csv`` as dicts of strings.

    Raises:
        FileNotFoundError: no index under ``root``.
        ValueError: the header lacks a required column.
    """
    path = Path(root) / INDEX_FILE
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in INDEX_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        return list(reader)


def load_roi_dataset(
    root: str | os.PathLike, representation: str
) -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """Load every ROI of one representation.

    Args:
        root: ROI root folder holding ``index.csv``.
        representation: ``"grayscale"``, ``"binary"`` or ``"filtered"``.

    Returns:
        ``(x, y, rows)``: ``x`` float32 ``(N, 227, 227)`` in [0, 1]; ``y`` int64 ``(N,)`` with
        malignant = 0, benign = 1, normal = 2; ``rows`` the index rows in the same order.

    Raises:
        ValueError: unknown representation or label, or a file of the wrong size.
        FileNotFoundError: the index or an ROI file is missing.
    """
    if representation not in REPRESENTATIONS:
        raise ValueError(
            f"representation should be one of {REPRESENTATIONS}, got {representation!r}"
        )
    root = Path(root)
    rows = read_roi_index(root)
    x = np.zeros((len(rows), ROI_SIZE, ROI_SIZE), dtype=np.float32)
    y = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        if row["label"] not in ROI_LABELS:
            raise ValueError(
                f"{root / INDEX_FILE}: unknown label {row['label']!r} for ROI {row['roi_id']}"
            )
        y[i] = ROI_LABELS.index(row["label"])
        x[i] = _decode(root / row[representation])
    return x, y, rows


def _encode(representation: str, values: np.ndarray) -> np.ndarray:
    if representation == "binary":
        return np.where(values > 0.5, 255, 0).astype(np.uint8)
    return np.rint(np.clip(values, 0.0, 1.0) * 65535.0).astype(np.uint16)


def _decode(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ROI file not found")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2 or raw.shape != (ROI_SIZE, ROI_SIZE):
        raise ValueError(f"{path}: expected a {ROI_SIZE}x{ROI_SIZE} grayscale PNG")
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    return raw.astype(np.float32) * np.float32(1.0 / scale)
