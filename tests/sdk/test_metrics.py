"""Detection metrics: hand-computed cases, and cross-checks against pycocotools,
faster-coco-eval and an independent VOC-style reference written here.

Neither pycocotools nor faster-coco-eval offers VOC all-point interpolation (both sample the
precision envelope at ``params.recThrs``, 101 points by default), so "all-point" is checked
against the plain VOC devkit reference below, fed both with our matching and with
pycocotools' own matches.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging

import numpy as np
import pytest
from faster_coco_eval import COCO as FastCOCO
from faster_coco_eval import COCOeval_faster
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from calcsdk.detections import Detections, GroundTruth
from calcsdk.froc import froc
from calcsdk.metrics import (
    average_precision,
    detection_confusion_matrix,
    evaluate_detections,
    match_detections,
)

NAMES = ("malignant", "benign")


def dets(boxes, scores, labels, names=NAMES) -> Detections:
    return Detections(
        np.asarray(boxes, float).reshape(-1, 4), scores, np.asarray(labels, int), names
    )


def truth(boxes, labels, names=NAMES) -> GroundTruth:
    return GroundTruth(np.asarray(boxes, float).reshape(-1, 4), np.asarray(labels, int), names)


# --- random cases shared by the cross-checks ------------------------------------------------
def random_case(seed: int) -> tuple[list[Detections], list[GroundTruth]]:
    """A few images, 2 classes, GT boxes, jittered near-duplicates, random boxes, some ties."""
    rng = np.random.default_rng(seed)
    preds, truths = [], []
    for _ in range(rng.integers(1, 6)):
        n_gt = int(rng.integers(0, 5))
        xy = rng.uniform(0, 200, (n_gt, 2))
        gt_boxes = np.concatenate([xy, xy + rng.uniform(8, 40, (n_gt, 2))], axis=1)
        gt_labels = rng.integers(0, 2, n_gt)
        boxes, labels = [], []
        for box, label in zip(gt_boxes, gt_labels):
            for _ in range(rng.integers(0, 3)):  # near-duplicates, sometimes of the other class
                boxes.append(box + rng.normal(0, 0.12 * (box[2] - box[0]), 4))
                labels.append(label if rng.random() < 0.8 else 1 - label)
        for _ in range(rng.integers(0, 4)):  # false alarms
            x, y = rng.uniform(0, 200, 2)
            boxes.append([x, y, x + rng.uniform(5, 40), y + rng.uniform(5, 40)])
            labels.append(int(rng.integers(0, 2)))
        boxes = np.clip(np.asarray(boxes, float).reshape(-1, 4), 0, None)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = rng.random(len(boxes))
        if seed % 3 == 0:
            scores = np.round(scores, 1)  # ties within and across images
        preds.append(dets(boxes, scores, labels))
        truths.append(truth(gt_boxes, gt_labels))
    return preds, truths


def coco_datasets(preds, truths) -> tuple[dict, list[dict]]:
    images = [{"id": i + 1, "width": 512, "height": 512} for i in range(len(truths))]
    annotations = []
    for i, gt in enumerate(truths):
        for box, label in zip(gt.boxes.astype(float), gt.labels):
            x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                 "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            )  # fmt: skip
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(NAMES)]
    results = [r for i, p in enumerate(preds) for r in p.to_coco_results(i + 1)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def run_coco(library: str, preds, truths) -> tuple[np.ndarray, np.ndarray, COCOeval]:
    """Per-class AP (from eval['precision']) and recall at IoU 0.5, maxDets large, area all."""
    dataset, results = coco_datasets(preds, truths)
    with contextlib.redirect_stdout(io.StringIO()):
        if library == "pycocotools":
            gt = COCO()
            gt.dataset = json.loads(json.dumps(dataset))
            gt.createIndex()
        else:
            gt = FastCOCO(json.loads(json.dumps(dataset)))
        if results:
            dt = gt.loadRes(json.loads(json.dumps(results)))
        else:  # loadRes cannot take an empty list
            dt = COCO() if library == "pycocotools" else FastCOCO()
            dt.dataset = {**dataset, "annotations": []}
            dt.createIndex()
        if library == "pycocotools":
            evaluator = COCOeval(gt, dt, iouType="bbox")
        else:
            evaluator = COCOeval_faster(gt, dt, iouType="bbox", print_function=logging.debug)
        evaluator.params.iouThrs = np.array([0.5])
        evaluator.params.maxDets = [10_000]
        evaluator.params.areaRng = [[0, 1e10]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][0, :, :, 0, 0]  # (R, K)
    ap = np.array([p.mean() if (p > -1).all() else np.nan for p in precision.T])
    recall = evaluator.eval["recall"][0, :, 0, 0]
    return ap, np.where(recall > -1, recall, np.nan), evaluator


CROSS_CHECK_SEEDS = list(range(20))


@pytest.mark.parametrize("library", ["pycocotools", "faster-coco-eval"])
@pytest.mark.parametrize("seed", CROSS_CHECK_SEEDS)
def test_coco101_ap_and_recall_match_coco_references(seed, library):
    preds, truths = random_case(seed)
    coco_ap, coco_recall, _ = run_coco(library, preds, truths)
    report = evaluate_detections(preds, truths, iou_threshold=0.5, ap_method="coco101")
    ours_ap = np.array([m.ap for m in report.per_class])
    ours_recall = np.array([m.recall if m.n_truths else np.nan for m in report.per_class])
    np.testing.assert_allclose(ours_ap, coco_ap, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(ours_recall, coco_recall, atol=1e-6, equal_nan=True)


def test_random_cases_cover_the_degenerate_situations():
    """The seeds above must include images without GT, without detections, and score ties."""
    images = [(p, t) for seed in CROSS_CHECK_SEEDS for p, t in zip(*random_case(seed))]
    assert any(len(t) == 0 for _, t in images) and any(len(p) == 0 for p, _ in images)
    assert any(len(np.unique(p.scores)) < len(p) for p, _ in images)
    reports = [evaluate_detections(*random_case(seed)) for seed in CROSS_CHECK_SEEDS]
    assert any(0 < m.tp < m.n_truths for r in reports for m in r.per_class)
    assert any(np.isnan(m.ap) for r in reports for m in r.per_class)  # a class without GT


# --- an independent VOC-style reference for "all-point" -----------------------------------
def voc_devkit_ap(tp_flags_in_rank_order: list[bool], n_truths: int) -> float:
    """VOC2010+ ``VOCap`` from the devkit, in plain Python loops."""
    tp = fp = 0
    rec, prec = [], []
    for hit in tp_flags_in_rank_order:
        tp, fp = tp + hit, fp + (not hit)
        rec.append(tp / n_truths)
        prec.append(tp / (tp + fp))
    mrec, mpre = [0.0, *rec, 1.0], [0.0, *prec, 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    return sum(
        (mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]
    )


def plain_iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def reference_all_point_ap(preds, truths, label: int, threshold: float = 0.5) -> float:
    """Greedy matching per image in loops, then VOC integration over the global ranking."""
    ranked = []  # (score, image order, detection order, hit)
    n_truths = 0
    for image, (p, t) in enumerate(zip(preds, truths)):
        gts = [list(map(float, b)) for b, lab in zip(t.boxes, t.labels) if lab == label]
        n_truths += len(gts)
        mine = [(float(s), j, list(map(float, b))) for j, (b, s, lab)
                in enumerate(zip(p.boxes, p.scores, p.labels)) if lab == label]  # fmt: skip
        taken = [False] * len(gts)
        for score, j, box in sorted(mine, key=lambda d: (-d[0], d[1])):
            best, best_iou = -1, threshold
            for g, gt_box in enumerate(gts):
                iou = plain_iou(box, gt_box)
                if not taken[g] and iou >= best_iou:
                    best, best_iou = g, iou
            if best >= 0:
                taken[best] = True
            ranked.append((-score, image, j, best >= 0))
    if n_truths == 0:
        return float("nan")
    return voc_devkit_ap([hit for *_, hit in sorted(ranked)], n_truths)


@pytest.mark.parametrize("seed", CROSS_CHECK_SEEDS)
def test_all_point_ap_matches_independent_voc_reference(seed):
    preds, truths = random_case(seed)
    report = evaluate_detections(preds, truths, ap_method="all-point")
    expected = [reference_all_point_ap(preds, truths, k) for k in range(len(NAMES))]
    np.testing.assert_allclose(
        [m.ap for m in report.per_class], expected, atol=1e-9, equal_nan=True
    )


@pytest.mark.parametrize("seed", CROSS_CHECK_SEEDS[::4])
def test_all_point_ap_from_pycocotools_matches(seed):
    """VOC integration of pycocotools' own per-detection matches equals our all-point AP."""
    preds, truths = random_case(seed)
    _, _, evaluator = run_coco("pycocotools", preds, truths)
    report = evaluate_detections(preds, truths, ap_method="all-point")
    for k, metrics in enumerate(report.per_class):
        images = [e for e in evaluator.evalImgs if e is not None and e["category_id"] == k + 1]
        scores = np.concatenate([[], *(e["dtScores"] for e in images)])
        hits = np.concatenate([np.zeros(0, bool), *(e["dtMatches"][0] > 0 for e in images)])
        if metrics.n_truths == 0:
            assert np.isnan(metrics.ap)
            continue
        ranked = hits[np.argsort(-scores, kind="mergesort")]
        assert metrics.ap == pytest.approx(voc_devkit_ap(list(ranked), metrics.n_truths), abs=1e-9)


