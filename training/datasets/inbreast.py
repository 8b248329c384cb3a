"""INbreast loader (410 full-field digital mammograms, 0.07 mm/pixel).

Real layout::

    root/
      INbreast.csv      the INbreast.xls sheet exported as CSV (``;`` or ``,``): Patient ID,
                        Patient age, Laterality, View, Acquisition date, File Name, ACR, Bi-Rads
      AllXML/<File Name>.xml
                        OsiriX ROIs as an Apple plist: Images -> [ {ImageHeight, ImageWidth,
                        ROIs -> [ {Name, NumberOfPoints, Point_px: ["(x, y)", ...], ...} ]} ]
      AllDICOMs/<File Name>_<patient hash>_MG_<L|R>_<CC|MLO>_ANON.dcm

``Point_px`` holds image pixels, x = column, y = row, origin top-left. ``Name`` is e.g.
``"Calcification"``, ``"Cluster"``, ``"Mass"``, ``"Spiculated Region"`` (matched ignoring case;
a name starting with "calcification" is one calcification, "cluster" a drawn cluster outline).
The INbreast sheet anonymises ``Patient ID``; the patient hash of the DICOM file name is used
instead (``None`` when the images were renamed, e.g. ``<File Name>.png``).

Cluster rule (one box per calcification cluster):

1. if the image has ``Cluster`` ROIs, each one is a box (bounding box of its outline) and the
   single calcification ROIs are not used;
2. otherwise the calcification ROIs are grouped by single linkage: two calcifications are linked
   when their centres (mean of their points) are at most ``cluster_distance_mm`` apart (default
   10 mm = 143 pixels at 0.07 mm), and a connected group of at least ``min_cluster_size``
   (default 3) calcifications is a cluster; its box bounds all points of its members; smaller
   groups give no box;
3. every box is widened by ``cluster_margin_mm`` (default 0.5 mm) on each side and clipped to
   the image: to ``ImageWidth``/``ImageHeight`` of the XML when present, else to the DICOM
   header's Rows/Columns (when pydicom is installed), else only at 0.

Class: INbreast grades each image, not each lesion, so every cluster of an image takes the
class of the image's BI-RADS: 4, 4a, 4b, 4c, 5, 6 -> malignant, 2, 3 -> benign (BI-RADS 6 is
biopsy-proven cancer; 3 is "probably benign"). This is an approximation: a BI-RADS 4 image
graded for a mass may also hold benign calcifications. An image with clusters but another
BI-RADS (1, or missing) is skipped with a warning. Images without an XML file, or without
clusters, give records without boxes.
"""

from __future__ import annotations

import logging
import plistlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.parsers.expat import ExpatError

import numpy as np

from calcsdk.boxes import clip_boxes
from calcsdk.training.datasets.record import (
    BENIGN,
    MALIGNANT,
    ImageRecord,
    SkipLog,
    normalize_density,
    normalize_laterality,
    normalize_view,
    read_csv_rows,
)

logger = logging.getLogger(__name__)

INBREAST_SPACING_MM = 0.07
BIRADS_TO_LABEL: Mapping[str, int] = {
    **dict.fromkeys(("2", "3"), BENIGN),
    **dict.fromkeys(("4", "4a", "4b", "4c", "5", "6"), MALIGNANT),
}
IMAGE_SUFFIXES = (".dcm", ".dicom", ".png", ".tif", ".tiff")

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DICOM_NAME = re.compile(r"^(\d+)_([0-9A-Za-z]+)_MG_([LR])_([A-Z]+)_ANON", re.IGNORECASE)


@dataclass(frozen=True)
class InbreastRoi:
    """One ROI of an INbreast XML: its ``name`` and (K, 2) float64 ``points_px`` (x, y)."""

    name: str
    points_px: np.ndarray

    @property
    def kind(self) -> str:
        """``"calcification"``, ``"cluster"`` or ``"other"``."""
        name = self.name.strip().lower()
        if name.startswith("calcification"):
            return "calcification"
        return "cluster" if name.startswith("cluster") else "other"


