"""Hard-negative mining over every proposal of training images, for the R-CNN's SVM head.

The training samples (:mod:`.samples`) keep ``negatives_per_image`` random background proposals
per image. Of the ~2,000 proposals an image has at deployment, those random few rarely include
the background that the head scores highest: dense tissue, vessels, parts of a cluster. R-CNN
mined its SVM negatives over all proposals of all training images. This module does the same
in one pass per image.
1. Every background proposal of the image (IoU < 0.3 with every cluster, as in
   :func:`.labels.label_proposals`) is warped with the SDK's own :func:`calcsdk.prepare.roi_crops`.
2. The fine-tuned AlexNet gives its fc7.
3. The image keeps its ``per_image`` proposals with the highest margin under a first head.

``fit_rcnn`` then refits the SVMs with these in the negative pool.

Why (BENCHMARKS.md, "Where the R-CNN's scores fail"): a simulation used the session-7 RCNN-1
features. Its mining pool was all background proposals of 300 validation images; 133 other
validation images calibrated; the test set was the 376 held-out images. Mining raised test mAP
from 0.149 to 0.170 at the default C. With C 1e-4 it reached 0.188, and FROC sensitivity at 0.5 FP
per image went from 0.20 to 0.28.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from calcsdk.prepare import roi_crops
from calcsdk.training.classifier.inference import predict
from calcsdk.training.datasets.record import ImageRecord
from calcsdk.training.rcnn.head import LinearSvmHead
from calcsdk.training.rcnn.labels import label_proposals
from calcsdk.training.rcnn.samples import BACKGROUND, SampleConfig, image_proposals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningConfig:
    images: int = 300  # training images whose every proposal is scored (the first N, in order)
    per_image: int = 500  # hardest background proposals kept per image
    chunk_size: int = 256  # crops per AlexNet call (bounded memory)

    def __post_init__(self) -> None:
        for name in ("images", "per_image", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"MiningConfig.{name} should be >= 1, got {getattr(self, name)}")


def mine_background(
    alexnet: torch.nn.Module,
    head: LinearSvmHead,
    records: Sequence[ImageRecord],
    samples: SampleConfig,
    config: MiningConfig,
    cache: str | Path | None = None,
) -> np.ndarray:
    """fc7 features of the hardest background proposals of ``records[:config.images]``.

    Args:
        alexnet: the fine-tuned network (eval mode is used and restored).
        head: the first SVM head; its highest class margin ranks an image's background.
        records: training images (never validation or test images).
        samples: the sample settings, so that proposals, frame and warp are the training ones.
        config: how many images and proposals per image.
        cache: optional ``.npz`` path. When it exists, its features are returned without
            mining. Otherwise they are written there, so an interrupted run resumes after
            mining.
    Returns:
        (M, D) float32 fc7 activations, M <= ``images * per_image``; rows are background
        proposals (IoU < 0.3 with every ground-truth cluster), in the working frame of
        ``samples``.
    """
    cache = Path(cache) if cache is not None else None
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as saved:
            return saved["fc7"]
    started = time.perf_counter()
    chosen = list(records[: config.images])
    parts = [np.zeros((0, alexnet.fc7_dim), np.float32)]
    for i, record in enumerate(chosen, start=1):
        parts.append(_hardest_of_image(alexnet, head, record, samples, config))
        if i % 25 == 0 or i == len(chosen):
            log.info(
                "mining: %d/%d images, %d hard negatives (%.0f s)",
                i,
                len(chosen),
                sum(len(p) for p in parts),
                time.perf_counter() - started,
            )
    mined = np.concatenate(parts)
    if cache is not None:
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, fc7=mined)
        tmp.replace(cache)
    return mined


def _hardest_of_image(
    alexnet: torch.nn.Module,
    head: LinearSvmHead,
    record: ImageRecord,
    samples: SampleConfig,
    config: MiningConfig,
) -> np.ndarray:
    """(K, D) float32 fc7 of the image's ``per_image`` highest-margin background proposals."""
    working, proposals, gt, gt_labels = image_proposals(record, samples)
    labels, _ = label_proposals(proposals, gt, gt_labels, background_label=BACKGROUND)
    background = proposals[labels == BACKGROUND]
    buffer = np.empty((min(config.chunk_size, max(len(background), 1)), 1, samples.crop_size,
                       samples.crop_size), np.float32)  # fmt: skip
    features, margins = [], []
    for start in range(0, len(background), config.chunk_size):
        crops = roi_crops(
            working.image01,
            background[start : start + config.chunk_size],
            representation=samples.representation,
            size=samples.crop_size,
            context_pad=samples.context_pad,
            out=buffer,
        )
        _, fc7 = predict(alexnet, crops)
        features.append(fc7)
        margins.append(head.decision(fc7).max(axis=1))
    if not features:
        return np.zeros((0, alexnet.fc7_dim), np.float32)
    fc7, margin = np.concatenate(features), np.concatenate(margins)
    keep = np.argsort(-margin, kind="stable")[: config.per_image]
    return fc7[np.sort(keep)]