# --- average_precision by hand ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("recall", "precision", "all_point", "coco101"),
    [
        ([], [], 0.0, 0.0),  # no detections
        ([0.0, 0.0], [0.0, 0.0], 0.0, 0.0),  # only false positives
        ([1.0], [1.0], 1.0, 1.0),  # one perfect detection
        ([0.5], [1.0], 0.5, 51 / 101),  # half the lesions, then nothing
        ([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], 0.5 + 0.5 * 2 / 3, (51 + 50 * 2 / 3) / 101),
        ([0.0, 0.5, 1.0], [0.0, 0.5, 2 / 3], 2 / 3, 2 / 3),  # envelope lifts the early FP
        (
            [0.25, 0.5, 0.5, 0.75],
            [1.0, 1.0, 2 / 3, 0.75],
            0.5 + 0.25 * 0.75,
            (51 + 25 * 0.75) / 101,
        ),
    ],
)
def test_average_precision_by_hand(recall, precision, all_point, coco101):
    assert average_precision(recall, precision, "all-point") == pytest.approx(all_point, abs=1e-12)
    assert average_precision(recall, precision, "coco101") == pytest.approx(coco101, abs=1e-12)


@pytest.mark.parametrize(
    ("recall", "precision", "method", "error"),
    [
        ([0.5], [1.0], "11-point", ValueError),
        ([0.5, 0.4], [1.0, 1.0], "all-point", ValueError),  # recall going down
        ([0.5], [1.0, 1.0], "all-point", ValueError),
        ([1.5], [1.0], "all-point", ValueError),
        ([np.nan], [1.0], "coco101", ValueError),
    ],
)
def test_average_precision_rejects(recall, precision, method, error):
    with pytest.raises(error):
        average_precision(recall, precision, method)


