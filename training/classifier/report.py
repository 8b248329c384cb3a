"""Report of a cross-validation run: the paper's Table 2, Table 3 and Figure 4 analogues.

Every figure is recomputed from the files the run saved (``cross_validation.py``): the
predictions (``predictions_val.npz``, ``predictions_test.npz``) give every accuracy, F1 and
confusion matrix through :func:`calcsdk.classification_metrics.classification_report`; the
``fold.json`` records give the training times. Nothing is copied from the training logs, so
the report can be rebuilt, and checked, at any time, also while the run is still going
(unfinished folds are listed as pending).

Written into the run folder:

* ``report.json``: every number below, accuracies and F1 as fractions in [0, 1];
* ``report.md``: Table 2 analogue (validation AND test accuracy of each fold, %), Table 3
  analogue (micro/macro/weighted F1 of each representation's selected model on the held-out
  test ROIs), Figure 4 analogue (3x3 confusion matrices with per-class precision, recall and
  F1), seconds per epoch, the paper's numbers beside ours, and notes on the comparison;
* ``confusion_<representation>.png``: the Figure 4 analogue (needs matplotlib).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calcsdk.classification_metrics import classification_report
from calcsdk.representations import REPRESENTATIONS
from calcsdk.training.classifier.config import CONFIGS
from calcsdk.training.classifier.cross_validation import (
    CvRunFiles,
    load_predictions,
    predicted_classes,
    select_best_fold,
)
from calcsdk.training.roi_dataset import ROI_LABELS

logger = logging.getLogger(__name__)

# The paper's numbers (Results). Table 2: accuracy (%) of AlexNet1..5 per ROI representation;
# the paper does not say on which data (see NOTES).
PAPER_TABLE2 = {
    "grayscale": (89.60, 88.80, 88.80, 90.40, 89.33),
    "binary": (85.30, 85.30, 86.20, 84.30, 87.10),
    "filtered": (85.00, 84.30, 83.80, 83.30, 85.00),
}
# Table 3: the best model of each representation on the 1,000 test ROIs (micro, macro, weighted F1).
PAPER_TABLE3 = {
    "grayscale": {"model": "AlexNet4", "micro": 0.90, "macro": 0.89, "weighted": 0.89},
    "binary": {"model": "AlexNet5", "micro": 0.85, "macro": 0.84, "weighted": 0.85},
    "filtered": {"model": "AlexNet5", "micro": 0.87, "macro": 0.86, "weighted": 0.87},
}
# Table 4: training hours of the DETECTORS (not of the ROI classifier alone), i7 + NVIDIA GPU.
PAPER_DETECTOR_TRAINING_HOURS = {"rcnn-1": "34.31 ± 3.50", "rcnn-2": "66.77 ± 3.53"}
PAPER_DATASET = "5,000 ROIs per representation (2,500 malignant, 1,250 benign, 1,250 normal)"
NOTES = (
    "The paper's Table 2 does not say whether its accuracies are validation or test accuracies."
    " In single-label classification micro-F1 equals accuracy, yet the paper's Table 3 micro-F1"
    " of its selected binary (0.85) and filtered (0.87) models differs from their Table 2"
    " entries (87.10 %, 85.00 %): Table 2 is then not accuracy on the 1,000 test ROIs, most"
    " likely validation accuracy (800 ROIs per fold). Its 89.33 % (grayscale AlexNet5) is no"
    " multiple of 1/800 or 1/1000 though, so its denominator is unclear. We give both.",
    "The paper's text names 'AlexNet6' as the best filtered-grayscale model; with five folds"
    " there is none. Its Figure 4 says AlexNet5, and its Table 2 has 85.00 % for both AlexNet1"
    " and AlexNet5 on filtered ROIs.",
    "The paper selects 'the model with the highest performance' without defining it; we select"
    " by validation accuracy (ties: lowest fold), so the test ROIs never influence the choice.",
    "The paper's Figure 4 values are only in the figure image; they are not reproduced here.",
    "The paper gives no training time for the ROI classifier alone; its Table 4 reports the"
    " detectors' training hours (R-CNN-1 {rcnn-1} h, R-CNN-2 {rcnn-2} h on an Intel i7 with an"
    " NVIDIA GPU, MATLAB R2022a), shown for scale only.",
)


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    figures: dict[str, Path]  # representation -> confusion PNG (empty without matplotlib)


def _representation_entry(files: CvRunFiles, representation: str, n_folds: int) -> dict:
    """Per-fold accuracies, timings, the selected fold and its test report, from the files."""
    folds = []
    for k in range(1, n_folds + 1):
        record_path = files.fold_record(representation, k)
        if not record_path.exists():
            folds.append({"fold": k, "status": "pending"})
            continue
        record = json.loads(record_path.read_text())
        entry = {"fold": k, "status": "done"}
        for part in ("val", "test"):
            _, y_true, probs = load_predictions(files.predictions(representation, k, part))
            report = classification_report(y_true, predicted_classes(probs), ROI_LABELS)
            entry[f"{part}_accuracy"] = report.accuracy
            entry[f"{part}_rois"] = len(y_true)
            if part == "test":
                entry["test_report"] = report.to_dict()
        seconds = record["seconds_per_epoch"]
        entry.update(
            best_epoch=record["best_epoch"],
            epochs_trained=record["epochs_trained"],
            stopped_early=record["stopped_early"],
            median_seconds_per_epoch=statistics.median(seconds) if seconds else None,
            training_seconds=float(sum(seconds)),
            train_rois=record["rois"]["train"],
            device=record.get("device", "?"),
            torch_threads=record.get("torch_threads"),
        )
        folds.append(entry)
    done = [f for f in folds if f["status"] == "done"]
    entry = {"folds": folds, "selected_fold": None, "selected_test": None}
    for part in ("val", "test"):
        values = [f[f"{part}_accuracy"] for f in done]
        entry[f"{part}_accuracy_mean"] = float(np.mean(values)) if values else None
        entry[f"{part}_accuracy_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    if done and len(done) == n_folds:
        selected = select_best_fold([f["val_accuracy"] for f in folds])
        entry["selected_fold"] = selected
        entry["selected_test"] = folds[selected - 1]["test_report"]
    return entry


def build_report(run_dir: str | os.PathLike) -> dict:
    """The report's numbers (JSON-safe) recomputed from a run folder's saved files.

    Raises:
        FileNotFoundError: ``run_dir`` holds no ``cv.json``.
    """
    files = CvRunFiles(Path(run_dir))
    if not files.settings.exists():
        raise FileNotFoundError(f"{files.settings}: not a cross-validation run folder")
    settings = json.loads(files.settings.read_text())
    n_folds = int(settings["cv_config"]["n_folds"])
    with np.load(files.split) as split:
        split_sizes = {"test": len(split["test"])}
        split_sizes.update({k: len(split[k]) for k in split.files if k.startswith("fold")})
    representations = [r for r in REPRESENTATIONS if r in settings["cv_config"]["representations"]]
    return {
        "run_dir": str(files.out_dir),
        "class_names": settings["class_names"],
        "settings": settings,
        "split_sizes": split_sizes,
        "selection": "highest validation accuracy; ties go to the lowest fold",
        "prediction": "argmax of the softmax probabilities saved in predictions_*.npz",
        "representations": {r: _representation_entry(files, r, n_folds) for r in representations},
        "paper": {
            "dataset": PAPER_DATASET,
            "table2_accuracy_percent": {k: list(v) for k, v in PAPER_TABLE2.items()},
            "table3_test_f1": PAPER_TABLE3,
            "table4_detector_training_hours": PAPER_DETECTOR_TRAINING_HOURS,
        },
        "notes": [note.format(**PAPER_DETECTOR_TRAINING_HOURS) for note in NOTES],
    }


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _table2(report: dict) -> list[str]:
    reps = report["representations"]
    header = ["Model"]
    for r in reps:
        header += [f"{r} val", f"{r} test", f"{r} paper"]
    n_folds = report["settings"]["cv_config"]["n_folds"]
    rows = []
    for k in range(1, n_folds + 1):
        row = [f"AlexNet{k}"]
        for r, entry in reps.items():
            fold = entry["folds"][k - 1]
            mark = "**" if entry["selected_fold"] == k else ""
            val = _percent(fold.get("val_accuracy"))
            row += [f"{mark}{val}{mark}", _percent(fold.get("test_accuracy"))]
            paper = PAPER_TABLE2.get(r, ())
            row.append(f"{paper[k - 1]:.2f}" if k <= len(paper) else "–")
        rows.append(row)
    row = ["mean ± sd"]
    for r, entry in reps.items():
        for part in ("val", "test"):
            mean, sd = entry[f"{part}_accuracy_mean"], entry[f"{part}_accuracy_sd"]
            row.append(_percent(mean) + ("" if sd is None else f" ± {100 * sd:.2f}"))
        paper = PAPER_TABLE2.get(r, ())
        row.append(f"{np.mean(paper):.2f} ± {np.std(paper, ddof=1):.2f}" if paper else "–")
    rows.append(row)
    return _table(header, rows)


def _table3(report: dict) -> list[str]:
    header = ["Representation", "Model", "Micro F1", "Macro F1", "Weighted F1"]
    header += ["Paper model", "Paper micro", "Paper macro", "Paper weighted"]
    rows = []
    for r, entry in report["representations"].items():
        test = entry["selected_test"]
        ours = (
            [f"AlexNet{entry['selected_fold']}"]
            + [f"{test[a]['f1']:.3f}" for a in ("micro", "macro", "weighted")]
            if test
            else ["pending", "–", "–", "–"]
        )
        paper = PAPER_TABLE3.get(r)
        theirs = [paper["model"]] + [f"{paper[a]:.2f}" for a in ("micro", "macro", "weighted")]
        rows.append([r, *ours, *theirs])
    return _table(header, rows)


def _figure4(report: dict, figures: dict[str, Path]) -> list[str]:
    lines = []
    names = report["class_names"]
    for r, entry in report["representations"].items():
        test = entry["selected_test"]
        if not test:
            lines += [f"**{r}**: pending", ""]
            continue
        k = entry["selected_fold"]
        total = int(np.sum(test["confusion"]))
        lines += [
            f"**{r}**, AlexNet{k} on the {total} test ROIs (rows true, columns predicted)",
            "",
        ]
        rows = [[f"true {n}", *map(str, test["confusion"][i])] for i, n in enumerate(names)]
        lines += [*_table(["", *(f"pred {n}" for n in names)], rows), ""]
        per_class = test["per_class"]
        rows = [
            [n]
            + [f"{per_class[n][m]:.3f}" for m in ("precision", "recall", "f1")]
            + [str(per_class[n]["support"])]
            for n in names
        ]
        lines += [*_table(["Class", "Precision", "Recall", "F1", "Support"], rows), ""]
        if r in figures:
            lines += [f"![{r} confusion matrix]({figures[r].name})", ""]
    return lines


def _timings(report: dict) -> list[str]:
    header = ["Representation", "Fold", "Train ROIs", "Epochs", "Best epoch", "Stopped early"]
    header += ["Median s/epoch", "Training h", "Device"]
    rows = []
    for r, entry in report["representations"].items():
        for fold in entry["folds"]:
            if fold["status"] != "done":
                rows.append([r, str(fold["fold"]), *(["pending"] + ["–"] * 6)])
                continue
            median = fold["median_seconds_per_epoch"]
            rows.append(
                [
                    r,
                    str(fold["fold"]),
                    str(fold["train_rois"]),
                    str(fold["epochs_trained"]),
                    str(fold["best_epoch"]),
                    "yes" if fold["stopped_early"] else "no",
                    "–" if median is None else f"{median:.1f}",
                    f"{fold['training_seconds'] / 3600:.2f}",
                    f"{fold['device']}"
                    + (f", {fold['torch_threads']} threads" if fold["torch_threads"] else ""),
                ]
            )
    return _table(header, rows)


def _departures(train: dict, model: dict) -> str:
    """One sentence naming every setting that differs from the paper's named configuration."""
    paper = CONFIGS.get(train["name"])
    changed = [
        f"{label} {train[field]} (paper {getattr(paper, field)})"
        for field, label in (
            ("learning_rate", "learning rate"),
            ("batch_size", "batch"),
            ("epochs", "max epochs"),
        )
        if paper is not None and train[field] != getattr(paper, field)
    ]
    schedule = train.get("lr_schedule", "constant")
    if schedule != "constant":
        changed.append(f"learning-rate schedule {schedule} (paper constant)")
    if train.get("warmup_epochs", 0.0):
        changed.append(f"warmup {train['warmup_epochs']} epochs (paper none)")
    if model["width"] != 1.0:
        changed.append(f"AlexNet width {model['width']} (paper 1.0)")
    if not changed:
        return f"Settings: the paper's `{train['name']}` unchanged."
    return f"Departures from the paper's `{train['name']}`: {'; '.join(changed)}."


