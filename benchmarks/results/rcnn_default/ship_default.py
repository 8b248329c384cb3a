"""Make a trained R-CNN run the shipped default bundle (``sdk/data/models/default``).

    python benchmarks/results/rcnn_default/ship_default.py RUN --version 0.4.0 \
        --reduced "..." --command "calcsdk train classifier ..." --command "calcsdk train rcnn ..." \
        --bench BENCH_JSON

RUN is a ``calcsdk train rcnn`` output folder (``bundle/``, ``rcnn_train.json``,
``eval/evaluation.json``). The model files are copied unchanged (their sha256 stays in the
manifest); the manifest gains the default's name and version, what was reduced and how it was
trained (``provenance``), and the held-out test figures of ``eval/`` plus the latency of a
``calcsdk bench`` JSON (``metrics``). Every figure is read from those files, none is typed in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

from calcsdk.bundle import MANIFEST, load_bundle, write_bundle

REPO = Path(__file__).resolve().parents[3]
DEFAULT = REPO / "sdk" / "data" / "models" / "default"
NAME = "calcsdk-default-rcnn-tiny"


def metrics_from(run: Path, bench: dict | None) -> dict:
    """The manifest's ``metrics``: the run's held-out test figures (Table 6 at CF 0.5 and
    Table 5, FROC points, Table 6 by density) at the top level, as every shipped bundle has
    them, plus the latency of a ``calcsdk bench`` JSON when one is given."""
    evaluation = json.loads((run / "eval" / "evaluation.json").read_text())
    overall = evaluation["overall"]
    metrics = {
        "held_out_synthetic_images": overall["n_images"],
        "table6_cf_0.5": overall["table6"],
        "table5": overall["table5"],
        "sensitivity_at_fp_per_image": overall["sensitivity_at_fp"],
        "table6_cf_0.5_by_density": {d: r["table6"] for d, r in evaluation["by_density"].items()},
        "median_seconds_per_image_training_eval": evaluation["median_seconds_per_image"],
        "note": "held-out test images of the run (patients never seen in training); CF 0.5, "
        "macro over classes, mAP at IoU 0.5 (calcsdk eval)",
    }
    if bench is not None:
        run = bench["runs"][0]
        metrics["bench"] = {
            "end_to_end_p50_ms": run["end_to_end"]["p50_ms"],
            "stages_p50_ms": {k: v["p50_ms"] for k, v in run["stages"].items()},
            "images": bench["workload"]["paths"],
            "cpu": bench["environment"]["cpu"],
            "date": bench["created"],
            "source": bench["_source"],
        }
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--version", required=True)
    parser.add_argument("--data", required=True, help="how the training images were made")
    parser.add_argument("--reduced", required=True, help="what differs from the paper, plainly")
    parser.add_argument("--command", action="append", default=[], dest="commands")
    parser.add_argument("--classifier", required=True, help="the classifier run it started from")
    parser.add_argument("--bench", type=Path, help="calcsdk bench --json output for this bundle")
    parser.add_argument("--out", type=Path, default=DEFAULT)
    args = parser.parse_args(argv)

    source = load_bundle(args.run / "bundle")  # verifies the run's files first
    manifest = json.loads((source.root / MANIFEST).read_text())
    train = json.loads((args.run / "rcnn_train.json").read_text())
    split = json.loads((args.run / "split.json").read_text())
    bench = None
    if args.bench is not None:
        bench = {**json.loads(args.bench.read_text()), "_source": args.bench.name}
    manifest.update(name=NAME, version=args.version)
    manifest["provenance"].update(
        data=args.data,
        images={k: len(v) for k, v in split.items() if isinstance(v, list)},
        classifier=args.classifier,
        reduced=args.reduced,
        commands=args.commands,
        date=dt.date.today().isoformat(),
        train_seconds=train["seconds"],
        finetune_best_val_accuracy=train.get("finetune_best_val_accuracy"),
    )
    manifest["metrics"] = metrics_from(args.run, bench)
    files = {name: source.root / name for name in manifest.pop("files")}
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "default"
        write_bundle(staged, manifest, files)
        load_bundle(staged)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(staged, args.out)
    print(f"{args.out}: {NAME} {args.version}")


if __name__ == "__main__":
    main()