# --- matching ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("det_boxes", "scores", "gt_boxes", "expected"),
    [
        ([], [], [[0, 0, 10, 10]], []),
        ([[0, 0, 10, 10]], [0.9], [], [-1]),
        # the higher score takes the GT even when listed second
        ([[0, 0, 10, 9], [0, 0, 10, 10]], [0.5, 0.9], [[0, 0, 10, 10]], [-1, 0]),
        # a detection takes the best still-free GT; the second falls back to the other GT
        ([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [[1, 0, 11, 10], [0, 0, 10, 10]], [1, 0]),
        # equal IoU with two GTs: COCO keeps the later GT
        ([[5, 0, 15, 10]], [0.9], [[0, 0, 10, 10], [10, 0, 20, 10]], [-1]),  # IoU 1/3 < 0.5
        ([[2, 0, 12, 10]], [0.9], [[0, 0, 12, 10], [2, 0, 14, 10]], [1]),
        # equal scores: the earlier detection goes first
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.7, 0.7], [[0, 0, 10, 10]], [0, -1]),
        # IoU exactly at the threshold matches
        ([[0, 0, 10, 10]], [0.9], [[0, 0, 20, 10]], [0]),
    ],
)
def test_match_detections(det_boxes, scores, gt_boxes, expected):
    matched = match_detections(
        np.array(det_boxes, float), np.array(scores), np.array(gt_boxes, float)
    )
    np.testing.assert_array_equal(matched, expected)


