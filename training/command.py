"""``calcsdk train classifier|rcnn|yolo``: dispatch to each trainer's command module.

Command modules import only the standard library at module level (torch is imported inside
their ``run``), so building this parser stays cheap.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

TRAINERS: dict[str, tuple[str, str]] = {
    "classifier": (
        "calcsdk.training.classifier.command",
        "the paper's ROI classifier: AlexNet, k-fold cross-validation, Tables 2/3",
    ),
    "rcnn": ("calcsdk.training.rcnn.command", "the paper's R-CNN detector (rcnn-1 / rcnn-2)"),
    "yolo": ("calcsdk.training.yolo.command", "the YOLOv4 baseline (yolov4-1 / yolov4-2)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="trainer", metavar="TRAINER", required=True)
    for name, (module, help_text) in TRAINERS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        try:
            command = import_module(module)
        except ImportError as exc:
            sp.set_defaults(_train_unavailable=f"'calcsdk train {name}' is unavailable: {exc}")
            continue
        command.add_arguments(sp)
        sp.set_defaults(_train_run=command.run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_train_unavailable", None):
        print(args._train_unavailable, file=sys.stderr)
        return 2
    return int(args._train_run(args) or 0)
