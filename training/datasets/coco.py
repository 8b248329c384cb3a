"""Generic COCO-JSON loader (e.g. the synthetic generator's output, or any converted dataset).

Format (object detection subset of COCO)::

    {"images":      [{"id": 1, "file_name": "a.png", "width": 2048, "height": 2560,
                      "spacing_mm": 0.1, "view": "CC", "laterality": "L", "density": "B",
                      "patient_id": "p7", ...}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [x, y, w, h]}, ...],
     "categories":  [{"id": 1, "name": "malignant"}, {"id": 2, "name": "benign"}]}

``bbox`` is ``(x, y, w, h)`` in image pixels with the top-left corner at ``(x, y)``; it becomes
xyxy ``(x, y, x + w, y + h)``, clipped to ``width x height`` when both are given. Categories are
mapped by NAME, ignoring case: ``malignant`` -> 0, ``benign`` -> 1, or through
``category_map`` (name -> label 0/1, class name, or ``None`` to ignore the category silently);
annotations of other categories are ignored with one warning per category.

Image-level fields carried into the record when present: ``spacing_mm`` (a number or
``[row, col]``, mm/pixel), ``patient_id``, ``view``, ``laterality``, ``density`` (normalised
like the other loaders); every other non-standard image field goes into ``metadata`` as is.

Skips: an image entry without ``id``/``file_name`` or an annotation without a known image is
skipped with a warning; an annotation of a mapped category with an unusable ``bbox`` drops its
whole image with a warning (keeping it would mark the lesion as background).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.boxes import clip_boxes
from calcsdk.training.datasets.record import (
    CLASS_NAMES,
    ImageRecord,
    SkipLog,
    normalize_density,
    normalize_laterality,
    normalize_view,
)

logger = logging.getLogger(__name__)

DEFAULT_CATEGORY_MAP: Mapping[str, int | str | None] = {"malignant": 0, "benign": 1}
_STANDARD_IMAGE_FIELDS = {"id", "file_name", "width", "height", "license", "flickr_url", "coco_url"}
_CARRIED_FIELDS = {"spacing_mm", "patient_id", "view", "laterality", "density", "source"}


def load_coco(
    annotation_path: str | Path,
    image_root: str | Path | None = None,
    *,
    category_map: Mapping[str, int | str | None] | None = None,
    check_images: bool = True,
) -> list[ImageRecord]:
    """Read a COCO detection JSON into one record per image entry, in file order.

    Args:
        annotation_path: the JSON file.
        image_root: folder that ``file_name`` is relative to; default: the JSON's folder.
        category_map: category name (any case) -> label 0/1, ``"malignant"``/``"benign"``, or
            ``None`` to ignore; default :data:`DEFAULT_CATEGORY_MAP`.
        check_images: skip (with a warning) images whose file does not exist.

    Returns:
        Records: boxes (M, 4) float32 xyxy in image pixels, labels 0 malignant / 1 benign;
        ``metadata["coco_image_id"]`` holds the image id.

    Raises:
        FileNotFoundError: no such file. ValueError: not JSON (file and line named), or not a
        COCO object with an ``images`` list; a ``category_map`` value that is no class.
    """
    annotation_path = Path(annotation_path)
    image_root = Path(image_root) if image_root is not None else annotation_path.parent
    coco = _read_json(annotation_path)
    labels_of_category = _category_labels(coco, category_map, annotation_path)

    entries: dict[Any, dict[str, Any]] = {}
    for position, image in enumerate(coco["images"]):
        if not isinstance(image, Mapping) or "id" not in image or not image.get("file_name"):
            logger.warning("%s: images[%d] skipped: no id or file_name", annotation_path, position)
            continue
        entries[image["id"]] = {"image": image, "boxes": [], "labels": [], "problem": None}

    warned_categories: set[Any] = set()
    for position, annotation in enumerate(coco.get("annotations") or []):
        where = f"{annotation_path}: annotations[{position}]"
        if not isinstance(annotation, Mapping) or annotation.get("image_id") not in entries:
            logger.warning("%s: skipped: no image with its image_id", where)
            continue
        category = annotation.get("category_id")
        if category not in labels_of_category:
            if category not in warned_categories:
                logger.warning("%s: category %r is not mapped to a class: ignored", where, category)
                warned_categories.add(category)
            continue
        label = labels_of_category[category]
        if label is None:
            continue
        entry = entries[annotation["image_id"]]
        box = _xyxy(annotation.get("bbox"), entry["image"])
        if box is None:
            entry["problem"] = (
                entry["problem"] or f"{where}: unusable bbox {annotation.get('bbox')!r}"
            )
            continue
        entry["boxes"].append(box)
        entry["labels"].append(label)

    skipped = SkipLog("image")
    records = []
    for entry in entries.values():
        image_path = image_root / str(entry["image"]["file_name"])
        if entry["problem"]:
            skipped.add(image_path, entry["problem"])
        elif check_images and not image_path.is_file():
            skipped.add(image_path, "file not found")
        else:
            records.append(_record(entry, image_path, annotation_path))
    skipped.summarize()
    return records


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: COCO annotation file not found")
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from error
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise ValueError(f"{path}:1: not a COCO object: no 'images' list")
    return coco


def _category_labels(
    coco: dict[str, Any], category_map: Mapping[str, int | str | None] | None, path: Path
) -> dict[Any, int | None]:
    """category id -> label (0/1) or None (ignore); unmapped categories are absent."""
    names = {str(k).strip().lower(): v for k, v in (category_map or DEFAULT_CATEGORY_MAP).items()}
    labels: dict[Any, int | None] = {}
    for category in coco.get("categories") or []:
        if not isinstance(category, Mapping) or "id" not in category:
            logger.warning("%s: a category without id skipped: %r", path, category)
            continue
        name = str(category.get("name", "")).strip().lower()
        if name in names:
            labels[category["id"]] = _as_label(names[name], name)
    return labels


def _as_label(value: int | str | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in CLASS_NAMES:
        return CLASS_NAMES.index(value.strip().lower())
    if isinstance(value, int | np.integer) and 0 <= int(value) < len(CLASS_NAMES):
        return int(value)
    raise ValueError(f"category_map[{name!r}] should be 0, 1, a class name or None, got {value!r}")


def _xyxy(bbox: Any, image: Mapping[str, Any]) -> np.ndarray | None:
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    box = np.array([[x, y, x + w, y + h]])
    if not np.isfinite(box).all() or w <= 0 or h <= 0:
        return None
    box[:, :2] = np.maximum(box[:, :2], 0.0)
    height, width = image.get("height"), image.get("width")
    if isinstance(height, int | float) and isinstance(width, int | float) and height > 0 < width:
        box = clip_boxes(box, height, width)
    if box[0, 2] <= box[0, 0] or box[0, 3] <= box[0, 1]:
        return None
    return box[0].astype(np.float32)


def _spacing(value: Any, where: str) -> tuple[float, float] | None:
    """``0.1`` or ``[0.1, 0.1]`` -> ``(row, col)`` mm/pixel; unusable -> None with a warning."""
    if value is None:
        return None
    try:
        values = [float(v) for v in np.ravel(value)]
    except (TypeError, ValueError):
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not all(np.isfinite(v) and v > 0 for v in values):
        logger.warning("%s: spacing_mm %r unusable: set to None", where, value)
        return None
    return (values[0], values[1])


def _record(entry: dict[str, Any], image_path: Path, annotation_path: Path) -> ImageRecord:
    image = entry["image"]
    extras = {k: v for k, v in image.items() if k not in _STANDARD_IMAGE_FIELDS | _CARRIED_FIELDS}
    metadata: dict[str, Any] = {
        **extras,
        "source": "coco",
        "coco_image_id": image["id"],
        "view": normalize_view(image.get("view")),
        "laterality": normalize_laterality(image.get("laterality")),
        "density": normalize_density(image.get("density")),
    }
    if "source" in image:  # the generator's own provenance, kept beside the dataset name
        metadata["image_source"] = image["source"]
    for key in ("height", "width"):
        if isinstance(image.get(key), int):
            metadata[key] = image[key]
    patient_id = image.get("patient_id")
    return ImageRecord(
        image_path=str(image_path),
        boxes=np.array(entry["boxes"], dtype=np.float32).reshape(-1, 4),
        labels=np.array(entry["labels"], dtype=np.int64),
        spacing_mm=_spacing(image.get("spacing_mm"), f"{annotation_path}: image {image['id']}"),
        patient_id=None if patient_id in (None, "") else str(patient_id),
        metadata=metadata,
    )