@pytest.mark.parametrize("library", ["pycocotools", "faster-coco-eval"])
def test_tie_rules_agree_with_coco_references(library):
    """Equal scores across images and equal IoUs with two GTs.

    In image 0 the first detection has IoU 5/6 with both GTs; COCO gives it the later GT, so the
    second detection (IoU 0.5 with that GT only) finds nothing: 2 of 3 lesions are found, where
    taking the first GT would find all 3. The 0.5 scores tie within and across images.
    """
    preds = [
        dets([[2, 0, 12, 10], [6, 0, 18, 10], [40, 40, 50, 50]], [0.6, 0.5, 0.5], [0, 0, 0]),
        dets([[30, 30, 40, 40], [0, 0, 10, 10]], [0.5, 0.5], [0, 0]),
    ]
    truths = [truth([[0, 0, 12, 10], [2, 0, 14, 10]], [0, 0]), truth([[0, 0, 10, 10]], [0])]
    coco_ap, coco_recall, _ = run_coco(library, preds, truths)
    report = evaluate_detections(preds, truths, ap_method="coco101")
    assert report["malignant"].recall == pytest.approx(2 / 3, abs=1e-12)
    assert report["malignant"].recall == pytest.approx(coco_recall[0], abs=1e-12)
    assert report["malignant"].ap == pytest.approx(coco_ap[0], abs=1e-12)


# --- evaluate_detections ------------------------------------------------------------------
EMPTY = dets([], [], [])
NO_GT = truth([], [])
GT_MB = truth([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])


@pytest.mark.parametrize(
    ("preds", "truths", "conf", "tp", "fp", "fn", "ap"),
    [
        ([], [], None, [0, 0], [0, 0], [0, 0], [np.nan, np.nan]),  # no images
        ([EMPTY], [NO_GT], None, [0, 0], [0, 0], [0, 0], [np.nan, np.nan]),
        ([EMPTY], [GT_MB], None, [0, 0], [0, 0], [1, 1], [0.0, 0.0]),  # no detections
        ([dets([[0, 0, 10, 10]], [0.9], [0])], [NO_GT], None, [0, 0], [1, 0], [0, 0], [np.nan] * 2),
        # right box, wrong class: FP of benign, FN of malignant
        ([dets([[0, 0, 10, 10]], [0.9], [1])], [truth([[0, 0, 10, 10]], [0])], None, [0, 0], [0, 1], [1, 0], [0.0, np.nan]),
        # "CF 0.5": the 0.3 detection is not counted, but AP still ranks it
        ([dets([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.3], [0, 1])], [GT_MB], 0.5, [1, 0], [0, 0], [0, 1], [1.0, 1.0]),
        ([dets([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.3], [0, 1])], [GT_MB], None, [1, 1], [0, 0], [0, 0], [1.0, 1.0]),
        # score exactly at the threshold is counted
        ([dets([[0, 0, 10, 10]], [0.5], [0])], [GT_MB], 0.5, [1, 0], [0, 0], [0, 1], [1.0, 0.0]),
        # duplicates: the second detection of a found lesion is a false positive
        ([dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])], [GT_MB], None, [1, 0], [1, 0], [0, 1], [1.0, 0.0]),
        # an empty image among others changes nothing but n_images
        ([EMPTY, dets([[0, 0, 10, 10]], [0.9], [0])], [NO_GT, GT_MB], None, [1, 0], [0, 0], [0, 1], [1.0, 0.0]),
    ],
)  # fmt: skip
def test_evaluate_detections_counts(preds, truths, conf, tp, fp, fn, ap):
    report = evaluate_detections(preds, truths, conf_threshold=conf)
    assert [m.tp for m in report.per_class] == tp
    assert [m.fp for m in report.per_class] == fp
    assert [m.fn for m in report.per_class] == fn
    np.testing.assert_allclose([m.ap for m in report.per_class], ap, equal_nan=True)
    assert report.n_images == len(preds)
    json.dumps(report.to_dict(), allow_nan=False)  # JSON-safe even with undefined AP


