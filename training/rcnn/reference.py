"""The paper's method done plainly, kept for comparison: one proposal at a time, warped, through
eager PyTorch AlexNet, then the linear SVM head (numpy, the same decision function
scikit-learn's LinearSVC computes) and, when the run has one, the box regressor (numpy), then the
shared box refinement and postprocess.

It shares the preprocessing, proposals, warp and postprocess with the SDK (one implementation of
each), so it differs from the deployed pipeline only where it should: framework and batching.
Benchmarks time the SDK against it; export parity checks use it as the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from calcsdk.bundle import load_bundle
from calcsdk.detections import Detections
from calcsdk.image import Mammogram
from calcsdk.pipelines.rcnn import RcnnPipeline, RcnnSettings
from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.prepare import WorkingImage, prepare_mammogram, roi_crops
from calcsdk.proposals import ProposalConfig, propose
from calcsdk.training.classifier.checkpoint import load_classifier
from calcsdk.training.models.alexnet import AlexNet
from calcsdk.training.rcnn.box_regression import BoxRegressor
from calcsdk.training.rcnn.head import LinearSvmHead


class ReferencePipeline:
    """Per-crop PyTorch + SVM R-CNN with the settings of an exported bundle."""

    def __init__(
        self,
        alexnet: AlexNet,
        head: LinearSvmHead,
        settings: RcnnSettings,
        proposal_config: ProposalConfig,
        post_config: PostprocessConfig,
        class_names: tuple[str, ...],
        regressor: BoxRegressor | None = None,
    ):
        self.alexnet = alexnet.eval()
        self.head = head
        self.regressor = regressor
        self.settings = settings
        self.proposal_config = proposal_config
        self.post_config = post_config
        self.class_names = class_names

    @classmethod
    def from_run(cls, run_dir: str | Path) -> ReferencePipeline:
        """From a ``calcsdk train rcnn`` run folder (``finetune/best.pt``, ``head.npz``, ``bundle/``,
        and ``box_regressor.npz`` when the bundle regresses boxes)."""
        run = Path(run_dir)
        bundle = load_bundle(run / "bundle")
        regressor = (
            BoxRegressor.load(run / "box_regressor.npz") if "bbox" in bundle.models else None
        )
        return cls(
            load_classifier(run / "finetune" / "best.pt"),
            LinearSvmHead.load(run / "head.npz"),
            RcnnSettings.from_bundle(bundle),
            ProposalConfig.from_dict(bundle.section("proposals")),
            PostprocessConfig(**bundle.section("thresholds")),
            bundle.class_names,
            regressor,
        )

    def prepare(self, mammogram: Mammogram) -> WorkingImage:
        s = self.settings
        return prepare_mammogram(mammogram, s.working_spacing_mm, s.fallback_spacing_mm)

    def propose(self, working: WorkingImage) -> np.ndarray:
        boxes, _ = propose(working.image01, working.mask, working.spacing_mm, self.proposal_config)
        return boxes

    def score(self, working: WorkingImage, boxes: np.ndarray) -> np.ndarray:
        """(N, C) calibrated probabilities, one crop at a time."""
        return self.score_and_deltas(working, boxes)[0]

    @torch.no_grad()
    def score_and_deltas(
        self, working: WorkingImage, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, C) calibrated probabilities and (N, 4) box deltas (None without a regressor),
        one crop at a time."""
        s = self.settings
        out = np.zeros((len(boxes), len(self.class_names)), np.float32)
        deltas = None if self.regressor is None else np.zeros((len(boxes), 4), np.float32)
        for i, box in enumerate(boxes):
            crop = roi_crops(
                working.image01,
                box[None],
                representation=s.representation,
                size=s.crop_size,
                context_pad=s.context_pad,
            )
            fc7 = self.alexnet.features_fc7(torch.from_numpy(crop)).numpy()
            out[i] = self.head.probabilities(fc7)[0]
            if deltas is not None:
                deltas[i] = self.regressor.deltas(fc7)[0]
        return out, deltas

    def __call__(
        self,
        mammogram: Mammogram,
        confidence: float | None = None,
        proposals: np.ndarray | None = None,
    ) -> Detections:
        working = self.prepare(mammogram)
        boxes = self.propose(working) if proposals is None else proposals
        scores, deltas = self.score_and_deltas(working, boxes)
        boxes = RcnnPipeline.refine(working, boxes, deltas)
        return postprocess(boxes, scores, self.class_names, working, self.post_config, confidence)
