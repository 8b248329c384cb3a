"""mini-MIAS loader (Mammographic Image Analysis Society, 322 digitised films).

Real layout (the ``all-mias`` archive)::

    root/
      Info.txt          notes, then one row per abnormality (several rows per image possible)
      mdb001.pgm        1024 x 1024 8-bit PGM, 200 micron (0.2 mm) per pixel, MLO views
      ...
      mdb322.pgm

A data row of ``Info.txt`` is whitespace-separated::

    mdb209 G CALC M 647 503 87      refnum, tissue, class, severity, x, y, radius
    mdb003 D NORM                   normal image: three fields
    mdb219 G CALC B                 calcifications too widespread for a centre: no x y radius

* tissue: ``F`` fatty, ``G`` fatty-glandular, ``D`` dense-glandular;
* class: ``CALC`` calcification, ``CIRC``/``SPIC``/``MISC`` masses, ``ARCH`` architectural
  distortion, ``ASYM`` asymmetry, ``NORM`` normal;
* severity ``B`` benign / ``M`` malignant; x, y the centre and radius (pixels) of a circle
  enclosing the abnormality -- for ``CALC`` the circle encloses the CLUSTER;
* the coordinate origin is the BOTTOM-left corner: in image rows ``y_img = 1024 - y``;
* the films come in pairs per patient: even numbers are left, odd numbers right breasts
  (mdb001 and mdb002 are one patient).

Only ``CALC`` rows with a centre become boxes: the square ``(x - r, y_img - r, x + r, y_img + r)``
clipped to the image. ``CALC`` rows without a centre (or with an unusable circle) are kept as
image-level labels in ``metadata["image_level_labels"]`` and give no box. Every listed image
gives one record, masses and normal images included (with no boxes); every row is kept in
``metadata["findings"]``, so callers can filter. Lines that do not start with ``mdbNNN`` (the
notes at the top of Info.txt) are ignored; a garbled ``mdb`` row is skipped with a warning.
"""

from __future__ import annotations

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
)

logger = logging.getLogger(__name__)

MIAS_IMAGE_SIZE = 1024
MIAS_SPACING_MM = 0.2
ABNORMALITY_CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
SEVERITY_TO_LABEL = {"M": MALIGNANT, "B": BENIGN}
TISSUE_NAMES = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}
TISSUE_TO_DENSITY = {"F": "A", "G": "B", "D": "C"}
"""MIAS has three tissue classes, BI-RADS four densities: an approximation (F -> A, G -> B,
D -> C: "dense" in both); pass ``tissue_to_density`` to choose another."""

_REFNUM = re.compile(r"mdb(\d{3})", re.IGNORECASE)


