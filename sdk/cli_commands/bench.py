"""``calcsdk bench``: per-stage latency percentiles, end-to-end latency and throughput, for one
configuration or several (``--compare onnxruntime:fp32,onnxruntime:int8,torch-reference``),
with the environment they ran in. The work is done by :mod:`calcsdk.benchmarks.bench_latency`.
"""

from __future__ import annotations

import argparse
import sys


def _shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HxW in pixels, e.g. 2560x2048, got {text!r}"
        ) from None
    if height < 32 or width < 32:
        raise argparse.ArgumentTypeError(f"images should be at least 32x32 pixels, got {text!r}")
    return height, width


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    parser.add_argument("--backend", default="auto", help="backend of the single run")
    parser.add_argument("--precision", default="fp32", help="precision of the single run")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=_positive, default=None, help="threads per model")
    parser.add_argument(
        "--batch",
        type=_positive,
        default=None,
        help="crops per CNN call (R-CNN; default: bundle's)",
    )
    parser.add_argument(
        "--images",
        default="2",
        metavar="N|PATH",
        help="N synthetic phantoms, or image files/folder/glob (default: 2 phantoms)",
    )
    parser.add_argument(
        "--image-size", type=_shape, default=(2560, 2048), metavar="HxW", help="phantom size"
    )
    parser.add_argument(
        "--spacing", type=float, default=0.1, metavar="MM",
        help="phantom pixel spacing; also assumed for files without one (default 0.1)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=_non_negative, default=1, help="untimed images first")
    parser.add_argument("--repeat", type=_positive, default=3, help="timed passes over the images")
    parser.add_argument("--conf", type=float, default=None, help="confidence threshold")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the report as JSON")
    parser.add_argument(
        "--compare",
        default=None,
        metavar="SPEC,...",
        help="backend:precision items and/or torch-reference, timed on the same images",
    )
    parser.add_argument(
        "--reference-run", default=None, metavar="DIR", help="training run for torch-reference"
    )


def _workload(args: argparse.Namespace, tmp: str):
    from calcsdk.batch.discover import discover_images
    from calcsdk.benchmarks.bench_latency import Workload
    from calcsdk.benchmarks.phantom import write_phantoms
    from calcsdk.errors import CalcSdkError

    common = dict(warmup=args.warmup, repeat=args.repeat, batch=args.batch, conf=args.conf)
    if args.images.isdigit():
        count = int(args.images)
        if count < 1:
            raise CalcSdkError("--images should be >= 1", "bench")
        paths = write_phantoms(tmp, count, args.image_size, args.spacing)
        return Workload(
            tuple(map(str, paths)), "synthetic", args.image_size, args.spacing, **common
        )
    paths = discover_images([args.images])
    if not paths:
        raise CalcSdkError(f"no image files found in {args.images!r}", "bench")
    return Workload(tuple(paths), "files", None, args.spacing, **common)


def run(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from calcsdk.benchmarks.bench_latency import RunSpec, benchmark, format_table, parse_compare
    from calcsdk.detector import DEFAULT_BUNDLE
    from calcsdk.errors import CalcSdkError

    try:
        specs = (
            parse_compare(args.compare, args.backend, args.precision)
            if args.compare
            else [RunSpec(f"{args.backend}:{args.precision}", args.backend, args.precision)]
        )
    except ValueError as exc:
        raise CalcSdkError(str(exc), "bench") from None
    with tempfile.TemporaryDirectory(prefix="calcsdk-bench-") as tmp:
        workload = _workload(args, tmp)
        report = benchmark(
            specs,
            workload,
            str(args.model or DEFAULT_BUNDLE),
            device=args.device,
            threads=args.threads,
            reference_run=args.reference_run,
            command=["calcsdk", *sys.argv[1:]],
        )
    print(format_table(report))
    if args.json:
        from calcsdk.batch.durable import atomic_write

        atomic_write(args.json, lambda handle: json.dump(report, handle, indent=1))
    ok = [run for run in report["runs"] if run["status"] == "ok"]
    return 0 if ok and not any(run["status"] == "failed" for run in report["runs"]) else 1