def render_markdown(report: dict, figures: dict[str, Path] | None = None) -> str:
    """``report.md`` text of a :func:`build_report` result."""
    settings = report["settings"]
    train, model = settings["train_config"], settings["model_config"]
    data = settings["dataset"]
    counts = ", ".join(f"{v} {k}" for k, v in data["class_counts"].items())
    fold_sizes = report["split_sizes"]
    lines = [
        "# ROI classifier: k-fold cross-validation (the paper's Tables 2 and 3, Figure 4)",
        "",
        f"Run folder: `{report['run_dir']}`. Data: {data['rois']} ROIs ({counts}), "
        f"{data['patients'] or 'no'} patient ids; the paper: {PAPER_DATASET}.",
        f"Split: {fold_sizes['test']} held-out test ROIs; per fold "
        f"{fold_sizes.get('fold1_train', '?')} train / {fold_sizes.get('fold1_val', '?')} "
        f"validation; {settings['cv_config']['n_folds']} folds, split seed "
        f"{settings['cv_config']['seed']}.",
        f"Training: `{train['name']}` (learning rate {train['learning_rate']}, batch "
        f"{train['batch_size']}, at most {train['epochs']} epochs, early-stopping patience "
        f"{train['patience']}, seed {train['seed']}); AlexNet width {model['width']}, "
        f"initial weights: {train['init_weights'] or 'He-normal, from scratch'}.",
        _departures(train, model),
        f"Selection: {report['selection']}. Prediction: {report['prediction']}.",
        "",
        "## Table 2 analogue: accuracy (%) of each fold's model",
        "",
        "`val`: on the fold's own validation ROIs; `test`: on the held-out test ROIs; "
        "`paper`: the paper's Table 2 (data unstated, see the notes). Bold: the selected fold.",
        "",
        *_table2(report),
        "",
        "## Table 3 analogue: F1 of each representation's selected model on the test ROIs",
        "",
        *_table3(report),
        "",
        "## Figure 4 analogue: confusion matrices of the selected models on the test ROIs",
        "",
        *_figure4(report, figures or {}),
        "## Training time",
        "",
        "Wall-clock seconds per epoch (training pass plus validation pass), from each fold's "
        "`fold.json`; training hours are the sum over the epochs run.",
        "",
        *_timings(report),
        "",
        "## Notes",
        "",
        *(f"- {note}" for note in report["notes"]),
    ]
    if figures is None:
        lines.append("- Figures were not drawn: matplotlib is not installed.")
    return "\n".join(lines) + "\n"


