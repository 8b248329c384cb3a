"""A disk cache of R-CNN training samples, for paper-scale runs.

On the default synthetic set (3,265 mammograms) the samples are ~90k warped crops: ~9 GB as
float16, and ~75 min of proposals and warps on 2 CPU cores. The cache keeps each image's
samples on disk, so that:

* an interrupted collection resumes at the first image not yet written;
* RCNN-1, RCNN-2 and every fold reuse one collection;
* crops are memory-mapped, so only the stacked training array is held in memory, not a second
  per-image copy.

Layout of ``cache_dir``:

* ``config.json``: the :class:`.samples.SampleConfig` the cache was made with. A cache made with
  another config is refused, never silently reused.
* ``NNNNN.crops.npy``: float16 ``(N, 1, S, S)`` crops of image ``NNNNN`` (the sample index,
  as :func:`.samples.image_samples` numbers it).
* ``NNNNN.npz``: ``boxes`` (N, 4) float32 working frame, ``labels`` (N,) int64, ``is_gt`` (N,)
  bool, ``weights`` (N,) float32 and ``image_path`` (the record it was made from). Written
  last, so its presence marks the image complete.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from calcsdk.training.datasets.record import ImageRecord
from calcsdk.training.rcnn.samples import ImageSamples, SampleConfig, image_samples
from calcsdk.training.worker_pool import parallel_map

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"


def _make(cache: Path, index: int, record: ImageRecord, config: SampleConfig) -> None:
    _write(cache, image_samples(index, record, config), record)


def cached_samples(
    records: Sequence[ImageRecord],
    config: SampleConfig,
    cache_dir: str | Path,
    offset: int = 0,
    workers: int = 1,
) -> list[ImageSamples]:
    """:func:`.samples.image_samples` of every record, read from ``cache_dir`` where present and
    computed and written there otherwise. Record ``i`` is sample index ``offset + i``.
    ``workers`` > 1 computes the missing images in that many processes first (each image's
    samples depend only on its index, so the cache is the same whatever the count).

    Returns:
        one :class:`ImageSamples` per record, in order; ``crops`` are read-only memory maps.
    Raises:
        ValueError: the cache was made with another config or from other images, or one of its
            files is unreadable or inconsistent (the message names the file).
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    _check_config(cache, config)
    missing = [
        (cache, offset + i, record, config)
        for i, record in enumerate(records)
        if not (cache / f"{offset + i:05d}.npz").exists()
    ]
    if workers > 1 and len(missing) > 1:
        for done, _ in enumerate(parallel_map(_make, missing, workers), start=1):
            if done % 100 == 0:
                log.info(
                    "samples: %d/%d new images made (%d processes)", done, len(missing), workers
                )
    out = []
    made = 0
    for i, record in enumerate(records):
        index = offset + i
        meta = cache / f"{index:05d}.npz"
        if meta.exists():
            out.append(_read(cache, index, record))
        else:
            samples = image_samples(index, record, config)
            _write(cache, samples, record)
            out.append(_read(cache, index, record))
            made += 1
        if (i + 1) % 100 == 0:
            log.info("samples: %d/%d images (%d new)", i + 1, len(records), made)
    return out


def _config_dict(config: SampleConfig) -> dict:
    return json.loads(json.dumps(asdict(config)))


def _check_config(cache: Path, config: SampleConfig) -> None:
    path = cache / CONFIG_FILE
    wanted = _config_dict(config)
    if not path.exists():
        path.write_text(json.dumps(wanted, indent=1))
        return
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable sample-cache config ({error})") from error
    if found != wanted:
        differ = sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))
        raise ValueError(
            f"{path}: this sample cache was made with another SampleConfig (differs in {differ});"
            " use a new cache folder"
        )


def _write(cache: Path, samples: ImageSamples, record: ImageRecord) -> None:
    """Crops first, metadata last (each via a temporary file and an atomic rename)."""
    stem = f"{samples.image_index:05d}"
    crops_tmp = cache / f"{stem}.crops.tmp.npy"
    np.save(crops_tmp, np.ascontiguousarray(samples.crops, np.float16))
    os.replace(crops_tmp, cache / f"{stem}.crops.npy")
    meta_tmp = cache / f"{stem}.tmp.npz"
    np.savez(
        meta_tmp,
        boxes=samples.boxes.astype(np.float32),
        labels=samples.labels.astype(np.int64),
        is_gt=samples.is_gt.astype(bool),
        weights=(
            samples.weights if samples.weights is not None else np.ones(len(samples.labels))
        ).astype(np.float32),
        image_path=np.array(str(record.image_path)),
    )
    os.replace(meta_tmp, cache / f"{stem}.npz")


def _read(cache: Path, index: int, record: ImageRecord) -> ImageSamples:
    meta_path = cache / f"{index:05d}.npz"
    crops_path = cache / f"{index:05d}.crops.npy"
    try:
        with np.load(meta_path, allow_pickle=False) as meta:
            arrays = {k: meta[k] for k in ("boxes", "labels", "is_gt", "weights", "image_path")}
        crops = np.load(crops_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{meta_path}: unreadable sample-cache entry ({error})") from error
    if str(arrays["image_path"]) != str(record.image_path):
        raise ValueError(
            f"{meta_path}: made from {arrays['image_path']}, not {record.image_path};"
            " the cache belongs to other data or another split"
        )
    n = len(arrays["labels"])
    shapes_ok = (
        arrays["boxes"].shape == (n, 4)
        and arrays["is_gt"].shape == (n,)
        and arrays["weights"].shape == (n,)
        and crops.dtype == np.float16
        and crops.ndim == 4
        and len(crops) == n
    )
    if not shapes_ok:
        raise ValueError(
            f"{meta_path}: inconsistent sample-cache entry ({n} labels, crops {crops.shape}"
            f" {crops.dtype} in {crops_path.name})"
        )
    return ImageSamples(
        index,
        arrays["boxes"],
        arrays["labels"],
        arrays["is_gt"],
        crops,
        arrays["weights"],
    )
