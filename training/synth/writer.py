"""Writing a synthetic data set: images (PNG, DICOM), COCO annotations and classifier ROIs.

Output layout under ``out``::

    images/<stem>.png         16-bit (FFDM, values < 2**bits) or 8-bit (film) PNG, spacing in pHYs
    dicom/<stem>.dcm          the same pixels as DICOM (when pydicom is present and asked for)
    annotations.json          COCO: categories malignant = 1, benign = 2; image entries carry
                              spacing_mm, view, laterality, density, seed, patient_id, ...
    rois/index.csv            classifier ROIs (see calcsdk.training.roi_dataset)
    rois/{grayscale,binary,filtered}/<roi_id>.png

ROI crop scale: a cluster ROI is the cluster's ground-truth box (the calcifications plus a
margin of max(1 mm, 10%)), widened to at least ``MIN_ROI_MM`` per side; extra ROIs of the same
cluster are jittered copies (shift up to 10%, scale 0.9-1.25). Normal ROIs are boxes of 6-18 mm
inside the breast (off the pectoral muscle), clear of every cluster. Each box is warped with
16 px of context to 227 x 227 (R-CNN), so a typical 1 cm cluster box maps to ~0.05 mm per ROI
pixel, whatever the image spacing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from calcsdk.image import write_png
from calcsdk.training.roi_dataset import RoiRecord, write_rois
from calcsdk.training.synth.dicom import window_from_pixels, write_dicom
from calcsdk.training.synth.generator import SyntheticImage
from calcsdk.training.synth.plan import ImagePlan

CATEGORIES = ({"id": 1, "name": "malignant"}, {"id": 2, "name": "benign"})
CATEGORY_IDS = {c["name"]: c["id"] for c in CATEGORIES}
MIN_ROI_MM = 6.0  # smallest ROI side: a tiny cluster is not magnified beyond ~0.03 mm/pixel
NORMAL_ROI_MM = (6.0, 18.0)  # side range of normal-tissue ROIs (like cluster boxes)
_ROI_STREAM = 0x524F49  # "ROI": random stream of the ROI jitter and normal-tissue boxes
_NORMAL_TRIES = 400


@dataclass(frozen=True)
class ImageOutput:
    """What one image contributed: its COCO entry, its annotations (ids assigned later) and
    its ROI index rows."""

    coco_image: dict
    coco_annotations: list[dict]
    rois: list[RoiRecord]


def file_stem(plan: ImagePlan) -> str:
    """File name stem of an image, e.g. ``"000001_SYN00000_LCC"``."""
    return f"{plan.image_id:06d}_{plan.patient_id}_{plan.laterality}{plan.view}"


def write_image_outputs(
    out_dir: str | os.PathLike,
    image: SyntheticImage,
    plan: ImagePlan,
    *,
    dicom: bool,
    burned_in: bool,
) -> ImageOutput:
    """Write one image's PNG, optional DICOM and ROIs; return its annotation records."""
    out = Path(out_dir)
    stem = file_stem(plan)
    png = f"images/{stem}.png"
    (out / "images").mkdir(parents=True, exist_ok=True)
    write_png(out / png, image.pixels, image.spacing_mm, bits_stored=image.bits_stored)
    entry = {
        "id": plan.image_id,
        "file_name": png,
        "width": int(image.pixels.shape[1]),
        "height": int(image.pixels.shape[0]),
        "spacing_mm": image.spacing_mm,
        "bits_stored": image.bits_stored,
        **{k: v for k, v in image.metadata.items()},
    }
    if dicom:
        (out / "dicom").mkdir(parents=True, exist_ok=True)
        write_dicom(
            out / "dicom" / f"{stem}.dcm",
            image.pixels,
            spacing_mm=image.spacing_mm,
            bits_stored=image.bits_stored,
            view=str(image.metadata.get("view") or "CC"),
            laterality=str(image.metadata.get("laterality") or "L"),
            patient_id=plan.patient_id,
            seed=plan.seed,
            index=plan.index,
            window=window_from_pixels(image.pixels, image.breast_mask),
            film=bool(image.metadata.get("film")),
            burned_in=burned_in,
        )
        entry["dicom_file"] = f"dicom/{stem}.dcm"
    annotations = [coco_annotation(plan.image_id, c) for c in image.clusters]
    boxes, labels = roi_boxes(image, plan)
    rois = write_rois(
        out / "rois",
        image.pixels,
        (1 << image.bits_stored) - 1,
        boxes,
        labels,
        [f"{stem}_r{k:02d}" for k in range(len(labels))],
        image_id=plan.image_id,
        patient_id=plan.patient_id,
        density=str(image.metadata.get("density") or ""),
    )
    return ImageOutput(entry, annotations, rois)


