"""Latency against the number of proposals (R-CNN): the CPU cost is mostly crops x CNN.

For each count in ``--counts`` the bundle's ``max_proposals`` (the best-scoring proposals kept
after filtering) is overridden on one pipeline instance and the images are timed as in
:mod:`calcsdk.benchmarks.bench_latency`. The images are the shipped synthetic sample
mammograms (2048x2560 at 0.1 mm) unless ``--images`` names files or a number of phantoms.
Writes ``bench_proposals.json`` (and ``bench_proposals.png`` when matplotlib is installed; the
JSON says so when it is not) into ``--out``.

    python -m calcsdk.benchmarks.bench_proposals --model BUNDLE --counts 100,500,2000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from calcsdk.benchmarks.bench_latency import RunSpec, Workload, build_pipeline, time_pipeline

__all__ = ["main", "plot", "sweep"]

DEFAULT_COUNTS = (50, 100, 200, 500, 1000, 2000)


def sweep(pipeline: Any, counts: Sequence[int], workload: Workload) -> list[dict[str, Any]]:
    """One row per count: requested ``max_proposals``, proposals actually kept (mean),
    end-to-end p50 (ms), per-stage p50 (ms) and throughput (images/s)."""
    base = pipeline.proposal_config
    rows = []
    try:
        for count in counts:
            pipeline.proposal_config = dataclasses.replace(base, max_proposals=int(count))
            timed = time_pipeline(pipeline, "rcnn", workload)
            rows.append(
                {
                    "max_proposals": int(count),
                    "proposals_mean": (timed["proposals_per_image"] or {}).get("mean", 0.0),
                    "end_to_end_p50_ms": timed["end_to_end"]["p50_ms"],
                    "stages_p50_ms": {k: v["p50_ms"] for k, v in timed["stages"].items()},
                    "throughput_images_per_s": timed["throughput_images_per_s"],
                }
            )
    finally:
        pipeline.proposal_config = base
    return rows


def plot(rows: Sequence[dict[str, Any]], path: Path) -> str | None:
    """Write the latency-vs-proposals PNG; returns a note instead when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    x = [row["proposals_mean"] for row in rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(x, [row["end_to_end_p50_ms"] for row in rows], "o-", label="end to end")
    for stage in ("proposals", "warp", "cnn"):
        axes.plot(x, [row["stages_p50_ms"].get(stage, 0.0) for row in rows], ".--", label=stage)
    axes.set(xlabel="proposals per image (mean)", ylabel="p50 latency per image, ms")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m calcsdk.benchmarks.bench_proposals")
    parser.add_argument("--model", required=True, help="R-CNN bundle")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--images", default=None, help="N phantoms, or files/folder/glob (default: shipped samples)"
    )
    parser.add_argument("--image-size", default="2560x2048", metavar="HxW")
    parser.add_argument("--spacing", type=float, default=0.1, metavar="MM")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--counts", default=",".join(map(str, DEFAULT_COUNTS)))
    parser.add_argument("--out", default="benchmarks/results", help="output folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from calcsdk.batch.discover import discover_images
    from calcsdk.benchmarks.environment import environment_fingerprint
    from calcsdk.benchmarks.phantom import write_phantoms
    from calcsdk.samples import sample_paths

    args = _parser().parse_args(argv)
    counts = [int(v) for v in args.counts.split(",")]
    shape = tuple(int(v) for v in args.image_size.lower().split("x"))
    spec = RunSpec(f"{args.backend}:{args.precision}", args.backend, args.precision)
    pipeline, kind, version = build_pipeline(
        spec, args.model, device=args.device, threads=args.threads
    )
    if kind != "rcnn":
        raise SystemExit(f"bench_proposals needs an R-CNN bundle, got pipeline {kind!r}")
    with tempfile.TemporaryDirectory(prefix="calcsdk-bench-") as tmp:
        if args.images is not None and args.images.isdigit():
            paths, source = write_phantoms(tmp, int(args.images), shape, args.spacing), "synthetic"
        else:
            paths = discover_images([args.images]) if args.images else sample_paths()
            source, shape = "files", None
        workload = Workload(
            tuple(map(str, paths)), source, shape, args.spacing, args.warmup, args.repeat
        )
        rows = sweep(pipeline, counts, workload)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    note = plot(rows, out / "bench_proposals.png")
    report = {
        "tool": "calcsdk.benchmarks.bench_proposals",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": ["python", "-m", "calcsdk.benchmarks.bench_proposals", *(argv or sys.argv[1:])],
        "model_version": version,
        "run": spec.name,
        "environment": environment_fingerprint(),
        "workload": workload.to_dict(),
        "rows": rows,
        "plot": None if note else "bench_proposals.png",
        "plot_note": note,
    }
    (out / "bench_proposals.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'max_prop':>9} {'proposals':>9} {'e2e p50 ms':>11} {'cnn p50 ms':>11}")
    for row in rows:
        print(
            f"{row['max_proposals']:9d} {row['proposals_mean']:9.1f} {row['end_to_end_p50_ms']:11.1f} "
            f"{row['stages_p50_ms'].get('cnn', 0.0):11.1f}"
        )
    if note:
        print(note)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
