"""Ground truth for ``calcsdk eval``: the dataset loaders, and pairing their images with results.

The loaders live in ``calcsdk.training.datasets`` (numpy/OpenCV only, no torch) and are imported
here lazily. Pairing by file: results and truth rarely spell paths alike (relative vs absolute,
another mount point), so an image is paired on the shortest tail of path components that is
unique on BOTH sides (``a/IM-1.dcm`` vs ``/data/a/IM-1.dcm`` pair on ``a/IM-1.dcm`` when
``IM-1.dcm`` alone is ambiguous). A COCO results list pairs on the COCO image id.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calcsdk.batch.results import ResultSet, empty_like
from calcsdk.detections import Detections, GroundTruth
from calcsdk.errors import CalcSdkError

__all__ = ["TRUTH_FORMATS", "PairedImages", "load_truth", "pair_with_truth"]

logger = logging.getLogger(__name__)

TRUTH_FORMATS: tuple[str, ...] = ("coco", "mias", "cbis", "inbreast", "vindr")


def load_truth(
    path: str | os.PathLike, fmt: str = "coco", image_root: str | None = None
) -> list[Any]:
    """Ground-truth records (``ImageRecord``) of a dataset.

    Args:
        path: the COCO JSON; for the other datasets their folder, or their main file inside it
            (MIAS ``Info.txt``, INbreast ``INbreast.csv``, VinDr ``finding_annotations.csv``,
            a CBIS-DDSM description CSV).
        fmt: one of :data:`TRUTH_FORMATS`.
        image_root: COCO only: the folder ``file_name`` is relative to (default: the JSON's).
    Images need not exist on disk (only their paths are compared), except for CBIS-DDSM, whose
    boxes come from the ROI mask files.
    """
    if fmt not in TRUTH_FORMATS:
        raise CalcSdkError(f"--truth-format should be one of {TRUTH_FORMATS}, got {fmt!r}")
    from calcsdk.training import datasets

    path = Path(path)
    if not path.exists():
        raise CalcSdkError("ground truth not found", path)
    root, name = (path, None) if path.is_dir() else (path.parent, path.name)
    try:
        if fmt == "coco":
            return datasets.load_coco(path, image_root, check_images=False)
        if fmt == "mias":
            return datasets.load_mias(
                root, check_images=False, **({"info_file": name} if name else {})
            )
        if fmt == "inbreast":
            return datasets.load_inbreast(
                root, check_images=False, **({"csv_file": name} if name else {})
            )
        if fmt == "vindr":
            return datasets.load_vindr(
                root, check_images=False, **({"csv_file": name} if name else {})
            )
        return datasets.load_cbis_ddsm(root, **({"csv_files": [path]} if name else {}))
    except (OSError, ValueError) as exc:
        raise CalcSdkError(f"cannot read the {fmt} ground truth ({exc})", path) from None


def _parts(path: str) -> tuple[str, ...]:
    return tuple(
        p for p in os.path.normpath(str(path)).replace("\\", "/").split("/") if p not in ("", ".")
    )


def _tail_index(paths: Sequence[str]) -> dict[tuple[str, ...], list[str]]:
    index: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in paths:
        parts = _parts(path)
        for k in range(1, len(parts) + 1):
            index[parts[-k:]].append(path)
    return index


def _pair_files(truth_paths: Sequence[str], result_files: Sequence[str]) -> dict[str, str]:
    """truth path -> result file, on the shortest tail unique on both sides."""
    results_by_tail, truths_by_tail = _tail_index(result_files), _tail_index(truth_paths)
    pairs = {}
    for truth in truth_paths:
        parts, rivals = _parts(truth), []
        for k in range(1, len(parts) + 1):
            tail = parts[-k:]
            candidates = results_by_tail.get(tail, [])
            if not candidates:
                break  # no result shares even this tail
            if len(candidates) == 1 and len(truths_by_tail[tail]) == 1:
                pairs[truth] = candidates[0]
                break
            # several results share a tail that only this truth image has: ambiguous so far
            rivals = candidates if len(truths_by_tail[tail]) == 1 else []
        if truth not in pairs and len(rivals) > 1:
            raise CalcSdkError(f"cannot tell which result is {truth}: {sorted(rivals)}")
    return pairs


@dataclass(frozen=True)
class PairedImages:
    """Results and truth of the same images, in truth order.

    ``densities`` holds each image's ACR density (``"A"``..``"D"`` or ``None``);
    ``without_results`` lists truth images that no result names (counted as no detections);
    ``unpaired_results`` lists results of images not in the truth (ignored).
    """

    preds: list[Detections]
    truths: list[GroundTruth]
    densities: list[str | None]
    without_results: list[str]
    unpaired_results: list[str]


def pair_with_truth(records: Sequence[Any], results: ResultSet) -> PairedImages:
    """Pair each truth record with its results (see the module docstring).

    A truth image without results counts as an image without detections (the right reading of
    a CSV, which has no row for such images); it is listed in ``without_results``.
    """
    paths = [record.image_path for record in records]
    if results.by_image_id:
        ids = [record.metadata.get("coco_image_id") for record in records]
        found = {
            path: results.by_image_id[i] for path, i in zip(paths, ids) if i in results.by_image_id
        }
        unpaired = [str(i) for i in sorted(set(results.by_image_id) - set(ids), key=str)]
    else:
        pairs = _pair_files(paths, list(results.by_file))
        found = {truth: results.by_file[file] for truth, file in pairs.items()}
        unpaired = sorted(set(results.by_file) - set(pairs.values()))
    preds, truths, densities, missing = [], [], [], []
    for record, path in zip(records, paths):
        if path not in found:
            missing.append(path)
        detections = found.get(path, empty_like(results))
        if detections.class_names != tuple(record.class_names):
            raise CalcSdkError(
                f"results classes {detections.class_names} differ from the truth's {record.class_names}"
            )
        preds.append(detections)
        truths.append(GroundTruth(record.boxes, record.labels, tuple(record.class_names)))
        densities.append(record.metadata.get("density"))
    if missing:
        logger.warning("%d truth image(s) have no results: counted as no detections", len(missing))
    if unpaired:
        logger.warning("%d result image(s) are not in the truth: ignored", len(unpaired))
    return PairedImages(preds, truths, densities, missing, unpaired)