def test_evaluate_detections_averages_by_hand():
    """malignant: 2 TP 1 FP 0 FN; benign: 1 TP 0 FP 3 FN (GT counts 2 and 4)."""
    gt = truth([[0, 0, 10, 10], [20, 0, 30, 10], [0, 40, 10, 50], [20, 40, 30, 50], [40, 40, 50, 50], [60, 40, 70, 50]],
               [0, 0, 1, 1, 1, 1])  # fmt: skip
    pred = dets(
        [[0, 0, 10, 10], [20, 0, 30, 10], [80, 80, 90, 90], [0, 40, 10, 50]],
        [0.9, 0.8, 0.7, 0.6],
        [0, 0, 0, 1],
    )
    report = evaluate_detections([pred], [gt], conf_threshold=0.5)
    assert report.micro.precision == pytest.approx(3 / 4)
    assert report.micro.recall == pytest.approx(3 / 6)
    assert report.micro.f1 == pytest.approx(3 / (3 + 0.5 * (1 + 3)))  # the paper's Table 1
    assert report.macro.f1 == pytest.approx((0.8 + 0.4) / 2)
    assert report.weighted.f1 == pytest.approx((2 * 0.8 + 4 * 0.4) / 6)
    assert report.weighted.recall == pytest.approx((2 * 1.0 + 4 * 0.25) / 6)
    assert report.mean_average_precision == pytest.approx((1.0 + 0.25) / 2)
    assert report.to_dict()["per_class"]["benign"]["recall"] == pytest.approx(0.25)


def test_single_class_model():
    names = ("calcification",)
    pred = dets([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 0], names)
    report = evaluate_detections([pred], [truth([[0, 0, 10, 10]], [0], names)])
    assert [m.class_name for m in report.per_class] == ["calcification"]
    assert (report["calcification"].tp, report["calcification"].fp) == (1, 1)
    assert report.mean_average_precision == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("preds", "truths", "kwargs", "error"),
    [
        ([EMPTY], [], {}, ValueError),
        ([EMPTY], [dets([], [], [])], {}, TypeError),
        ([EMPTY], [truth([], [], ("a",))], {}, ValueError),
        ([EMPTY], [NO_GT], {"iou_threshold": 0.0}, ValueError),
        ([EMPTY], [NO_GT], {"conf_threshold": 1.5}, ValueError),
        ([EMPTY], [NO_GT], {"ap_method": "voc07"}, ValueError),
    ],
)
def test_evaluate_detections_rejects(preds, truths, kwargs, error):
    with pytest.raises(error):
        evaluate_detections(preds, truths, **kwargs)


