"""Latency harness behind ``calcsdk bench``: per-stage p50/p90/p99, end-to-end latency and
throughput of one or several backends/precisions (and the PyTorch reference) on the same images.

What is timed, per image, one image at a time: ``read`` (file -> :class:`Mammogram`), then the
pipeline's stages (see :mod:`calcsdk.benchmarks.stage_timer`); ``end_to_end`` is read + the whole
pipeline call, host only (ONNX Runtime copies to and from a GPU are inside the model stages).
Each run first burns in ``warmup`` images untimed, then times ``repeat`` passes over the images.
Throughput is timed images divided by the summed end-to-end time (sequential, one stream).

Run as ``calcsdk bench ...`` or ``python -m calcsdk.benchmarks.bench_latency ...`` (same options).
The JSON follows ``benchmarks/schema/bench.schema.json``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from calcsdk.benchmarks.stage_timer import StageRecorder, instrument, percentiles, restore
from calcsdk.errors import CalcSdkError

__all__ = [
    "REFERENCE",
    "SCHEMA_PATH",
    "RunSpec",
    "Workload",
    "benchmark",
    "format_table",
    "parse_compare",
    "time_pipeline",
]

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "bench.schema.json"
REFERENCE = "torch-reference"
REFERENCE_MODULE = "calcsdk.training.rcnn.reference"


@dataclass(frozen=True)
class RunSpec:
    """One configuration to time: ``backend:precision`` or the PyTorch reference."""

    name: str
    backend: str
    precision: str
    reference: bool = False


def parse_compare(text: str, backend: str = "auto", precision: str = "fp32") -> list[RunSpec]:
    """``"onnxruntime:fp32,onnxruntime:int8,torch-reference"`` -> specs, in order.

    An item without ``:precision`` takes ``precision``; ``torch-reference`` is the PyTorch
    reference pipeline. Raises ``ValueError`` for an empty list, an empty item or a duplicate.
    """
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"--compare has an empty item: {text!r}")
        if item == REFERENCE:
            specs.append(RunSpec(REFERENCE, "torch", "fp32", reference=True))
            continue
        name, _, prec = item.partition(":")
        name, prec = name or backend, prec or precision
        specs.append(RunSpec(f"{name}:{prec}", name, prec))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"--compare lists a configuration twice: {names}")
    return specs


@dataclass(frozen=True)
class Workload:
    """The images and how they are timed.

    Attributes:
        paths: image files, read from disk for every timed image.
        source: ``"synthetic"`` (phantoms written for this run) or ``"files"``.
        image_shape: ``(H, W)`` of synthetic images, ``None`` for files.
        spacing_mm: pixel spacing (mm) of synthetic images / assumed for files without one.
        warmup, repeat: untimed images first; timed passes over ``paths``.
        batch: crops per CNN call for the R-CNN (``None``: the bundle's ``chunk_size``).
        conf: confidence threshold (``None``: the bundle's).
    """

    paths: tuple[str, ...]
    source: str
    image_shape: tuple[int, int] | None = None
    spacing_mm: float | None = None
    warmup: int = 1
    repeat: int = 3
    batch: int | None = None
    conf: float | None = None

    def to_dict(self) -> dict[str, Any]:
        as_dict = dataclasses.asdict(self)
        as_dict["images"] = len(self.paths)
        as_dict["paths"] = list(self.paths) if self.source == "files" else []
        as_dict["image_shape"] = None if self.image_shape is None else list(self.image_shape)
        return as_dict


class Unavailable(Exception):
    """A configuration that cannot run here (its reason is reported, the bench goes on)."""


def _set_batch(pipeline: Any, batch: int | None) -> None:
    if batch is None:
        return
    settings = getattr(pipeline, "settings", None)
    if settings is None or not hasattr(settings, "chunk_size"):
        raise Unavailable(f"--batch is not supported by {type(pipeline).__name__}")
    pipeline.settings = dataclasses.replace(settings, chunk_size=int(batch))


def _reference_pipeline(bundle_path: str, run_dir: str | None) -> Any:
    """The PyTorch reference of the training run that exported the bundle (the run folder is
    checked first, so torch is imported only when it can be used)."""
    run = Path(run_dir) if run_dir else Path(bundle_path).resolve().parent
    needed = [run / "finetune" / "best.pt", run / "head.npz", run / "bundle"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise Unavailable(
            f"the reference needs a training run folder (finetune/best.pt, head.npz, bundle/); "
            f"missing {missing}; pass --reference-run DIR"
        )
    try:
        module = importlib.import_module(REFERENCE_MODULE)
    except Exception as exc:  # torch missing or the module broken: say which
        raise Unavailable(f"{REFERENCE_MODULE} cannot be imported ({exc})") from None
    try:
        return module.ReferencePipeline.from_run(run)
    except Exception as exc:
        raise Unavailable(f"cannot build the reference from {run} ({exc})") from None


def build_pipeline(
    spec: RunSpec,
    bundle_path: str,
    *,
    device: str = "cpu",
    threads: int | None = None,
    batch: int | None = None,
    reference_run: str | None = None,
) -> tuple[Any, str, str]:
    """``(pipeline, pipeline kind, model version)`` for ``spec``; raises :class:`Unavailable`."""
    from calcsdk.bundle import load_bundle
    from calcsdk.detector import Detector

    bundle = load_bundle(bundle_path)  # a bad bundle is fatal for every run: let it raise
    if spec.reference:
        return _reference_pipeline(bundle_path, reference_run), "rcnn", f"{bundle.version} (torch)"
    try:
        detector = Detector(
            bundle, backend=spec.backend, device=device, threads=threads, precision=spec.precision
        )
    except (CalcSdkError, ValueError, ImportError) as exc:
        raise Unavailable(str(exc)) from None
    pipeline = detector._pipeline
    _set_batch(pipeline, batch)
    return pipeline, bundle.pipeline, bundle.version


def time_pipeline(pipeline: Any, kind: str, workload: Workload) -> dict[str, Any]:
    """Time ``pipeline`` on ``workload`` (see the module docstring); returns the measured
    part of a run entry: ``stages``, ``end_to_end``, throughput, proposals and detections."""
    from calcsdk.image import read_mammogram

    def one(path: str, recorder: StageRecorder | None) -> int:
        start = time.perf_counter()
        mammogram = read_mammogram(path)
        if recorder is not None:
            recorder.add("read", time.perf_counter() - start)
        if mammogram.spacing_mm is None and workload.spacing_mm:
            mammogram = read_mammogram(mammogram, spacing_mm=workload.spacing_mm)
        return len(pipeline(mammogram, workload.conf))

    paths = list(workload.paths)
    for index in range(workload.warmup):
        one(paths[index % len(paths)], None)
    recorder, end_to_end, detections = StageRecorder(), [], []
    replaced = instrument(pipeline, kind, recorder)
    try:
        for _ in range(workload.repeat):
            for path in paths:
                recorder.begin_image()
                start = time.perf_counter()
                detections.append(one(path, recorder))
                end_to_end.append(time.perf_counter() - start)
                recorder.end_image()
    finally:
        restore(pipeline, replaced)
    proposals = recorder.counts.get("proposals")
    return {
        "stages": recorder.summary(),
        "end_to_end": percentiles(end_to_end),
        "throughput_images_per_s": len(end_to_end) / sum(end_to_end),
        "proposals_per_image": None
        if not proposals
        else {
            "mean": sum(proposals) / len(proposals),
            "min": min(proposals),
            "max": max(proposals),
        },
        "detections_per_image": sum(detections) / len(detections),
    }


def _run_entry(spec: RunSpec, device: str) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": "reference" if spec.reference else "sdk",
        "backend": spec.backend,
        "precision": spec.precision,
        "device": device,
        "status": "ok",
        "reason": None,
        "model_version": None,
        "pipeline": None,
        "stages": {},
        "end_to_end": None,
        "throughput_images_per_s": None,
        "proposals_per_image": None,
        "detections_per_image": None,
        "ratio_to_first": None,
    }


def benchmark(
    specs: Sequence[RunSpec],
    workload: Workload,
    bundle_path: str,
    *,
    device: str = "cpu",
    threads: int | None = None,
    reference_run: str | None = None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Time every spec on the same workload; returns the report (the bench JSON document).

    A spec that cannot be built here is reported ``"unavailable"`` with its reason; one that
    fails while running, ``"failed"``. ``ratio_to_first`` compares each run with the first one
    that succeeded: ``end_to_end_p50`` (run / first; < 1 is faster) and ``throughput``.
    """
    from calcsdk.benchmarks.environment import environment_fingerprint

    if not workload.paths:
        raise CalcSdkError("the benchmark has no images", "bench")
    runs = []
    for spec in specs:
        entry = _run_entry(spec, device)
        try:
            pipeline, kind, version = build_pipeline(
                spec, bundle_path, device=device, threads=threads, batch=workload.batch,
                reference_run=reference_run,
            )  # fmt: skip
            entry.update(model_version=version, pipeline=kind)
            entry.update(time_pipeline(pipeline, kind, workload))
        except Unavailable as exc:
            entry.update(status="unavailable", reason=f"unavailable: {exc}")
        except CalcSdkError as exc:
            entry.update(status="failed", reason=f"failed: {exc}")
        runs.append(entry)
    first = next((run for run in runs if run["status"] == "ok"), None)
    for run in runs:
        if first is not None and run["status"] == "ok":
            run["ratio_to_first"] = {
                "end_to_end_p50": run["end_to_end"]["p50_ms"] / first["end_to_end"]["p50_ms"],
                "throughput": run["throughput_images_per_s"] / first["throughput_images_per_s"],
            }
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "calcsdk bench",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": list(command),
        "environment": environment_fingerprint(),
        "workload": workload.to_dict(),
        "runs": runs,
    }


def format_table(report: dict[str, Any]) -> str:
    """Two plain-text tables: end-to-end and throughput per run, then p50 per stage (ms)."""
    runs = report["runs"]
    width = max(12, *(len(run["name"]) for run in runs))
    lines = [
        f"{'run':<{width}}  {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'img/s':>8} {'x first':>8}"
    ]
    for run in runs:
        if run["status"] != "ok":
            lines.append(f"{run['name']:<{width}}  {run['reason']}")
            continue
        e2e, ratio = run["end_to_end"], run["ratio_to_first"]["end_to_end_p50"]
        lines.append(
            f"{run['name']:<{width}}  {e2e['p50_ms']:9.1f} {e2e['p90_ms']:9.1f} "
            f"{e2e['p99_ms']:9.1f} {run['throughput_images_per_s']:8.2f} {ratio:8.2f}"
        )
    stages: list[str] = []
    for run in runs:
        stages += [name for name in run["stages"] if name not in stages]
    if stages:
        lines += [
            "",
            "p50 per stage, ms",
            f"{'run':<{width}}  " + " ".join(f"{s:>10}" for s in stages),
        ]
        for run in (r for r in runs if r["status"] == "ok"):
            cells = [
                f"{run['stages'][s]['p50_ms']:10.2f}" if s in run["stages"] else f"{'-':>10}"
                for s in stages
            ]
            lines.append(f"{run['name']:<{width}}  " + " ".join(cells))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m calcsdk.benchmarks.bench_latency ARGS`` = ``calcsdk bench ARGS``."""
    from calcsdk.cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
