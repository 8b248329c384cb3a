"""The one result type of calcsdk (:class:`Detections`) and its ground-truth twin.

Boxes follow the convention of :mod:`calcsdk.boxes`: ``(N, 4)`` float32 ``xyxy`` in
original-image pixels, x2/y2 exclusive, ``0 <= x1 < x2`` and ``0 <= y1 < y2``. Labels are int64
indices into ``class_names``; scores are calibrated confidences in [0, 1].

Both types are frozen dataclasses whose arrays are private read-only copies, validated in
``__post_init__``: a wrong dtype raises ``TypeError``, a wrong shape or value ``ValueError``,
each saying what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from calcsdk.boxes import as_box_array

__all__ = ["CSV_FIELDS", "DEFAULT_CLASS_NAMES", "Detections", "GroundTruth"]

DEFAULT_CLASS_NAMES: tuple[str, ...] = ("malignant", "benign")

#: Columns of :meth:`Detections.to_csv_rows`, in order; extra columns follow them.
#: Pixel coordinates are original-image pixels; ``*_mm`` are millimetres from the image's
#: top-left corner (empty when the pixel spacing is unknown).
CSV_FIELDS: tuple[str, ...] = (
    "file",
    "x1",
    "y1",
    "x2",
    "y2",
    "x1_mm",
    "y1_mm",
    "x2_mm",
    "y2_mm",
    "class",
    "score",
)


# --- validation shared by Detections and GroundTruth --------------------------------------
def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _class_names(class_names: Iterable[str], owner: str) -> tuple[str, ...]:
    if isinstance(class_names, str):
        raise TypeError(
            f"{owner}.class_names should be a sequence of str, got the str {class_names!r}"
        )
    names = tuple(class_names)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{owner}.class_names should be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}.class_names should be unique, got {names!r}")
    return names


def _boxes(boxes: Any, owner: str) -> np.ndarray:
    checked = as_box_array(boxes, f"{owner}.boxes").astype(np.float32)
    bad = (checked[:, 0] < 0) | (checked[:, 1] < 0)
    bad |= (checked[:, 2] <= checked[:, 0]) | (checked[:, 3] <= checked[:, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{owner}.boxes should be xyxy pixels with 0 <= x1 < x2 and 0 <= y1 < y2, "
            f"got row {row} = {checked[row].tolist()}"
        )
    return _read_only(checked)


def _labels(labels: Any, count: int, class_names: tuple[str, ...], owner: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.size == 0:
        array = array.reshape(0).astype(np.int64)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{owner}.labels should be integers, got dtype {array.dtype}")
    if array.shape != (count,):
        raise ValueError(f"{owner}.labels should have shape ({count},), got {array.shape}")
    if count and (array.min() < 0 or array.max() >= len(class_names)):
        raise ValueError(
            f"{owner}.labels should be in [0, {len(class_names) - 1}] (indices into "
            f"{class_names}), got values in [{array.min()}, {array.max()}]"
        )
    return _read_only(array.astype(np.int64))


def _scores(scores: Any, count: int, owner: str) -> np.ndarray:
    array = np.asarray(scores)
    if array.size == 0:
        array = array.reshape(0).astype(np.float32)
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{owner}.scores should be real numbers, got dtype {array.dtype}")
    if array.shape != (count,):
        raise ValueError(f"{owner}.scores should have shape ({count},), got {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all() or (count and (array.min() < 0 or array.max() > 1)):
        raise ValueError(
            f"{owner}.scores should be finite calibrated confidences in [0, 1], got values in "
            f"[{np.nanmin(array) if count else 0}, {np.nanmax(array) if count else 0}]"
        )
    return _read_only(array)


def _required(data: Mapping[str, Any], key: str, owner: str) -> Any:
    if key not in data:
        raise ValueError(f"{owner}.from_dict needs the key {key!r}, got keys {sorted(data)}")
    return data[key]


def _float32_value(value: float) -> float:
    """The shortest decimal that reads back as the same float32 (e.g. 10.3, not 10.30000019)."""
    return float(str(np.float32(value)))


# --- the result type ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Detections:
    """Detections on one image.

    Attributes:
        boxes: (N, 4) float32 xyxy, original-image pixels (see :mod:`calcsdk.boxes`).
        scores: (N,) float32 calibrated confidences in [0, 1].
        labels: (N,) int64 indices into ``class_names``.
        class_names: the model's classes, e.g. ``("malignant", "benign")``.

    Indexing with a boolean mask, an integer index array, a slice or an int returns a new
    ``Detections`` (``dets[dets.scores >= 0.5]``). Equality is identity; use :meth:`allclose`.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES

    def __post_init__(self) -> None:
        names = _class_names(self.class_names, "Detections")
        boxes = _boxes(self.boxes, "Detections")
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", _scores(self.scores, len(boxes), "Detections"))
        object.__setattr__(self, "labels", _labels(self.labels, len(boxes), names, "Detections"))

    @classmethod
    def empty(cls, class_names: Sequence[str] = DEFAULT_CLASS_NAMES) -> Detections:
        """No detections: boxes (0, 4), scores (0,), labels (0,)."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            tuple(class_names),
        )

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(
        self, index: int | slice | np.ndarray | Sequence[int] | Sequence[bool]
    ) -> Detections:
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            index = [int(index)]
        elif not isinstance(index, slice):
            index = np.asarray(index)
            if index.size == 0:
                index = index.astype(np.int64)
            elif index.dtype != np.bool_ and not np.issubdtype(index.dtype, np.integer):
                raise TypeError(
                    f"Detections index should be a bool mask, int indices or a slice, got dtype {index.dtype}"
                )
            if index.dtype == np.bool_ and index.shape != (len(self),):
                raise IndexError(
                    f"boolean mask should have shape ({len(self)},), got {index.shape}"
                )
        return Detections(
            self.boxes[index], self.scores[index], self.labels[index], self.class_names
        )

    @property
    def label_names(self) -> tuple[str, ...]:
        """The class name of each detection, e.g. ``("malignant", "benign", ...)``."""
        return tuple(self.class_names[label] for label in self.labels)

    def sorted_by_score(self) -> Detections:
        """The same detections by decreasing score (stable: equal scores keep their order)."""
        return self[np.argsort(-self.scores, kind="stable")]

    def allclose(self, other: Detections, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
        """True when ``other`` has the same classes and labels and close boxes and scores."""
        return (
            isinstance(other, Detections)
            and self.class_names == other.class_names
            and len(self) == len(other)
            and bool(np.array_equal(self.labels, other.labels))
            and bool(np.allclose(self.boxes, other.boxes, rtol=rtol, atol=atol))
            and bool(np.allclose(self.scores, other.scores, rtol=rtol, atol=atol))
        )

    @classmethod
    def concat(
        cls, items: Sequence[Detections], class_names: Sequence[str] | None = None
    ) -> Detections:
        """Detections of ``items`` one after the other (all must share ``class_names``).

        An empty ``items`` gives ``Detections.empty(class_names or DEFAULT_CLASS_NAMES)``.
        """
        items = list(items)
        bad = [type(item).__name__ for item in items if not isinstance(item, Detections)]
        if bad:
            raise TypeError(f"Detections.concat needs Detections, got {bad}")
        names = tuple(class_names) if class_names is not None else None
        if names is None:
            names = items[0].class_names if items else DEFAULT_CLASS_NAMES
        mismatched = {item.class_names for item in items} - {names}
        if mismatched:
            raise ValueError(
                f"Detections.concat needs class_names {names}, got {sorted(mismatched)}"
            )
        if not items:
            return cls.empty(names)
        return cls(
            np.concatenate([item.boxes for item in items]),
            np.concatenate([item.scores for item in items]),
            np.concatenate([item.labels for item in items]),
            names,
        )

    # --- adapters ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, list]:
        """JSON-safe ``{"boxes": [[x1, y1, x2, y2], ...], "scores", "labels", "class_names"}``."""
        return {
            "boxes": self.boxes.tolist(),
            "scores": self.scores.tolist(),
            "labels": self.labels.tolist(),
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Detections:
        """Inverse of :meth:`to_dict` (float32 values survive the round trip exactly)."""
        return cls(
            np.asarray(_required(data, "boxes", "Detections")),
            np.asarray(_required(data, "scores", "Detections")),
            np.asarray(_required(data, "labels", "Detections")),
            tuple(_required(data, "class_names", "Detections")),
        )

    def to_coco_results(
        self, image_id: int, category_ids: Mapping[str, int] | None = None
    ) -> list[dict[str, Any]]:
        """COCO "results" entries: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``.

        ``bbox`` is in original-image pixels (w = x2 - x1, computed in float64 so that
        x + w gives back x2). ``category_ids`` maps class name -> COCO category id; by default
        class ``i`` gets id ``i + 1`` (COCO ids start at 1).
        """
        if isinstance(image_id, bool) or not isinstance(image_id, (int, np.integer)):
            raise TypeError(f"image_id should be an int, got {type(image_id).__name__}")
        if category_ids is None:
            category_ids = {name: index + 1 for index, name in enumerate(self.class_names)}
        missing = sorted(set(self.label_names) - set(category_ids))
        if missing:
            raise ValueError(
                f"category_ids has no id for the classes {missing}, got {dict(category_ids)}"
            )
        corners = self.boxes.astype(np.float64)
        sizes = corners[:, 2:] - corners[:, :2]
        return [
            {
                "image_id": int(image_id),
                "category_id": int(category_ids[self.class_names[label]]),
                "bbox": [*corners[row, :2].tolist(), *sizes[row].tolist()],
                "score": float(self.scores[row]),
            }
            for row, label in enumerate(self.labels.tolist())
        ]

    def to_csv_rows(
        self, file: str, spacing_mm: tuple[float, float] | None = None, **extra: Any
    ) -> list[dict[str, Any]]:
        """One dict per detection with the columns :data:`CSV_FIELDS` then ``extra``.

        Args:
            file: the image's path or name (the ``file`` column).
            spacing_mm: ``(row_spacing, col_spacing)`` in mm/pixel (DICOM PixelSpacing order):
                ``x*_mm = x * col_spacing``, ``y*_mm = y * row_spacing``, rounded to 1e-4 mm.
                ``None`` (unknown) leaves the ``*_mm`` columns as ``None``.
            extra: constant columns appended to every row (``model_version=...``,
                ``sop_instance_uid=...``); they may not reuse a name of :data:`CSV_FIELDS`.
        Pixel values and scores are the shortest decimals that read back as the same float32.
        """
        clashes = sorted(set(extra) & set(CSV_FIELDS))
        if clashes:
            raise ValueError(f"extra columns may not reuse the names {clashes} of CSV_FIELDS")
        if spacing_mm is not None:
            row_mm, col_mm = (float(value) for value in spacing_mm)
            if not (np.isfinite([row_mm, col_mm]).all() and row_mm > 0 and col_mm > 0):
                raise ValueError(
                    f"spacing_mm should be two finite values > 0 (row, col), got {spacing_mm}"
                )
            mm_per_pixel = (col_mm, row_mm, col_mm, row_mm)  # x uses columns, y uses rows
        rows = []
        for box, score, name in zip(self.boxes.tolist(), self.scores.tolist(), self.label_names):
            row: dict[str, Any] = {"file": str(file)}
            row.update(zip(("x1", "y1", "x2", "y2"), (_float32_value(v) for v in box)))
            for key, index in zip(("x1_mm", "y1_mm", "x2_mm", "y2_mm"), range(4)):
                row[key] = (
                    None if spacing_mm is None else round(box[index] * mm_per_pixel[index], 4)
                )
            row.update({"class": name, "score": _float32_value(score)}, **extra)
            rows.append(row)
        return rows

    @classmethod
    def from_csv_rows(
        cls, rows: Iterable[Mapping[str, Any]], class_names: Sequence[str] = DEFAULT_CLASS_NAMES
    ) -> Detections:
        """Detections from rows with ``x1, y1, x2, y2, class, score`` (pixels; strings allowed,
        as read by ``csv.DictReader``). The rows are taken as one image's; other columns are ignored."""
        rows = list(rows)
        names = _class_names(class_names, "Detections")
        unknown = sorted({str(row.get("class")) for row in rows} - set(names))
        if unknown:
            raise ValueError(f"csv rows name classes {unknown} outside class_names {names}")
        try:
            boxes = [[float(row[key]) for key in ("x1", "y1", "x2", "y2")] for row in rows]
            scores = [float(row["score"]) for row in rows]
        except KeyError as missing:
            raise ValueError(
                f"csv rows need the columns x1, y1, x2, y2, class, score; missing {missing}"
            ) from None
        labels = [names.index(str(row["class"])) for row in rows]
        return cls(np.asarray(boxes), np.asarray(scores), np.asarray(labels, dtype=np.int64), names)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Annotated lesions of one image, for the metrics in :mod:`calcsdk.metrics`.

    Attributes:
        boxes: (M, 4) float32 xyxy, original-image pixels (see :mod:`calcsdk.boxes`).
        labels: (M,) int64 indices into ``class_names``.
        class_names: must equal the evaluated detections' ``class_names``.
    """

    boxes: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES

    def __post_init__(self) -> None:
        names = _class_names(self.class_names, "GroundTruth")
        boxes = _boxes(self.boxes, "GroundTruth")
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", _labels(self.labels, len(boxes), names, "GroundTruth"))

    @classmethod
    def empty(cls, class_names: Sequence[str] = DEFAULT_CLASS_NAMES) -> GroundTruth:
        """An image without annotated lesions."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), tuple(class_names))

    def __len__(self) -> int:
        return len(self.boxes)

    def to_dict(self) -> dict[str, list]:
        """JSON-safe ``{"boxes", "labels", "class_names"}``."""
        return {
            "boxes": self.boxes.tolist(),
            "labels": self.labels.tolist(),
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroundTruth:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(_required(data, "boxes", "GroundTruth")),
            np.asarray(_required(data, "labels", "GroundTruth")),
            tuple(_required(data, "class_names", "GroundTruth")),
        )
