"""Generate a whole synthetic data set, optionally in parallel, byte-for-byte reproducibly.

Every image is drawn and written by one task that depends only on ``(seed, index)`` (see
:mod:`calcsdk.training.synth.plan`); tasks run in a process pool when ``workers > 1``, and the
main process writes ``annotations.json`` and ``rois/index.csv`` in image order, so the output
bytes do not depend on ``workers``.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from calcsdk.training.roi_dataset import write_roi_index
from calcsdk.training.synth.background import insert_clusters
from calcsdk.training.synth.config import SynthConfig
from calcsdk.training.synth.generator import generate_image
from calcsdk.training.synth.plan import DatasetCounts, ImagePlan, plan_dataset
from calcsdk.training.synth.writer import ImageOutput, write_coco, write_image_outputs
from calcsdk.training.worker_pool import spawn_pool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Task:
    out_dir: str
    config: SynthConfig
    plan: ImagePlan
    dicom: bool
    background: str | None


@dataclass(frozen=True)
class DatasetSummary:
    """What was written.

    Attributes:
        out_dir: the output folder.
        images: images written.
        boxes: clusters per class name.
        rois: ROIs per label.
        seconds: wall time.
    """

    out_dir: Path
    images: int
    boxes: dict[str, int]
    rois: dict[str, int]
    seconds: float


def synthesize_dataset(
    out_dir: str | os.PathLike,
    config: SynthConfig,
    counts: DatasetCounts,
    seed: int,
    *,
    workers: int = 1,
    dicom: bool = True,
    backgrounds: list[Path] | None = None,
) -> DatasetSummary:
    """Plan, draw and write a data set under ``out_dir``.

    Args:
        out_dir: output folder (created).
        config: how images are made.
        counts: how many images, clusters and ROIs.
        seed: data-set seed (non-negative int).
        workers: worker processes (1 = in this process).
        dicom: also write DICOM files (needs pydicom).
        backgrounds: user mammograms to insert clusters into (image ``i`` uses
            ``backgrounds[i % len(backgrounds)]``) instead of synthetic breasts.

    Raises:
        ValueError: bad arguments or clusters that do not fit; ImportError: ``dicom`` without
        pydicom.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers should be a positive int, got {workers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed should be a non-negative int, got {seed!r}")
    if dicom:
        import pydicom  # noqa: F401  (fail early, before hours of work)
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(counts, config, seed)
    tasks = [
        _Task(
            str(out),
            config,
            plan,
            dicom,
            str(backgrounds[i % len(backgrounds)]) if backgrounds else None,
        )
        for i, plan in enumerate(plans)
    ]
    outputs: list[ImageOutput] = []
    report_every = max(1, len(tasks) // 20)
    if workers == 1 or len(tasks) <= 1:
        results = map(_run_task, tasks)
        outputs = _collect(results, len(tasks), report_every)
    else:
        with spawn_pool(workers) as pool:
            outputs = _collect(pool.map(_run_task, tasks), len(tasks), report_every)

    annotations = [a for o in outputs for a in o.coco_annotations]
    info = {
        "description": "calcsdk synthetic mammograms",
        "seed": seed,
        "spacing_mm": config.spacing_mm,
        "bits": config.bits,
        "backgrounds": bool(backgrounds),
    }
    write_coco(out / "annotations.json", [o.coco_image for o in outputs], annotations, info)
    rois = [r for o in outputs for r in o.rois]
    write_roi_index(out / "rois", rois)
    id_to_name = {1: "malignant", 2: "benign"}
    return DatasetSummary(
        out_dir=out,
        images=len(outputs),
        boxes=dict(Counter(id_to_name[a["category_id"]] for a in annotations)),
        rois=dict(Counter(r.label for r in rois)),
        seconds=time.perf_counter() - start,
    )


def _collect(results, total: int, report_every: int) -> list[ImageOutput]:
    outputs = []
    for done, output in enumerate(results, start=1):
        outputs.append(output)
        if done % report_every == 0 or done == total:
            logger.info("synthetic images: %d/%d written", done, total)
    return outputs


def _run_task(task: _Task) -> ImageOutput:
    if task.background is None:
        image = generate_image(task.config, task.plan)
        burned_in = task.config.markers
    else:
        image = insert_clusters(task.background, task.plan, task.config)
        burned_in = False
        metadata = image.metadata
        task = replace(
            task,
            plan=replace(
                task.plan,
                view=metadata["view"] or task.plan.view,
                laterality=metadata["laterality"],
            ),
        )
    return write_image_outputs(
        task.out_dir, image, task.plan, dicom=task.dicom, burned_in=burned_in
    )