def parse_inbreast_xml(path: str | Path) -> tuple[list[InbreastRoi], tuple[int, int] | None]:
    """ROIs of an INbreast XML plist, and the image ``(height, width)`` when it is stated.

    Raises:
        ValueError: not a plist of the expected structure, or a calcification or cluster ROI
            without readable points (the message names the file). Other ROIs without readable
            points are left out.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            plist = plistlib.load(handle, fmt=plistlib.FMT_XML)
        return _rois_of_plist(plist)
    except (
        ExpatError,
        plistlib.InvalidFileException,
        LookupError,
        TypeError,
        AttributeError,
    ) as error:
        raise ValueError(f"{path}: not an INbreast ROI plist ({error!r})") from error
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _rois_of_plist(plist: Any) -> tuple[list[InbreastRoi], tuple[int, int] | None]:
    rois, size = [], None
    for image in plist["Images"]:
        if "ImageHeight" in image and "ImageWidth" in image:
            size = (int(image["ImageHeight"]), int(image["ImageWidth"]))
        for index, roi in enumerate(image.get("ROIs", [])):
            name = str(roi.get("Name", ""))
            points = [_NUMBER.findall(str(text))[:2] for text in roi.get("Point_px", [])]
            if points and all(len(p) == 2 for p in points):
                rois.append(InbreastRoi(name, np.array(points, dtype=np.float64)))
            elif InbreastRoi(name, np.zeros((0, 2))).kind != "other":
                raise ValueError(f"ROI {index} ({name!r}) has no readable Point_px")
            else:
                logger.debug("ROI %d (%r) without readable points ignored", index, name)
    return rois, size


def single_linkage_groups(centres: np.ndarray, max_distance: float) -> list[np.ndarray]:
    """Connected components of the graph linking points at most ``max_distance`` apart.

    Args:
        centres: (N, 2) float points (any unit); max_distance: same unit, >= 0.
    Returns:
        Sorted int64 member indices of each group, groups ordered by their smallest index.
    """
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    parent = np.arange(len(centres))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(centres[:, 0], kind="stable")
    xs = centres[order, 0]
    for position, i in enumerate(order):  # sweep along x: only neighbours within max_distance
        end = np.searchsorted(xs, xs[position] + max_distance, side="right")
        others = order[position + 1 : end]
        close = others[np.hypot(*(centres[others] - centres[i]).T) <= max_distance]
        for j in close:
            parent[find(j)] = find(i)
    roots = np.array([find(i) for i in range(len(centres))], dtype=np.int64)
    return [np.flatnonzero(roots == r) for r in dict.fromkeys(roots.tolist())]


def cluster_boxes(
    rois: list[InbreastRoi],
    *,
    spacing_mm: float = INBREAST_SPACING_MM,
    cluster_distance_mm: float = 10.0,
    min_cluster_size: int = 3,
    cluster_margin_mm: float = 0.5,
    image_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """(K, 4) float32 xyxy cluster boxes in image pixels from an image's ROIs (module doc rule).

    Boxes that are empty after clipping to ``image_size`` (height, width) are dropped.
    """
    _check_rule(spacing_mm, cluster_distance_mm, cluster_margin_mm)
    clusters = [roi.points_px for roi in rois if roi.kind == "cluster"]
    if not clusters:
        calcifications = [roi.points_px for roi in rois if roi.kind == "calcification"]
        centres = np.array([points.mean(axis=0) for points in calcifications]).reshape(-1, 2)
        groups = single_linkage_groups(centres, cluster_distance_mm / spacing_mm)
        clusters = [
            np.concatenate([calcifications[i] for i in group])
            for group in groups
            if len(group) >= min_cluster_size
        ]
    if not clusters:
        return np.zeros((0, 4), dtype=np.float32)
    margin = cluster_margin_mm / spacing_mm
    boxes = np.array([[*p.min(axis=0) - margin, *p.max(axis=0) + margin] for p in clusters])
    boxes[:, :2] = np.maximum(boxes[:, :2], 0.0)
    if image_size is not None:
        boxes = clip_boxes(boxes, *image_size)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep].astype(np.float32)


def _check_rule(spacing_mm: float, cluster_distance_mm: float, cluster_margin_mm: float) -> None:
    if not (spacing_mm > 0 and cluster_distance_mm >= 0 and cluster_margin_mm >= 0):
        raise ValueError(
            "spacing_mm should be > 0, cluster_distance_mm and cluster_margin_mm >= 0; got "
            f"{spacing_mm}, {cluster_distance_mm}, {cluster_margin_mm}"
        )


def load_inbreast(
    root: str | Path,
    *,
    csv_file: str = "INbreast.csv",
    xml_dir: str = "AllXML",
    image_dir: str = "AllDICOMs",
    spacing_mm: float = INBREAST_SPACING_MM,
    cluster_distance_mm: float = 10.0,
    min_cluster_size: int = 3,
    cluster_margin_mm: float = 0.5,
    birads_to_label: Mapping[str, int] = BIRADS_TO_LABEL,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read INbreast (CSV + XML ROIs) into one record per CSV row, in CSV order.

    Args:
        root: dataset folder. csv_file, xml_dir, image_dir: names under ``root``.
        spacing_mm: pixel spacing (0.07 mm, the same for all INbreast images).
        cluster_distance_mm, min_cluster_size, cluster_margin_mm: the cluster rule (module doc).
        birads_to_label: lower-case BI-RADS text -> label.
        check_images: skip (with a warning) rows whose image is not in ``image_dir``; with
            ``False`` such a record points at ``image_dir/<File Name>.dcm``.

    Returns:
        Records with boxes (M, 4) float32 xyxy in image pixels, labels 0/1, ``spacing_mm``
        ``(0.07, 0.07)``, metadata ``birads``, ``file_name``, view, laterality, density (ACR).

    Raises:
        FileNotFoundError: no CSV. ValueError: the CSV lacks ``File Name`` or ``Bi-Rads``.
    """
    _check_rule(spacing_mm, cluster_distance_mm, cluster_margin_mm)
    root = Path(root)
    images = _index_images(root / image_dir)
    skipped = SkipLog("image")
    records = []
    for line, row in read_csv_rows(root / csv_file, ("file name", "bi-rads")):
        where = f"{root / csv_file}:{line}"
        file_name = re.sub(r"\.0$", "", row["file name"])
        if not file_name:
            logger.warning("%s: skipped: empty File Name", where)
            continue
        image_path = images.get(file_name)
        if image_path is None and check_images:
            skipped.add(where, f"no image {file_name}* in {root / image_dir}")
            continue
        try:
            boxes, image_size = _image_boxes(
                root / xml_dir / f"{file_name}.xml",
                image_path,
                spacing_mm=spacing_mm,
                cluster_distance_mm=cluster_distance_mm,
                min_cluster_size=min_cluster_size,
                cluster_margin_mm=cluster_margin_mm,
            )
        except ValueError as error:
            skipped.add(where, str(error))
            continue
        birads = row["bi-rads"].strip().lower()
        label = birads_to_label.get(birads)
        if len(boxes) and label is None:
            skipped.add(where, f"{len(boxes)} clusters but BI-RADS {birads!r} gives no class")
            continue
        image_path = image_path or root / image_dir / f"{file_name}.dcm"
        records.append(
            _record(row, file_name, image_path, boxes, label, birads, image_size, spacing_mm)
        )
    skipped.summarize()
    return records