def coco_annotation(image_id: int, cluster) -> dict:
    """COCO annotation of one cluster (no ``id`` yet); ``bbox`` is ``[x, y, w, h]`` pixels."""
    x1, y1, x2, y2 = (round(float(v), 3) for v in cluster.box_xyxy)
    calcs = cluster.calcifications
    return {
        "image_id": image_id,
        "category_id": CATEGORY_IDS[cluster.label],
        "bbox": [x1, y1, round(x2 - x1, 3), round(y2 - y1, 3)],
        "bbox_xyxy": [x1, y1, x2, y2],
        "area": round((x2 - x1) * (y2 - y1), 3),
        "iscrowd": 0,
        "morphology": cluster.morphology,
        "distribution": cluster.distribution,
        "hard": cluster.hard,
        "calcification_count": len(calcs),
        "calcification_diameters_mm": [round(c.diameter_mm, 4) for c in calcs],
        "calcification_widths_mm": [round(c.width_mm, 4) for c in calcs],
        "calcification_circularities": [round(c.circularity, 4) for c in calcs],
    }


def write_coco(
    path: str | os.PathLike, images: list[dict], annotations: list[dict], info: dict
) -> None:
    """Write the COCO file; annotation ids are assigned 1..N in the given order."""
    numbered = [{"id": i + 1, **a} for i, a in enumerate(annotations)]
    document = {
        "info": info,
        "images": images,
        "annotations": numbered,
        "categories": list(CATEGORIES),
    }
    Path(path).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def roi_boxes(image: SyntheticImage, plan: ImagePlan) -> tuple[np.ndarray, list[str]]:
    """Crop boxes (``(N, 4)`` float32 pixels) and labels of the plan's ROIs for this image.

    Raises:
        ValueError: no room for a normal-tissue ROI in the breast.
    """
    rng = np.random.default_rng(np.random.SeedSequence([plan.seed, plan.index, _ROI_STREAM]))
    height, width = image.pixels.shape
    min_side = MIN_ROI_MM / image.spacing_mm
    boxes, labels = [], []
    for cluster, count in zip(image.clusters, plan.cluster_rois):
        base = _widen(np.array(cluster.box_xyxy, dtype=np.float64), min_side)
        for k in range(count):
            boxes.append(base if k == 0 else _jitter(rng, base))
            labels.append(cluster.label)
    if plan.normal_rois:
        taken = [np.array(c.box_xyxy) for c in image.clusters]
        tissue = image.breast_mask & ~image.pectoral_mask
        integral = cv2.integral(tissue.astype(np.uint8))
        for _ in range(plan.normal_rois):
            boxes.append(_normal_box(rng, tissue, integral, taken, image.spacing_mm))
            labels.append("normal")
    array = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    array[:, [0, 2]] = np.clip(array[:, [0, 2]], 0, width)
    array[:, [1, 3]] = np.clip(array[:, [1, 3]], 0, height)
    return array, labels


def _widen(box: np.ndarray, min_side: float) -> np.ndarray:
    centre, half = (box[:2] + box[2:]) / 2, np.maximum((box[2:] - box[:2]) / 2, min_side / 2)
    return np.concatenate([centre - half, centre + half])


def _jitter(rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    size = box[2:] - box[:2]
    centre = (box[:2] + box[2:]) / 2 + rng.uniform(-0.1, 0.1, 2) * size
    half = size * rng.uniform(0.9, 1.25, 2) / 2
    return np.concatenate([centre - half, centre + half])


def _normal_box(
    rng, tissue: np.ndarray, integral: np.ndarray, taken: list[np.ndarray], spacing: float
) -> np.ndarray:
    rows, cols = np.nonzero(tissue[::16, ::16])
    if len(rows) == 0:
        raise ValueError("no breast tissue to crop a normal ROI from")
    clearance = 2.0 / spacing
    for attempt in range(_NORMAL_TRIES):
        shrink = 1.0 if attempt < _NORMAL_TRIES // 2 else 0.5
        w, h = rng.uniform(*NORMAL_ROI_MM, 2) * shrink / spacing
        pick = int(rng.integers(len(rows)))
        cx, cy = cols[pick] * 16 + rng.uniform(0, 16), rows[pick] * 16 + rng.uniform(0, 16)
        x1, y1, x2, y2 = (
            int(cx - w / 2),
            int(cy - h / 2),
            int(np.ceil(cx + w / 2)),
            int(np.ceil(cy + h / 2)),
        )
        if x1 < 0 or y1 < 0 or x2 > tissue.shape[1] or y2 > tissue.shape[0]:
            continue
        covered = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
        if covered < (x2 - x1) * (y2 - y1):
            continue
        if any(
            x1 < t[2] + clearance
            and t[0] - clearance < x2
            and y1 < t[3] + clearance
            and t[1] - clearance < y2
            for t in taken
        ):
            continue
        return np.array([x1, y1, x2, y2], dtype=np.float64)
    raise ValueError("could not place a normal-tissue ROI inside the breast, clear of the clusters")
