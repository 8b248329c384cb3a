"""The ``calcsdk`` command line: a thin dispatcher over subcommand modules.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
Command modules import only the standard library at module level, so ``calcsdk --help`` and every
subcommand's ``--help`` stay fast; heavy dependencies (onnxruntime, torch, ...) are imported inside
``run``. Errors from the calcsdk family become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import import_module

# name -> (module, one-line help). Training/export commands live beside their code.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("calcsdk.cli_commands.demo", "run calcsdk on the shipped sample mammograms"),
    "detect": (
        "calcsdk.cli_commands.detect",
        "score files, folders or globs of mammograms (CSV/JSONL/COCO, overlays)",
    ),
    "bench": ("calcsdk.cli_commands.bench", "latency per stage and throughput, across backends"),
    "eval": (
        "calcsdk.cli_commands.eval",
        "score detections against ground truth (paper Tables 5/6, FROC)",
    ),
    "preprocess": (
        "calcsdk.cli_commands.preprocess",
        "breast mask, resampling and normalisation of mammograms (writes PNGs)",
    ),
    "train": ("calcsdk.training.command", "train the classifier, the R-CNN or YOLOv4"),
    "export": ("calcsdk.export.command", "export trained models to ONNX bundles, with parity"),
    "synth": (
        "calcsdk.training.synth.command",
        "generate synthetic mammograms with ground truth (COCO + ROI dataset)",
    ),
}


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The first positional argument, when it names a command (options before it are global)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser; only the chosen subcommand's module is imported (keeps --help fast)."""
    from calcsdk import __version__

    parser = argparse.ArgumentParser(
        prog="calcsdk", description="Calcification detection on mammograms."
    )
    parser.add_argument("--version", action="version", version=f"calcsdk {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name != _chosen_command(argv):
            continue
        try:
            command = import_module(module)
        except ImportError as exc:  # e.g. an extra that is not installed
            sp.set_defaults(_unavailable=f"'calcsdk {name}' is unavailable here: {exc}")
            continue
        command.add_arguments(sp)
        sp.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from calcsdk.errors import CalcSdkError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "_unavailable", None):
        print(args._unavailable, file=sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except CalcSdkError as exc:
        print(f"calcsdk {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
