"""``calcsdk detect PATH... [--out FILE]``: score files, folders, globs or archives (zip, tar,
tar.gz) of mammograms; an archive member is named ``ARCHIVE!/MEMBER`` in every output.

Writes one row per detection (CSV), one line per image (JSONL) or a COCO JSON, with boxes in
original pixels (and mm when the spacing is known), class, score, model version and the DICOM
SOP Instance UID. Reliability: each unreadable file is logged to the errors file and skipped;
results are journalled per image and the output replaced atomically, so a kill loses at most the
images in flight and ``--resume`` carries on where the run stopped (see
:mod:`calcsdk.batch.writers`). Exit status: 0 all scored, 1 some file failed, 2 fatal error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ENGINES = ("local", "ray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="+",
        help="image files, folders (recursive), globs, or zip/tar archives (members scored)",
    )
    parser.add_argument("--model", default=None, help="model bundle (default: the shipped one)")
    parser.add_argument("--out", default=None, help="output file (default: stdout, no resume)")
    parser.add_argument(
        "--format",
        choices=("csv", "jsonl", "coco"),
        default=None,
        help="output format (default: from the --out suffix: .csv, .jsonl, .json; csv on stdout)",
    )
    parser.add_argument("--overlays", default=None, metavar="DIR", help="write annotated PNGs")
    parser.add_argument("--conf", type=float, default=None, help="confidence threshold in [0, 1]")
    parser.add_argument("--backend", default="auto", help="onnxruntime, tensorrt or auto")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument(
        "--workers", type=int, default=1, help="images read, preprocessed and scored in parallel"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="threads per model (default: cores / workers)"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=None,
        metavar="MM",
        help="pixel spacing of files without one",
    )
    parser.add_argument(
        "--errors", default=None, help="errors file, JSONL (default: OUT.errors.jsonl beside --out)"
    )
    parser.add_argument("--resume", action="store_true", help="skip files already in the journal")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the inputs that would be scored, one per line, and stop (no model loaded)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument("--engine", choices=ENGINES, default="local", help="local threads or Ray")
    parser.add_argument("--address", default=None, help="Ray cluster address (--engine ray)")
    parser.add_argument(
        "--snapshot-every",
        type=float,
        default=10.0,
        metavar="S",
        help="rebuild the output file from the journal at most every S seconds (and at the end)",
    )


def _check(args: argparse.Namespace) -> None:
    from calcsdk.errors import CalcSdkError

    if args.resume and not args.out:
        raise CalcSdkError("--resume needs --out (the journal lives beside it)", "detect")
    if args.workers < 1:
        raise CalcSdkError(f"--workers should be >= 1, got {args.workers}", "detect")
    if args.conf is not None and not 0.0 <= args.conf <= 1.0:
        raise CalcSdkError(f"--conf should be in [0, 1], got {args.conf}", "detect")
    if args.spacing is not None and not args.spacing > 0:
        raise CalcSdkError(f"--spacing should be > 0 mm, got {args.spacing}", "detect")
    if args.address and args.engine != "ray":
        raise CalcSdkError("--address is for --engine ray", "detect")


def _quiet_opencv() -> None:
    """OpenCV's decoders warn on stderr about the corrupt files the errors file already lists."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _errors_path(args: argparse.Namespace) -> str | None:
    if args.errors:
        return args.errors
    if args.out:
        return os.path.splitext(args.out)[0] + ".errors.jsonl"
    return None


def run(args: argparse.Namespace) -> int:
    from calcsdk.batch.archives import input_key
    from calcsdk.batch.discover import common_root, discover_images, overlay_name
    from calcsdk.batch.errors_log import ErrorsLog
    from calcsdk.batch.progress import make_progress
    from calcsdk.batch.runner import ScoringOptions, pending_files
    from calcsdk.batch.writers import ResultWriter, StreamWriter, format_from_path, journal_path
    from calcsdk.bundle import load_bundle
    from calcsdk.detector import DEFAULT_BUNDLE
    from calcsdk.errors import CalcSdkError

    _check(args)
    _quiet_opencv()
    fmt = args.format or (format_from_path(args.out) if args.out else "csv")
    errors_path = _errors_path(args)
    outputs = [p for p in (args.out, errors_path, args.overlays) if p]
    if args.out:
        outputs.append(journal_path(args.out))
    files = discover_images(args.paths, exclude=outputs)
    if not files:
        raise CalcSdkError(f"no image files found in {args.paths}", "detect")
    if args.dry_run:
        print("\n".join(files))
        print(f"{len(files)} inputs", file=sys.stderr)
        return 0
    bundle = load_bundle(args.model or DEFAULT_BUNDLE)
    root = common_root(files)
    options = ScoringOptions(
        conf=args.conf,
        fallback_spacing_mm=args.spacing,
        overlays_dir=None if args.overlays is None else os.path.abspath(args.overlays),
        overlay_names={input_key(f): overlay_name(f, root) for f in files} if args.overlays else {},
    )
    if options.overlays_dir:
        Path(options.overlays_dir).mkdir(parents=True, exist_ok=True)
    if args.out:
        Path(args.out).resolve().parent.mkdir(parents=True, exist_ok=True)
        sink = ResultWriter(
            args.out,
            fmt,
            class_names=bundle.class_names,
            model_version=bundle.version,
            conf=args.conf,
            resume=args.resume,
            snapshot_interval_s=args.snapshot_every,
        )
    else:
        sink = StreamWriter(
            sys.stdout, fmt, class_names=bundle.class_names, model_version=bundle.version
        )
    errors = ErrorsLog(errors_path)
    todo = pending_files(files, sink.done_keys)
    progress = make_progress(len(todo), sys.stderr, enabled=not args.quiet)

    def on_result(result) -> None:
        progress.update(failed=not isinstance(result, dict))

    try:
        summary = _run_engine(args, bundle, todo, options, sink, errors, on_result)
    except BrokenPipeError:  # stdout closed by the reader (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        errors.close()
        return 1
    finally:
        progress.close()
        sink.close()
        errors.close()
    summary.resumed = sink.resumed
    if not args.quiet:
        lines = summary.format(bundle.class_names)
        where = f"\nresults: {args.out}" if args.out else ""
        failed = f"\nerrors: {errors_path}" if summary.failed and errors_path else ""
        print(lines + where + failed, file=sys.stderr)
    if summary.failed and not errors_path:
        for failure in errors.failures:
            print(f"skipped {failure.file}: {failure.error}: {failure.message}", file=sys.stderr)
    return 1 if summary.failed else 0


def _run_engine(args, bundle, todo, options, sink, errors, on_result):
    threads = args.threads
    if threads is None and args.workers > 1:
        threads = max(1, (os.cpu_count() or 1) // args.workers)
    if args.engine == "ray":
        from calcsdk.batch.ray_engine import run_ray

        return run_ray(
            todo,
            options,
            sink,
            errors,
            bundle=bundle.source,
            backend=args.backend,
            device=args.device,
            precision=args.precision,
            threads=threads,
            concurrency=args.workers,
            address=args.address,
            on_result=on_result,
        )
    from calcsdk.batch.runner import run_local
    from calcsdk.detector import Detector

    detector = Detector(
        bundle, backend=args.backend, device=args.device, threads=threads, precision=args.precision
    )
    try:
        return run_local(
            detector, todo, options, sink, errors, workers=args.workers, on_result=on_result
        )
    finally:
        detector.close()