def load_mias(
    root: str | Path,
    *,
    info_file: str = "Info.txt",
    image_suffixes: Sequence[str] = (".pgm", ".png"),
    image_size: int = MIAS_IMAGE_SIZE,
    spacing_mm: float = MIAS_SPACING_MM,
    tissue_to_density: Mapping[str, str] = TISSUE_TO_DENSITY,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read mini-MIAS ``Info.txt`` into one :class:`ImageRecord` per image, sorted by refnum.

    Args:
        root: folder holding ``info_file`` and the images ``mdbNNN<suffix>``.
        image_suffixes: image file suffixes tried in order (PGM as shipped, PNG if converted).
        image_size: side of the square images in pixels (1024), used for the y flip and clipping.
        spacing_mm: pixel spacing in mm (0.2); stored as ``(spacing_mm, spacing_mm)``.
        tissue_to_density: tissue letter -> ``metadata["density"]``.
        check_images: skip (with a warning) images for which no file exists; with ``False`` the
            record points at ``mdbNNN<first suffix>`` whether or not it exists.

    Returns:
        Records with boxes (M, 4) float32 xyxy in image pixels (origin top-left), labels
        0 malignant / 1 benign, ``patient_id`` ``"mias-NNN"`` (one per film pair).

    Raises:
        FileNotFoundError: no ``info_file``.
        ValueError: ``info_file`` holds no ``mdbNNN`` row at all.
    """
    root = Path(root)
    info_path = root / info_file
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path}: mini-MIAS Info.txt not found")
    rows = _parse_info(info_path)
    if not rows:
        raise ValueError(f"{info_path}:1: no 'mdbNNN ...' rows found; is this mini-MIAS Info.txt?")

    missing = SkipLog("image")
    records = []
    for refnum in sorted(rows):
        candidates = [root / f"{refnum}{suffix}" for suffix in image_suffixes]
        image_path = first_existing(candidates)
        if image_path is None:
            if check_images:
                missing.add(candidates[0], f"no {refnum} image with suffix {list(image_suffixes)}")
                continue
            image_path = candidates[0]
        records.append(
            _record(refnum, rows[refnum], image_path, image_size, spacing_mm, tissue_to_density)
        )
    missing.summarize()
    return records


def _parse_info(info_path: Path) -> dict[str, list[dict[str, Any]]]:
    """refnum -> list of parsed rows (``line``, ``tissue``, ``abnormality``, ``severity``, ``x``,
    ``y``, ``radius``; missing values are ``None``)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    text = info_path.read_text(encoding="utf-8", errors="replace")
    for line_number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or not fields[0].lower().startswith("mdb"):
            continue  # notes and blank lines
        row = _parse_row(fields, f"{info_path}:{line_number}")
        if row is not None:
            row["line"] = line_number
            rows.setdefault(fields[0].lower(), []).append(row)
    return rows


def _parse_row(fields: list[str], where: str) -> dict[str, Any] | None:
    if not _REFNUM.fullmatch(fields[0]):
        logger.warning("%s: skipped: reference %r is not mdbNNN", where, fields[0])
        return None
    if len(fields) < 3:
        logger.warning("%s: skipped: expected at least refnum, tissue and class", where)
        return None
    tissue, abnormality = fields[1].upper(), fields[2].upper()
    if tissue not in TISSUE_NAMES:
        logger.warning("%s: skipped: tissue %r is not one of F, G, D", where, fields[1])
        return None
    if abnormality not in ABNORMALITY_CLASSES:
        logger.warning("%s: skipped: unknown abnormality class %r", where, fields[2])
        return None
    row: dict[str, Any] = {"tissue": tissue, "abnormality": abnormality, "severity": None}
    row.update(x=None, y=None, radius=None)
    if abnormality == "NORM":
        return row
    severity = fields[3].upper() if len(fields) > 3 else ""
    if severity not in SEVERITY_TO_LABEL:
        logger.warning(
            "%s: skipped: %s row needs severity B or M, got %r", where, abnormality, severity
        )
        return None
    row["severity"] = severity
    coordinates = fields[4:7]
    if not coordinates:
        return row  # no centre given: an image-level finding
    try:
        x, y, radius = (float(value) for value in coordinates)
        if not np.isfinite([x, y, radius]).all():
            raise ValueError("not finite")
    except ValueError:
        logger.warning("%s: centre/radius %s unreadable: kept without a box", where, coordinates)
        return row
    row.update(x=x, y=y, radius=radius)
    return row


def _calc_box(row: Mapping[str, Any], image_size: int) -> np.ndarray | None:
    """xyxy float32 (1, 4) box of a CALC row in image pixels (y flipped), or None if unusable."""
    if row["x"] is None or row["radius"] is None or row["radius"] <= 0:
        return None
    y_image = image_size - row["y"]  # MIAS y runs up from the bottom-left corner
    x, r = row["x"], row["radius"]
    box = clip_boxes(np.array([[x - r, y_image - r, x + r, y_image + r]]), image_size, image_size)
    if box[0, 2] <= box[0, 0] or box[0, 3] <= box[0, 1]:
        return None
    return box


def _record(
    refnum: str,
    rows: list[dict[str, Any]],
    image_path: Path,
    image_size: int,
    spacing_mm: float,
    tissue_to_density: Mapping[str, str],
) -> ImageRecord:
    boxes, labels, image_level_labels = [], [], []
    for row in rows:
        if row["abnormality"] != "CALC":
            continue
        label = SEVERITY_TO_LABEL[row["severity"]]
        box = _calc_box(row, image_size)
        if box is None:
            if row["x"] is not None:
                logger.warning(
                    "%s: line %d: circle (%s, %s, r=%s) unusable: kept without a box",
                    refnum,
                    row["line"],
                    row["x"],
                    row["y"],
                    row["radius"],
                )
            image_level_labels.append(label)
        else:
            boxes.append(box[0])
            labels.append(label)
    tissue = rows[0]["tissue"]
    if any(row["tissue"] != tissue for row in rows):
        logger.warning("%s: rows disagree on the tissue; using the first (%s)", refnum, tissue)
    number = int(refnum[3:])
    metadata = {
        "source": "mini-mias",
        "refnum": refnum,
        "view": "MLO",
        "laterality": "L" if number % 2 == 0 else "R",
        "density": tissue_to_density.get(tissue),
        "background_tissue": TISSUE_NAMES[tissue],
        "height": image_size,
        "width": image_size,
        "findings": tuple(
            {k: row[k] for k in ("abnormality", "severity", "x", "y", "radius")} for row in rows
        ),
        "image_level_labels": tuple(image_level_labels),
    }
    return ImageRecord(
        image_path=str(image_path),
        boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.array(labels, dtype=np.int64),
        spacing_mm=(spacing_mm, spacing_mm),
        patient_id=f"mias-{(number + 1) // 2:03d}",
        metadata=metadata,
    )