# --- FROC -----------------------------------------------------------------------------------
def test_froc_by_hand():
    """2 images, 3 lesions. Ranked: TP 0.9, FP 0.8, TP 0.7, FP 0.6, FP 0.6, TP (wrong class) 0.5."""
    truths = [truth([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1]), truth([[0, 0, 10, 10]], [1])]
    preds = [
        dets([[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 1]),
        dets([[40, 40, 50, 50], [60, 60, 70, 70], [0, 0, 10, 10]], [0.6, 0.6, 0.5], [1, 1, 0]),
    ]
    curve = froc(preds, truths, fp_per_image=(0.25, 0.5, 1, 1.5, 8))
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.8, 0.7, 0.6, 0.5], rtol=1e-6)
    np.testing.assert_allclose(curve.sensitivity, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(curve.fp_per_image, [0, 0.5, 0.5, 1.5, 1.5])
    np.testing.assert_allclose(curve.sensitivity_at, [1 / 3, 2 / 3, 2 / 3, 1.0, 1.0])
    assert curve.mean_sensitivity == pytest.approx(np.mean([1 / 3, 2 / 3, 2 / 3, 1, 1]))
    benign = froc(preds, truths, fp_per_image=(0.25, 1, 8), class_name="benign")
    assert benign.n_lesions == 2  # class 1 only: TP 0.7, FP 0.6, FP 0.6
    np.testing.assert_allclose(benign.sensitivity, [0.5, 0.5])
    np.testing.assert_allclose(benign.sensitivity_at, [0.5, 0.5, 0.5])
    json.dumps(curve.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("preds", "truths", "sensitivity_at"),
    [
        ([EMPTY], [GT_MB], [0.0, 0.0]),  # no detections: nothing found
        ([dets([[0, 0, 10, 10]], [0.9], [0])], [NO_GT], [np.nan, np.nan]),  # no lesions: undefined
        # two false alarms score above the only hit, so it is reached at 2 FP/image
        ([dets([[50, 50, 60, 60], [70, 70, 80, 80], [0, 0, 10, 10]], [0.9, 0.8, 0.1], [0, 0, 0])], [GT_MB], [0.0, 0.5]),
    ],
)  # fmt: skip
def test_froc_degenerate(preds, truths, sensitivity_at):
    curve = froc(preds, truths, fp_per_image=(1, 2))
    np.testing.assert_allclose(curve.sensitivity_at, sensitivity_at, equal_nan=True)
    json.dumps(curve.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "kwargs", [{"fp_per_image": ()}, {"fp_per_image": (0, 1)}, {"class_name": "normal"}]
)
def test_froc_rejects(kwargs):
    with pytest.raises(ValueError):
        froc([EMPTY], [GT_MB], **kwargs)
    with pytest.raises(ValueError):
        froc([], [])


def test_froc_leaves_caller_rates_writable():
    rates = np.array([0.5, 1.0])
    froc([EMPTY], [GT_MB], fp_per_image=rates)
    rates[0] = 2.0  # would raise if froc had frozen the caller's array


# --- detection confusion matrix -----------------------------------------------------------
@pytest.mark.parametrize(
    ("preds", "truths", "conf", "expected"),
    [
        ([EMPTY], [NO_GT], 0.5, [[0, 0, 0], [0, 0, 0], [0, 0, 0]]),
        ([EMPTY], [GT_MB], 0.5, [[0, 0, 1], [0, 0, 1], [0, 0, 0]]),
        # malignant found as malignant, benign found as malignant, one benign false alarm,
        # and a 0.2 detection dropped at CF 0.5
        ([dets([[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 80, 80], [90, 90, 99, 99]], [0.9, 0.8, 0.7, 0.2], [0, 0, 1, 0])],
         [GT_MB], 0.5, [[1, 0, 0], [1, 0, 0], [0, 1, 0]]),
        ([dets([[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 80, 80], [90, 90, 99, 99]], [0.9, 0.8, 0.7, 0.2], [0, 0, 1, 0])],
         [GT_MB], None, [[1, 0, 0], [1, 0, 0], [1, 1, 0]]),
        # class-agnostic matching: a wrong-class detection still claims the lesion
        ([dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [1, 0])], [truth([[0, 0, 10, 10]], [0])], 0.5,
         [[0, 1, 0], [0, 0, 0], [1, 0, 0]]),
    ],
)  # fmt: skip
def test_detection_confusion_matrix(preds, truths, conf, expected):
    result = detection_confusion_matrix(preds, truths, iou_threshold=0.5, conf_threshold=conf)
    np.testing.assert_array_equal(result.matrix, expected)
    assert result.labels == ("malignant", "benign", "background")
    n_counted = sum(int(np.count_nonzero(p.scores >= (conf or 0))) for p in preds)
    n_matched = result.matrix[:2, :2].sum()  # each match is one detection and one lesion
    assert result.matrix.sum() == n_counted + sum(len(t) for t in truths) - n_matched
    json.dumps(result.to_dict(), allow_nan=False)
