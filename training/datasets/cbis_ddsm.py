"""CBIS-DDSM loader (Curated Breast Imaging Subset of DDSM), calcification cases.

Real layout (TCIA download; the folder names are those written in the CSVs)::

    root/
      calc_case_description_train_set.csv
      calc_case_description_test_set.csv
      Calc-Training_P_00005_RIGHT_CC/<uid>/<uid>/000000.dcm       full mammogram
      Calc-Training_P_00005_RIGHT_CC_1/<uid>/<uid>/000000.dcm     cropped ROI (or the mask)
      Calc-Training_P_00005_RIGHT_CC_1/<uid>/<uid>/000001.dcm     binary ROI mask (or the crop)

One CSV row per abnormality; columns ``patient_id, breast density (1-4), left or right breast,
image view, abnormality id, abnormality type, calc type, calc distribution, assessment,
pathology, subtlety, image file path, cropped image file path, ROI mask file path`` (the mass
CSVs spell ``breast_density``; headers are matched case- and underscore-insensitively). Paths
may end in a stray newline inside their quotes; they are stripped.

Each calcification row becomes one box: the bounding box of the nonzero pixels of its ROI mask,
which is in the full image's pixel frame. Pathology gives the class: ``MALIGNANT`` -> 0,
``BENIGN`` and ``BENIGN_WITHOUT_CALLBACK`` -> 1. CBIS is known to swap the cropped-image and
mask paths in some rows, so a mask that is not binary is replaced by the "cropped image" file
when that one is binary. Rows of one full image are merged into one record.

Skips: a row without an image path or of another abnormality type is skipped with a warning. A
row whose box cannot be made (unknown pathology, mask missing or unusable) drops its WHOLE image
with a warning: keeping the image would teach a detector that the lesion is background. A full
image that ``path_resolver`` cannot find is skipped too (warnings summarised after 10).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np

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

CALC_CSV_FILES = ("calc_case_description_train_set.csv", "calc_case_description_test_set.csv")
PATHOLOGY_TO_LABEL = {"MALIGNANT": MALIGNANT, "BENIGN": BENIGN, "BENIGN_WITHOUT_CALLBACK": BENIGN}
REQUIRED_COLUMNS = ("patient id", "image file path", "roi mask file path", "pathology")

PathResolver = Callable[[str, Path, str], "Path | None"]
"""``resolver(csv_path, root, kind) -> existing file or None``; ``kind`` is ``"image"``,
``"roi_mask"`` or ``"cropped"``."""
MaskReader = Callable[[Path], np.ndarray]


def default_path_resolver(csv_path: str, root: Path, kind: str) -> Path | None:
    """Find the file a CSV path names, trying in order, relative to ``root``:

    1. the path as written (``Calc-Training_P_00005_RIGHT_CC/<uid>/<uid>/000000.dcm``),
       also under ``root/CBIS-DDSM/`` (the TCIA downloader's top folder);
    2. the same path with ``.png`` instead of ``.dcm``;
    3. the first folder flattened into a file name: ``Calc-Training_P_00005_RIGHT_CC.png`` /
       ``.dcm`` (a common conversion; for ``kind == "roi_mask"`` also ``<folder>_mask.png``).

    Returns the first that exists, else ``None``. ``kind`` only matters for rule 3.
    """
    relative = PurePosixPath(csv_path.strip().replace("\\", "/"))
    if not relative.parts:
        return None
    candidates = []
    for base in (root, root / "CBIS-DDSM"):
        as_written = base / Path(*relative.parts)
        candidates += [as_written, as_written.with_suffix(".png"), as_written.with_suffix(".dcm")]
    folder = relative.parts[0]
    flattened = [f"{folder}.png", f"{folder}.dcm"]
    if kind == "roi_mask":
        flattened.insert(0, f"{folder}_mask.png")
    candidates += [root / name for name in flattened]
    return first_existing(candidates)


def read_mask(path: Path) -> np.ndarray:
    """Read a mask image as a 2-D array: DICOM (``.dcm``/``.dicom``, via pydicom) or anything
    OpenCV reads; colour images are reduced to their channel maximum.

    Raises:
        ValueError: the file cannot be decoded.
    """
    path = Path(path)
    if path.suffix.lower() in (".dcm", ".dicom"):
        import pydicom  # optional dependency, only for DICOM masks

        pixels = pydicom.dcmread(path).pixel_array
    else:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ValueError(f"{path}: OpenCV could not decode the mask")
    pixels = np.asarray(pixels)
    return pixels.max(axis=2) if pixels.ndim == 3 else pixels


def mask_bounding_box(mask: np.ndarray) -> np.ndarray | None:
    """(4,) float32 xyxy (x2/y2 exclusive) box around the nonzero pixels of a 2-D binary mask.

    ``None`` unless the mask is 2-D with exactly two distinct values (background 0 and one
    foreground value): a grey image (a swapped crop), an empty or an all-foreground mask is no ROI.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        return None
    foreground = mask.max()
    inside = mask != 0
    # binary: some background, and one foreground value (O(pixels), unlike np.unique's sort)
    if foreground <= 0 or inside.all() or (mask[inside] != foreground).any():
        return None
    x, y, w, h = cv2.boundingRect(cv2.findNonZero(inside.astype(np.uint8)))
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def load_cbis_ddsm(
    root: str | Path,
    *,
    csv_files: Sequence[str | Path] | None = None,
    path_resolver: PathResolver = default_path_resolver,
    mask_reader: MaskReader = read_mask,
) -> list[ImageRecord]:
    """Read the CBIS-DDSM calcification CSVs and ROI masks into one record per full image.

    Args:
        root: dataset folder; CSV paths are resolved against it.
        csv_files: description CSVs (relative to ``root`` or absolute); default: those of
            :data:`CALC_CSV_FILES` that exist under ``root``.
        path_resolver: maps a CSV path to an existing file (see :func:`default_path_resolver`).
        mask_reader: reads a mask file into a 2-D array (see :func:`read_mask`).

    Returns:
        Records in CSV order: boxes (M, 4) float32 xyxy in full-image pixels, labels
        0 malignant / 1 benign, ``spacing_mm`` ``None`` (DDSM scanners differ), ``patient_id``
        as ``P_00005``, metadata with ``split`` ("train"/"test" from the CSV name) and per-box
        ``abnormality_ids``, ``calc_types``, ``calc_distributions``, ``assessments``,
        ``subtleties``, ``pathologies``.

    Raises:
        FileNotFoundError: no CSV found. ValueError: a CSV lacks a required column.
    """
    root = Path(root)
    if csv_files is None:
        csv_paths = [root / name for name in CALC_CSV_FILES if (root / name).is_file()]
        if not csv_paths:
            raise FileNotFoundError(f"{root}: none of {list(CALC_CSV_FILES)} found")
    else:
        csv_paths = [Path(p) if Path(p).is_absolute() else root / p for p in csv_files]

    images: dict[str, dict[str, Any]] = {}  # csv image path -> accumulated record fields
    for csv_path in csv_paths:
        split = "test" if "test" in csv_path.name.lower() else "train"
        for line, row in read_csv_rows(csv_path, REQUIRED_COLUMNS):
            where = f"{csv_path}:{line}"
            if not row["image file path"]:
                logger.warning("%s: skipped: empty image file path", where)
                continue
            if row.get("abnormality type", "calcification").lower() != "calcification":
                logger.warning("%s: skipped: abnormality type %r", where, row["abnormality type"])
                continue
            entry = images.setdefault(row["image file path"], _new_entry(row, split, where))
            _add_row(entry, row, root, path_resolver, mask_reader, where)

    dropped = SkipLog("image")
    records = []
    for csv_image_path, entry in images.items():
        if entry["problem"]:
            dropped.add(entry["where"], entry["problem"])
            continue
        image_path = path_resolver(csv_image_path, root, "image")
        if image_path is None:
            dropped.add(entry["where"], f"image {csv_image_path!r} not found under {root}")
            continue
        records.append(_record(entry, image_path, csv_image_path))
    dropped.summarize()
    return records


def _new_entry(row: dict[str, str], split: str, where: str) -> dict[str, Any]:
    density = row.get("breast density", "")
    return {
        "where": where,
        "problem": None,
        "boxes": [],
        "labels": [],
        "rows": [],
        "patient_id": row["patient id"] or None,
        "metadata": {
            "source": "cbis-ddsm",
            "split": split,
            "view": normalize_view(row.get("image view")),
            "laterality": normalize_laterality(row.get("left or right breast")),
            "density": normalize_density(density),
        },
    }


def _add_row(
    entry: dict[str, Any],
    row: dict[str, str],
    root: Path,
    path_resolver: PathResolver,
    mask_reader: MaskReader,
    where: str,
) -> None:
    if entry["problem"]:
        return
    label = PATHOLOGY_TO_LABEL.get(row["pathology"].upper())
    if label is None:
        entry["problem"] = f"{where}: unknown pathology {row['pathology']!r}"
        return
    box = _box_from_masks(row, root, path_resolver, mask_reader)
    if box is None:
        entry["problem"] = f"{where}: no usable binary ROI mask for {row['roi mask file path']!r}"
        return
    entry["boxes"].append(box)
    entry["labels"].append(label)
    entry["rows"].append(row)


def _box_from_masks(
    row: dict[str, str], root: Path, path_resolver: PathResolver, mask_reader: MaskReader
) -> np.ndarray | None:
    """Box from the ROI mask; if that is not a usable binary mask, from the "cropped image"
    file (CBIS swaps the two in some rows)."""
    for column, kind in (
        ("roi mask file path", "roi_mask"),
        ("cropped image file path", "cropped"),
    ):
        csv_path = row.get(column, "")
        path = path_resolver(csv_path, root, kind) if csv_path else None
        if path is None:
            continue
        try:
            mask = mask_reader(path)
        except Exception as error:  # any decoder failure means: this file is no mask
            logger.debug("%s: unreadable as a mask: %s", path, error)
            continue
        box = mask_bounding_box(mask)
        if box is not None:
            return box
    return None


def _record(entry: dict[str, Any], image_path: Path, csv_image_path: str) -> ImageRecord:
    rows = entry["rows"]

    def per_box(column: str) -> tuple[str, ...]:
        return tuple(row.get(column, "") for row in rows)

    metadata = dict(entry["metadata"])
    metadata.update(
        csv_image_path=csv_image_path,
        abnormality_ids=per_box("abnormality id"),
        calc_types=per_box("calc type"),
        calc_distributions=per_box("calc distribution"),
        assessments=per_box("assessment"),
        subtleties=per_box("subtlety"),
        pathologies=per_box("pathology"),
    )
    return ImageRecord(
        image_path=str(image_path),
        boxes=np.stack(entry["boxes"]),
        labels=np.array(entry["labels"], dtype=np.int64),
        spacing_mm=None,
        patient_id=entry["patient_id"],
        metadata=metadata,
    )
