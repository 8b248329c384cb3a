"""Training samples for the R-CNN: labelled proposals of whole mammograms, warped to crops.

For one image: read -> :func:`calcsdk.prepare.prepare_mammogram` (the SDK's own preprocessing)
-> EdgeBoxes proposals (:func:`calcsdk.proposals.propose`) -> R-CNN labels against the ground
truth mapped to the working frame -> :func:`calcsdk.prepare.roi_crops` (the SDK's own warp and
ROI representation). So the network is trained on exactly the crops it sees in deployment.

Crops are kept as float16 (N, 1, S, S) to halve memory; the networks consume float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calcsdk.boxes import clip_boxes, scale_boxes
from calcsdk.image import read_mammogram
from calcsdk.prepare import WorkingImage, prepare_mammogram, roi_crops
from calcsdk.proposals import ProposalConfig, propose
from calcsdk.training.datasets.record import ImageRecord
from calcsdk.training.rcnn.labels import IGNORE, label_proposals

BACKGROUND = 2  # the ROI classifier's "normal" class doubles as R-CNN background


@dataclass(frozen=True)
class SampleConfig:
    working_spacing_mm: float = 0.1  # must equal the bundle's working spacing
    fallback_spacing_mm: float | None = None  # for files without spacing
    representation: str = "grayscale"  # the paper's best ROI representation
    crop_size: int = 227  # AlexNet input
    context_pad: int = 16  # R-CNN context padding
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    negatives_per_image: int = 48  # background proposals kept per image (random)
    jitter_per_gt: int = 4  # extra positives per GT: jittered copies with IoU >= 0.5
    seed: int = 0


@dataclass(frozen=True)
class ImageSamples:
    """Labelled crops of one image. boxes (N, 4) float32 working frame; labels (N,) int64
    (0 malignant, 1 benign, 2 background); is_gt (N,) bool (the ground-truth box itself);
    crops (N, 1, S, S) float16; weights (N,) float32: how many of the image's proposals each
    sample stands for (1 for positives; background proposals / background kept for background,
    so that weighted statistics match the deployed proposal mix)."""

    image_index: int
    boxes: np.ndarray
    labels: np.ndarray
    is_gt: np.ndarray
    crops: np.ndarray
    weights: np.ndarray | None = None


def working_ground_truth(record: ImageRecord, working: WorkingImage) -> np.ndarray:
    """The record's boxes (original pixels) in the working frame, clipped."""
    sy, sx = working.scale
    boxes = scale_boxes(record.boxes, sx, sy)
    return clip_boxes(boxes, *working.image01.shape)


def jitter_boxes(boxes: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """``copies`` random shifts/rescalings of each box (up to 10% of its size), (M*copies, 4)."""
    if copies == 0 or len(boxes) == 0:
        return np.zeros((0, 4), np.float32)
    b = np.repeat(np.asarray(boxes, np.float32), copies, axis=0)
    size = b[:, 2:] - b[:, :2]
    shift = rng.uniform(-0.1, 0.1, size=(len(b), 2)) * size
    grow = rng.uniform(-0.1, 0.1, size=(len(b), 2)) * size / 2
    return np.concatenate([b[:, :2] + shift - grow, b[:, 2:] + shift + grow], axis=1).astype(
        np.float32
    )


def image_proposals(
    record: ImageRecord, config: SampleConfig
) -> tuple[WorkingImage, np.ndarray, np.ndarray, np.ndarray]:
    """``record``'s image in the working frame, its EdgeBoxes proposals ((N, 4) float32 xyxy,
    working frame), its ground-truth boxes ((M, 4) float32, working frame) and their labels
    ((M,) int64, 0 malignant / 1 benign): what the deployed pipeline sees, plus the truth."""
    mammogram = read_mammogram(record.image_path, spacing_mm=record.spacing_mm)
    working = prepare_mammogram(mammogram, config.working_spacing_mm, config.fallback_spacing_mm)
    proposals, _ = propose(working.image01, working.mask, working.spacing_mm, config.proposals)
    gt = working_ground_truth(record, working)
    return working, proposals, gt, np.asarray(record.labels, np.int64)


def image_samples(index: int, record: ImageRecord, config: SampleConfig) -> ImageSamples:
    """Proposals of ``record``'s image, labelled, subsampled and warped (see module doc)."""
    rng = np.random.default_rng([config.seed, index])
    working, proposals, gt, gt_labels = image_proposals(record, config)
    jittered = clip_boxes(jitter_boxes(gt, config.jitter_per_gt, rng), *working.image01.shape)
    candidates = np.concatenate([proposals, jittered]).astype(np.float32)
    labels, _ = label_proposals(candidates, gt, gt_labels, background_label=BACKGROUND)
    positives = np.flatnonzero((labels != IGNORE) & (labels != BACKGROUND))
    background = np.flatnonzero(labels == BACKGROUND)
    background_total = len(background)
    background = rng.permutation(background)[: config.negatives_per_image]
    keep = np.concatenate([positives, background])
    boxes = np.concatenate([gt, candidates[keep]]).astype(np.float32)
    labels = np.concatenate([gt_labels, labels[keep]])
    is_gt = np.concatenate([np.ones(len(gt), bool), np.zeros(len(keep), bool)])
    weights = np.ones(len(boxes), np.float32)
    weights[labels == BACKGROUND] = background_total / max(len(background), 1)
    valid = (boxes[:, 2] > boxes[:, 0] + 1) & (boxes[:, 3] > boxes[:, 1] + 1)
    crops = roi_crops(
        working.image01,
        boxes[valid],
        representation=config.representation,
        size=config.crop_size,
        context_pad=config.context_pad,
    ).astype(np.float16)
    return ImageSamples(index, boxes[valid], labels[valid], is_gt[valid], crops, weights[valid])