def _index_images(image_dir: Path) -> dict[str, Path]:
    """File Name (leading digits of the file name) -> image path."""
    index: dict[str, Path] = {}
    if image_dir.is_dir():
        for path in sorted(image_dir.iterdir()):
            match = re.match(r"\d+", path.name)
            if match and path.suffix.lower() in IMAGE_SUFFIXES:
                index.setdefault(match.group(), path)
    return index


def _dicom_size(image_path: Path | None) -> tuple[int, int] | None:
    """(Rows, Columns) from a DICOM header (pixels not read), or None when unavailable."""
    if image_path is None or image_path.suffix.lower() not in (".dcm", ".dicom"):
        return None
    try:
        import pydicom  # optional: only to read image sizes for clipping

        header = pydicom.dcmread(image_path, stop_before_pixels=True)
        return int(header.Rows), int(header.Columns)
    except Exception as error:  # no pydicom, or not a readable DICOM: no clipping
        logger.debug("%s: no image size from the DICOM header: %s", image_path, error)
        return None


def _image_boxes(
    xml_path: Path, image_path: Path | None, **rule: Any
) -> tuple[np.ndarray, tuple[int, int] | None]:
    if not xml_path.is_file():
        return np.zeros((0, 4), dtype=np.float32), None
    rois, image_size = parse_inbreast_xml(xml_path)
    image_size = image_size or _dicom_size(image_path)
    return cluster_boxes(rois, image_size=image_size, **rule), image_size


def _record(
    row: dict[str, str],
    file_name: str,
    image_path: Path,
    boxes: np.ndarray,
    label: int | None,
    birads: str,
    image_size: tuple[int, int] | None,
    spacing_mm: float,
) -> ImageRecord:
    dicom_name = _DICOM_NAME.match(image_path.name)
    patient_id = dicom_name.group(2) if dicom_name else None
    if patient_id is None and row.get("patient id", "").lower() not in ("", "removed"):
        patient_id = row["patient id"]
    metadata: dict[str, Any] = {
        "source": "inbreast",
        "file_name": file_name,
        "birads": birads or None,
        "view": normalize_view(row.get("view") or (dicom_name and dicom_name.group(4))),
        "laterality": normalize_laterality(
            row.get("laterality") or (dicom_name and dicom_name.group(3))
        ),
        "density": normalize_density(row.get("acr", row.get("acr density"))),
    }
    if image_size is not None:
        metadata.update(height=image_size[0], width=image_size[1])
    return ImageRecord(
        image_path=str(image_path),
        boxes=boxes,
        labels=np.full(len(boxes), label if label is not None else 0, dtype=np.int64),
        spacing_mm=(spacing_mm, spacing_mm),
        patient_id=patient_id,
        metadata=metadata,
    )