def draw_confusion_figure(test_report: dict, title: str, path: str | os.PathLike) -> Path:
    """PNG of a 3x3 confusion matrix (counts and row %) with per-class precision, recall, F1.

    Args:
        test_report: ``ClassificationReport.to_dict()`` of the selected model on the test ROIs.
        title: figure title. path: the PNG to write.
    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = test_report["class_names"]
    confusion = np.asarray(test_report["confusion"], dtype=np.int64)
    row_totals = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fraction = confusion / row_totals
    figure, (matrix_axes, table_axes) = plt.subplots(
        2, 1, figsize=(5.2, 6.4), gridspec_kw={"height_ratios": [3.2, 1.2]}
    )
    matrix_axes.imshow(fraction, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(len(names)):
        for j in range(len(names)):
            colour = "white" if fraction[i, j] > 0.6 else "black"
            text = f"{confusion[i, j]}\n{100 * fraction[i, j]:.1f}%"
            matrix_axes.text(j, i, text, ha="center", va="center", color=colour, fontsize=10)
    matrix_axes.set_xticks(range(len(names)), names)
    matrix_axes.set_yticks(range(len(names)), names)
    matrix_axes.set_xlabel("predicted class")
    matrix_axes.set_ylabel("true class")
    matrix_axes.set_title(f"{title}\ncells: count and % of the true class", fontsize=10)
    per_class = test_report["per_class"]
    cells = [
        [f"{per_class[n][m]:.3f}" for m in ("precision", "recall", "f1")]
        + [str(per_class[n]["support"])]
        for n in names
    ]
    table_axes.axis("off")
    table_axes.table(
        cellText=cells,
        rowLabels=names,
        colLabels=["precision", "recall", "F1", "support"],
        loc="center",
    )
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_report(run_dir: str | os.PathLike) -> ReportFiles:
    """Build the report from ``run_dir``'s files; write ``report.json``, ``report.md`` and the
    confusion PNGs (skipped, with a warning and a note in the markdown, without matplotlib)."""
    report = build_report(run_dir)
    run_dir = Path(run_dir)
    figures: dict[str, Path] | None = {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        logger.warning("matplotlib is not installed: the confusion-matrix PNGs are not drawn")
        figures = None
    for r, entry in report["representations"].items():
        if figures is None or not entry["selected_test"]:
            continue
        total = int(np.sum(entry["selected_test"]["confusion"]))
        title = f"{r}: AlexNet{entry['selected_fold']} on {total} test ROIs"
        figures[r] = draw_confusion_figure(
            entry["selected_test"], title, run_dir / f"confusion_{r}.png"
        )
    report["figures"] = {r: p.name for r, p in (figures or {}).items()}
    json_path = run_dir / "report.json"
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    markdown_path = run_dir / "report.md"
    markdown_path.write_text(render_markdown(report, figures))
    return ReportFiles(markdown_path, json_path, dict(figures or {}))
