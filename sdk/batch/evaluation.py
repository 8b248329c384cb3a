"""The ``calcsdk eval`` report: the paper's Tables 5/6 analogues and FROC, from paired images.

Every figure comes from :mod:`calcsdk.metrics` and :mod:`calcsdk.froc` (one implementation):

* ``tables["no_cf"]`` / ``tables["cf_0.5"]``: per-class TP/FP/FN, precision, recall, F1 and AP,
  with mAP and micro/macro/weighted averages, counting all detections ("No CF") or those with
  score >= 0.5 ("CF 0.5"); AP always ranks all detections.
* ``froc``: lesion sensitivity at 0.5, 1 and 2 false positives per image, class-agnostic
  (``"all"``) and per class.
* ``confusion_matrix``: class-agnostic matching at CF 0.5 and No CF, with a background row/column.
* ``by_density``: the same tables and FROC on the images of each ACR density, when known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from calcsdk.detections import Detections, GroundTruth
from calcsdk.froc import froc
from calcsdk.metrics import detection_confusion_matrix, evaluate_detections

__all__ = ["CONF_SETTINGS", "FROC_RATES", "evaluate", "format_report"]

FROC_RATES = (0.5, 1.0, 2.0)
#: report key -> confidence threshold (None: every detection counts)
CONF_SETTINGS = {"no_cf": None, "cf_0.5": 0.5}
_TITLES = {"no_cf": "No CF", "cf_0.5": "CF 0.5"}


def _froc_summary(preds, truths, iou: float, class_name: str | None) -> dict[str, Any]:
    curve = froc(preds, truths, iou_threshold=iou, fp_per_image=FROC_RATES, class_name=class_name)
    as_dict = curve.to_dict()
    return {
        "n_lesions": curve.n_lesions,
        "sensitivity_at": dict(zip(("0.5", "1", "2"), as_dict["sensitivity_at"])),
        "mean_sensitivity": as_dict["mean_sensitivity"],
        "curve": {k: as_dict[k] for k in ("thresholds", "sensitivity", "fp_per_image")},
    }


def _tables_and_froc(preds, truths, iou: float, class_names: Sequence[str]) -> dict[str, Any]:
    tables = {
        key: evaluate_detections(preds, truths, iou_threshold=iou, conf_threshold=conf).to_dict()
        for key, conf in CONF_SETTINGS.items()
    }
    curves = {"all": _froc_summary(preds, truths, iou, None)}
    curves.update({name: _froc_summary(preds, truths, iou, name) for name in class_names})
    return {"n_images": len(preds), "tables": tables, "froc": curves}


def evaluate(
    preds: Sequence[Detections],
    truths: Sequence[GroundTruth],
    densities: Sequence[str | None] = (),
    *,
    iou: float = 0.5,
) -> dict[str, Any]:
    """The JSON-safe report (see the module docstring); needs at least one image."""
    if not preds:
        raise ValueError("evaluate needs at least one image")
    class_names = truths[0].class_names
    report = {"iou_threshold": iou, "class_names": list(class_names)}
    report.update(_tables_and_froc(preds, truths, iou, class_names))
    report["n_lesions"] = {
        name: int(sum((t.labels == k).sum() for t in truths)) for k, name in enumerate(class_names)
    }
    report["confusion_matrix"] = {
        key: detection_confusion_matrix(preds, truths, iou, conf).to_dict()
        for key, conf in CONF_SETTINGS.items()
    }
    by_density = {}
    for density in sorted({d for d in densities if d}):
        keep = [i for i, d in enumerate(densities) if d == density]
        by_density[density] = _tables_and_froc(
            [preds[i] for i in keep], [truths[i] for i in keep], iou, class_names
        )
    report["by_density"] = by_density
    return report


def _fmt(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.3f}"


def _tables_text(part: dict[str, Any], class_names: Sequence[str]) -> list[str]:
    header = f"{'':<10}" + "".join(f"| {_TITLES[key]:<34}" for key in CONF_SETTINGS)
    columns = f"{'class':<10}" + f"| {'P':>7}{'R':>7}{'F1':>7}{'AP':>7}{'TP/FP':>7} " * 2
    lines = [header, columns]
    rows = [*class_names, "micro", "macro", "weighted"]
    for row in rows:
        cells = []
        for key in CONF_SETTINGS:
            table = part["tables"][key]
            if row in table["per_class"]:
                m = table["per_class"][row]
                tpfp = f"{m['tp']}/{m['fp']}"
                cells.append(
                    f"| {_fmt(m['precision'])}{_fmt(m['recall'])}{_fmt(m['f1'])}{_fmt(m['ap'])}{tpfp:>7} "
                )
            else:
                m = table[row]
                cells.append(f"| {_fmt(m['precision'])}{_fmt(m['recall'])}{_fmt(m['f1'])}{'':>14} ")
        lines.append(f"{row:<10}" + "".join(cells))
    mean_ap = part["tables"]["no_cf"]["mean_average_precision"]
    lines.append(f"mAP {_fmt(mean_ap, 0).strip()}  (AP ranks all detections, whatever the CF)")
    return lines


def _froc_text(part: dict[str, Any]) -> list[str]:
    lines = [f"{'FROC':<10}{'lesions':>8}" + "".join(f"{f'{r:g} FP/img':>11}" for r in FROC_RATES)]
    for name, curve in part["froc"].items():
        values = "".join(_fmt(v, 11) for v in curve["sensitivity_at"].values())
        lines.append(f"{name:<10}{curve['n_lesions']:>8}{values}")
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The report as readable text tables."""
    names = report["class_names"]
    lesions = ", ".join(f"{n} {c}" for n, c in report["n_lesions"].items())
    lines = [
        f"{report['n_images']} images, {sum(report['n_lesions'].values())} lesions ({lesions}), "
        f"IoU >= {report['iou_threshold']:g}",
        "",
        *_tables_text(report, names),
        "",
        *_froc_text(report),
    ]
    for key in CONF_SETTINGS:
        matrix = report["confusion_matrix"][key]
        labels = matrix["labels"]
        lines += ["", f"confusion matrix, {_TITLES[key]} (rows truth, columns prediction)"]
        lines.append(f"{'':<11}" + "".join(f"{label:>11}" for label in labels))
        for label, row in zip(labels, matrix["matrix"]):
            lines.append(f"{label:<11}" + "".join(f"{v:>11}" for v in row))
    if report["by_density"]:
        lines += ["", "by density (CF 0.5 micro F1, mAP, sensitivity at 1 FP/image)"]
        lines.append(f"{'density':<10}{'images':>8}{'F1':>8}{'mAP':>8}{'sens@1':>8}")
        for density, part in report["by_density"].items():
            f1 = part["tables"]["cf_0.5"]["micro"]["f1"]
            mean_ap = part["tables"]["no_cf"]["mean_average_precision"]
            sensitivity = part["froc"]["all"]["sensitivity_at"]["1"]
            lines.append(
                f"{density:<10}{part['n_images']:>8}{_fmt(f1, 8)}{_fmt(mean_ap, 8)}{_fmt(sensitivity, 8)}"
            )
    return "\n".join(lines)
