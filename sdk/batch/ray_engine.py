"""Distributed batch scoring on Ray (``calcsdk detect ... --engine ray``).

Ray Data reads the file list; ``map_batches`` runs a callable class, so each actor loads ONE
:class:`~calcsdk.detector.Detector` (bundle verified once per actor) and scores the files sent to
it with :func:`calcsdk.batch.runner.score_or_failure` — the very step of the local engine, so the
outputs are the same. Results stream back to the driver, which journals them one by one through
the same writer and errors log as the local engine: same files, same guarantees (a kill of the
driver loses only the images in flight).

On a cluster every node must see the input files, the bundle and the overlay folder at the same
paths (shared file system); see ``docs/ray.md``. Ray is imported only here, only when asked for.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from calcsdk.batch.errors_log import ErrorsLog, FileFailure
from calcsdk.batch.runner import BatchSummary, ScoringOptions, deliver, score_or_failure
from calcsdk.errors import BackendUnavailableError, CalcSdkError

__all__ = ["DetectorActor", "import_ray", "run_ray"]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "calcsdk[distributed]"'


def import_ray():
    """The ``ray`` module, or a :class:`CalcSdkError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise CalcSdkError(
            f"the Ray engine needs Ray Data, which is not installed here ({exc}); {INSTALL_HINT}",
            "ray",
        ) from None
    return ray


class DetectorActor:
    """The callable class Ray Data instantiates once per actor.

    ``__call__`` takes a batch ``{"path": absolute paths, "file": the paths as listed}`` and
    returns ``{"result": array of JSON str}``, one per path: a journal record, or
    ``{"failure": {...}}``.
    """

    def __init__(self, detector_kwargs: dict[str, Any], options: ScoringOptions):
        from calcsdk.detector import Detector

        self.detector = Detector(**detector_kwargs)
        self.options = options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for path, label in zip(batch["path"], batch["file"]):
            result = score_or_failure(self.detector, str(path), self.options, str(label))
            payload = {"failure": result.to_dict()} if isinstance(result, FileFailure) else result
            out.append(json.dumps(payload))
        return {"result": np.array(out, dtype=object)}


def _decode(text: str) -> dict[str, Any] | FileFailure:
    payload = json.loads(text)
    if "failure" in payload:
        return FileFailure(**payload["failure"])
    return payload


def _gpus_per_actor(ray, device: str) -> float:
    if not str(device).startswith("cuda"):
        return 0.0
    available = ray.cluster_resources().get("GPU", 0)
    if available < 1:
        raise BackendUnavailableError(
            f"--device {device} asks for GPU actors but the Ray cluster has no GPU", "ray"
        )
    return 1.0


def run_ray(
    files: Sequence[str],
    options: ScoringOptions,
    sink: Any,
    errors: ErrorsLog,
    *,
    bundle: str,
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
    concurrency: int = 1,
    address: str | None = None,
    on_result: Callable[[dict[str, Any] | FileFailure], None] | None = None,
) -> BatchSummary:
    """Score ``files`` on ``concurrency`` Ray actors (one Detector each), streaming the results
    to ``sink``/``errors`` in the driver as they arrive.

    Args:
        bundle: bundle path, readable at the same path on every node.
        device: ``cuda[:N]`` gives each actor one GPU (``num_gpus=1``); ``cpu`` none.
        address: Ray cluster to join (``ray.init(address=...)``); ``None`` joins the running
            session or starts a local one.
    Raises:
        CalcSdkError: Ray is not installed (with the pip command), or it cannot start.
    """
    ray = import_ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except Exception as exc:
            raise CalcSdkError(f"cannot start or join Ray ({exc})", address or "ray") from None
    summary, start = BatchSummary(), time.perf_counter()
    if not files:
        return summary
    detector_kwargs = {
        "bundle": os.path.abspath(bundle),
        "backend": backend,
        "device": device,
        "threads": threads,
        "precision": precision,
    }
    items = [{"path": os.path.abspath(path), "file": str(path)} for path in files]
    dataset = ray.data.from_items(items)
    scored = dataset.map_batches(
        DetectorActor,
        fn_constructor_kwargs={"detector_kwargs": detector_kwargs, "options": options},
        batch_size=1,
        concurrency=max(1, int(concurrency)),
        num_gpus=_gpus_per_actor(ray, device),
        num_cpus=1,
    )
    for row in scored.iter_rows():
        result = _decode(row["result"])
        deliver(result, sink, errors, summary)
        if on_result is not None:
            on_result(result)
    summary.seconds = time.perf_counter() - start
    return summary
