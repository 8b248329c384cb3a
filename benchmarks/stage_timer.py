"""Per-stage timing of a pipeline without touching its code.

:func:`instrument` replaces, on ONE pipeline instance, its stage methods and model sessions by
timed wrappers (instance attributes shadow the class's methods, so ``__call__`` calls them);
:func:`restore` puts the originals back. Every duration is added to the current image's entry of
a :class:`StageRecorder`. Stages that are not methods are derived: for the R-CNN,
``warp = score - cnn - svm`` (cropping, warping and the ROI representation; buffer handling
included).

Stage names by pipeline (a missing method is simply not timed):

=========  ================================================================================
rcnn       preprocess (``prepare``), proposals (``propose``), score (``score``: warp + cnn +
           svm), cnn (``fc7`` session), svm (``head`` session), warp (derived), nms
           (``finish``: confidence threshold, class-wise NMS, back to original pixels)
yolov4     letterbox (``prepare``), network (``infer`` or the ``model`` session), nms
           (``finish``: decode, threshold, NMS)
=========  ================================================================================
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["STAGES", "StageRecorder", "instrument", "percentiles", "restore"]

# pipeline kind -> (method name -> stage, session attribute -> stage)
STAGES: Mapping[str, tuple[Mapping[str, str], Mapping[str, str]]] = {
    "rcnn": (
        {
            "prepare": "preprocess",
            "propose": "proposals",
            "score_and_deltas": "score",
            "finish": "nms",
        },
        {"fc7": "cnn", "head": "svm", "bbox": "svm"},  # bbox: the optional box regressor
    ),
    "yolov4": (
        {"prepare": "letterbox", "infer": "network", "finish": "nms"},
        {"model": "network"},
    ),
}
#: Stages whose output length is recorded per image (``StageRecorder.counts``).
COUNTED_STAGES = ("proposals",)
#: Order of stages in tables and JSON.
STAGE_ORDER = (
    "read",
    "preprocess",
    "letterbox",
    "proposals",
    "score",
    "warp",
    "cnn",
    "svm",
    "network",
    "nms",
)


def percentiles(samples_s: Sequence[float]) -> dict[str, float | int]:
    """``{"n", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms"}`` of durations in
    seconds (linear interpolation between order statistics, numpy's default)."""
    values = np.asarray(samples_s, np.float64) * 1e3
    if values.size == 0:
        raise ValueError("percentiles need at least one sample")
    p50, p90, p99 = np.percentile(values, (50, 90, 99))
    return {
        "n": int(values.size),
        "mean_ms": float(values.mean()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
    }


class StageRecorder:
    """Per-image stage durations. Not thread-safe: time one image at a time."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.counts: dict[str, list[int]] = defaultdict(list)
        self.stages: set[str] = set()  # instrumented stages: 0 s for an image that skipped one
        self._current: dict[str, float] | None = None

    def begin_image(self) -> None:
        self._current = defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        if self._current is not None:
            self._current[stage] += seconds

    def count(self, stage: str, items: int) -> None:
        """How many items a stage produced for this image (e.g. proposals)."""
        self.counts[stage].append(int(items))

    def end_image(self) -> None:
        """Close the image: store its stage sums and derive ``warp`` where it can."""
        current, self._current = self._current or {}, None
        for stage in self.stages:
            current.setdefault(stage, 0.0)  # e.g. no CNN call for an image without proposals
        if "score" in current and "cnn" in current:
            current["warp"] = max(0.0, current["score"] - current["cnn"] - current.get("svm", 0.0))
        for stage, seconds in current.items():
            self.samples[stage].append(seconds)

    def summary(self) -> dict[str, dict[str, float | int]]:
        """``{stage: percentiles(...)}`` in :data:`STAGE_ORDER` (unknown stages last)."""
        order = {name: i for i, name in enumerate(STAGE_ORDER)}
        names = sorted(self.samples, key=lambda n: (order.get(n, len(order)), n))
        return {name: percentiles(self.samples[name]) for name in names if self.samples[name]}


def _timed(function: Callable, stage: str, recorder: StageRecorder) -> Callable:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            result = function(*args, **kwargs)
        finally:
            recorder.add(stage, time.perf_counter() - start)
        if stage in COUNTED_STAGES:
            recorder.count(stage, len(result))
        return result

    return wrapper


class _TimedSession:
    """A session whose ``run`` is timed; everything else is the wrapped session's."""

    def __init__(self, session: Any, stage: str, recorder: StageRecorder):
        self._session = session
        self.run = _timed(session.run, stage, recorder)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def instrument(pipeline: Any, kind: str, recorder: StageRecorder) -> list[str]:
    """Time ``pipeline``'s stages (see the module docstring) into ``recorder``.

    Returns the attribute names replaced (for :func:`restore`). An unknown ``kind`` times
    nothing (end-to-end timing still works).
    """
    methods, sessions = STAGES.get(kind, ({}, {}))
    replaced = []
    for name, stage in methods.items():
        if callable(getattr(pipeline, name, None)):
            setattr(pipeline, name, _timed(getattr(pipeline, name), stage, recorder))
            replaced.append(name)
            recorder.stages.add(stage)
    for name, stage in sessions.items():
        session = getattr(pipeline, name, None)
        if session is not None and callable(getattr(session, "run", None)):
            setattr(pipeline, name, _TimedSession(session, stage, recorder))
            replaced.append(name)
            recorder.stages.add(stage)
    return replaced


def restore(pipeline: Any, replaced: Sequence[str]) -> None:
    """Undo :func:`instrument`."""
    for name in replaced:
        value = pipeline.__dict__.get(name)
        if isinstance(value, _TimedSession):
            setattr(pipeline, name, value._session)
        else:
            pipeline.__dict__.pop(name, None)
