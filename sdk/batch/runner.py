"""Scoring many files: the per-file step both engines share, and the local (threaded) engine.

:func:`score_file` turns one path into a journal record (see :mod:`calcsdk.batch.writers`) or
raises; :func:`run_local` runs it for many files on ``workers`` threads (each thread reads,
preprocesses and scores whole images: :class:`~calcsdk.detector.Detector` is thread-safe) and
hands each result to the writer or the errors log as soon as it is done. At most
``2 * workers`` images are in flight, so memory stays bounded and a kill loses only those.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from calcsdk.batch.archives import input_key, read_batch_input
from calcsdk.batch.errors_log import ErrorsLog, FileFailure, failure_from_exception
from calcsdk.image import read_mammogram

__all__ = [
    "BatchSummary",
    "ScoringOptions",
    "deliver",
    "pending_files",
    "run_local",
    "score_file",
    "score_or_failure",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoringOptions:
    """What each file's scoring needs besides the detector.

    Attributes:
        conf: confidence threshold in [0, 1]; ``None`` uses the bundle's.
        fallback_spacing_mm: pixel spacing (mm) assumed for files that state none.
        overlays_dir: folder for annotated PNGs, or ``None`` for no overlays.
        overlay_names: input key -> overlay file name (see :func:`~calcsdk.batch.discover.overlay_name`).
    """

    conf: float | None = None
    fallback_spacing_mm: float | None = None
    overlays_dir: str | None = None
    overlay_names: dict[str, str] = field(default_factory=dict)


class _Detector(Protocol):
    model_version: str

    def detect(self, image: Any, conf: float | None = None) -> Any: ...


class _Sink(Protocol):
    def add(self, record: dict[str, Any]) -> None: ...


def score_file(
    detector: _Detector, path: str, options: ScoringOptions, label: str | None = None
) -> dict[str, Any]:
    """Read, score and (optionally) draw one file or archive member (``ARCHIVE!/MEMBER``);
    returns its journal record.

    ``label`` is the name the outputs show in the ``file`` column (default ``path``): the Ray
    engine reads absolute paths, since its workers do not share the driver's folder.
    Raises whatever reading or scoring raises (``CalcSdkError`` for bad files).
    """
    key = input_key(path)
    mammogram = read_batch_input(path)
    source = "file" if mammogram.spacing_mm is not None else None
    if source is None and options.fallback_spacing_mm:
        mammogram = read_mammogram(mammogram, spacing_mm=options.fallback_spacing_mm)
        source = "option"
    detections = detector.detect(mammogram, options.conf)
    overlay = None
    if options.overlays_dir is not None:
        from calcsdk.overlay import write_overlay

        name = options.overlay_names.get(key) or os.path.basename(path) + ".png"
        overlay = os.path.join(options.overlays_dir, name)
        write_overlay(overlay, mammogram, detections)
    return {
        "key": key,
        "file": str(path if label is None else label),
        "width": mammogram.width,
        "height": mammogram.height,
        "spacing_mm": None if mammogram.spacing_mm is None else list(mammogram.spacing_mm),
        "spacing_source": source,
        "sop_instance_uid": mammogram.sop_instance_uid,
        "study_instance_uid": mammogram.study_instance_uid,
        "laterality": mammogram.laterality,
        "view": mammogram.view,
        "model_version": detector.model_version,
        "overlay": overlay,
        "detections": detections.to_dict(),
    }


def score_or_failure(
    detector: _Detector, path: str, options: ScoringOptions, label: str | None = None
) -> dict[str, Any] | FileFailure:
    """:func:`score_file`, with any ``Exception`` turned into a :class:`FileFailure` (one bad
    file must not stop a batch; the failure names the exception class and its message)."""
    try:
        return score_file(detector, path, options, label)
    except Exception as exc:  # recorded per file, with its class, in the errors file
        logger.debug("%s failed", path, exc_info=True)
        return failure_from_exception(path if label is None else label, exc)


def pending_files(files: Sequence[str], done_keys: Iterable[str]) -> list[str]:
    """``files`` whose :func:`~calcsdk.batch.archives.input_key` is not among ``done_keys``
    (already journalled)."""
    done = set(done_keys)
    return [path for path in files if input_key(path) not in done]


@dataclass
class BatchSummary:
    """What a batch run did. ``scored``/``failed`` count this run; ``resumed`` the images taken
    from the journal; ``detections`` counts this run's detections per class name."""

    scored: int = 0
    failed: int = 0
    resumed: int = 0
    detections: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, result: dict[str, Any] | FileFailure) -> None:
        if isinstance(result, FileFailure):
            self.failed += 1
            return
        self.scored += 1
        names = result["detections"]["class_names"]
        self.detections.update(names[label] for label in result["detections"]["labels"])

    @property
    def images_per_second(self) -> float:
        done = self.scored + self.failed
        return done / self.seconds if self.seconds > 0 else 0.0

    def format(self, class_names: Sequence[str] = ()) -> str:
        """Human-readable lines: images, detections per class, failures, throughput."""
        names = list(class_names) + sorted(set(self.detections) - set(class_names))
        per_class = ", ".join(f"{name} {self.detections.get(name, 0)}" for name in names)
        lines = [
            f"images: {self.scored} scored, {self.failed} failed"
            + (f", {self.resumed} already done (resumed)" if self.resumed else ""),
            f"detections: {sum(self.detections.values())}" + (f" ({per_class})" if names else ""),
            f"throughput: {self.images_per_second:.2f} images/s "
            f"({self.scored + self.failed} in {self.seconds:.1f} s)",
        ]
        return "\n".join(lines)


def deliver(
    result: dict[str, Any] | FileFailure,
    sink: _Sink,
    errors: ErrorsLog,
    summary: BatchSummary,
) -> None:
    """Send one engine result to the writer (scored) or the errors log (failed)."""
    if isinstance(result, FileFailure):
        errors.record(result)
    else:
        sink.add(result)
    summary.add(result)


def run_local(
    detector: _Detector,
    files: Sequence[str],
    options: ScoringOptions,
    sink: _Sink,
    errors: ErrorsLog,
    *,
    workers: int = 1,
    on_result: Callable[[dict[str, Any] | FileFailure], None] | None = None,
) -> BatchSummary:
    """Score ``files`` on ``workers`` threads, delivering each result as soon as it is ready.

    Returns the run's :class:`BatchSummary` (``seconds`` is the wall time of this call).
    """
    if workers < 1:
        raise ValueError(f"workers should be >= 1, got {workers}")
    summary, start = BatchSummary(), time.perf_counter()
    queue = iter(files)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="calcsdk-score") as pool:
        running: set[Future] = set()
        try:
            while True:
                for path in queue:
                    running.add(pool.submit(score_or_failure, detector, path, options))
                    if len(running) >= 2 * workers:
                        break
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    result = future.result()
                    deliver(result, sink, errors, summary)
                    if on_result is not None:
                        on_result(result)
        finally:
            for future in running:
                future.cancel()
    summary.seconds = time.perf_counter() - start
    return summary
