"""The paper's two-stage detector at inference time (Girshick et al. R-CNN, as in the paper):

    mammogram -> working frame -> EdgeBoxes proposals -> 227x227 warped crops
              -> AlexNet fc7 (ONNX) -> linear SVM head + calibration (ONNX)
              [-> class-agnostic box regression (ONNX), when the bundle has a ``bbox`` model]
              -> postprocess

Crops go through the CNN in chunks of ``chunk_size`` from one reused buffer, so memory stays
bounded whatever the number of proposals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calcsdk.backends.base import Backend
from calcsdk.boxes import apply_box_deltas, clip_boxes
from calcsdk.bundle import Bundle
from calcsdk.detections import Detections
from calcsdk.image import Mammogram
from calcsdk.model_io import BOX_INPUT, BOX_OUTPUT, FC7_INPUT, FC7_OUTPUT, HEAD_INPUT, HEAD_OUTPUT
from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.prepare import WorkingImage, prepare_mammogram, roi_crops
from calcsdk.proposals import ProposalConfig, propose


@dataclass(frozen=True)
class RcnnSettings:
    """The manifest's ``preprocess`` section for an R-CNN bundle."""

    working_spacing_mm: float = 0.1  # every image is resampled to this, mm per pixel
    fallback_spacing_mm: float | None = None  # assumed when a file states no spacing
    representation: str = "grayscale"  # the paper's best ROI representation
    crop_size: int = 227  # AlexNet input side
    context_pad: int = 16  # R-CNN context padding, warped pixels
    chunk_size: int = 256  # crops per CNN call: one reused buffer, so memory stays bounded.
    # Full-size AlexNet int8, 1,634 proposals on 2 cores: CNN 3.23 s at 64, 3.12 s at 128,
    # 2.77 s at 256, 2.83 s at 512 (fc6/fc7 weights are re-read once per chunk); peak RSS of
    # `calcsdk bench` 0.72 GB at 64, 2.0 GB at 256. A bundle may set it in ``preprocess``.

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> RcnnSettings:
        section = dict(bundle.section("preprocess"))
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in section.items() if k in known})


class RcnnPipeline:
    """Loads the bundle's ``fc7``, ``head`` (and optional ``bbox``) models on ``backend``; call
    it per image."""

    def __init__(self, bundle: Bundle, backend: Backend, precision: str = "fp32"):
        self.bundle = bundle
        self.settings = RcnnSettings.from_bundle(bundle)
        self.proposal_config = ProposalConfig.from_dict(bundle.section("proposals"))
        self.post_config = PostprocessConfig(**bundle.section("thresholds"))
        self.class_names = bundle.class_names
        self.fc7 = backend.load(bundle.model_path("fc7", precision))
        self.head = backend.load(bundle.model_path("head", "fp32"))
        self.bbox = backend.load(bundle.model_path("bbox")) if "bbox" in bundle.models else None

    def __call__(self, mammogram: Mammogram, confidence: float | None = None) -> Detections:
        return self.back(self.front(mammogram), confidence)

    def front(self, mammogram: Mammogram) -> tuple[WorkingImage, np.ndarray]:
        """CPU/OpenCV half: working frame and proposals. Runs ahead in ``detect_batch``."""
        working = self.prepare(mammogram)
        return working, self.propose(working)

    def back(self, front: tuple[WorkingImage, np.ndarray], confidence: float | None) -> Detections:
        """Network half: crops, fc7, SVM head (and box regression), postprocess."""
        working, boxes = front
        scores, deltas = self.score_and_deltas(working, boxes)
        return self.finish(working, self.refine(working, boxes, deltas), scores, confidence)

    def prepare(self, mammogram: Mammogram) -> WorkingImage:
        s = self.settings
        return prepare_mammogram(mammogram, s.working_spacing_mm, s.fallback_spacing_mm)

    def propose(self, working: WorkingImage) -> np.ndarray:
        """(N, 4) float32 xyxy proposals in the working frame."""
        boxes, _ = propose(working.image01, working.mask, working.spacing_mm, self.proposal_config)
        return boxes

    def score(self, working: WorkingImage, boxes: np.ndarray) -> np.ndarray:
        """(N, C) float32 calibrated class probabilities of each proposal."""
        return self.score_and_deltas(working, boxes)[0]

    def score_and_deltas(
        self, working: WorkingImage, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(N, C) float32 calibrated class probabilities of each proposal, and its (N, 4) float32
        box-regression deltas (None when the bundle has no ``bbox`` model)."""
        s = self.settings
        scores = np.zeros((len(boxes), len(self.class_names)), np.float32)
        deltas = None if self.bbox is None else np.zeros((len(boxes), 4), np.float32)
        buffer = np.empty(
            (min(s.chunk_size, max(len(boxes), 1)), 1, s.crop_size, s.crop_size), np.float32
        )
        for start in range(0, len(boxes), s.chunk_size):
            chunk = boxes[start : start + s.chunk_size]
            crops = roi_crops(
                working.image01,
                chunk,
                representation=s.representation,
                size=s.crop_size,
                context_pad=s.context_pad,
                out=buffer,
            )
            fc7 = self.fc7.run({FC7_INPUT: crops})[FC7_OUTPUT]
            scores[start : start + len(chunk)] = self.head.run({HEAD_INPUT: fc7})[HEAD_OUTPUT]
            if deltas is not None:
                deltas[start : start + len(chunk)] = self.bbox.run({BOX_INPUT: fc7})[BOX_OUTPUT]
        return scores, deltas

    @staticmethod
    def refine(working: WorkingImage, boxes: np.ndarray, deltas: np.ndarray | None) -> np.ndarray:
        """(N, 4) float32 proposals moved by their regression ``deltas`` and clipped to the
        working image (working frame); ``boxes`` unchanged when ``deltas`` is None."""
        if deltas is None:
            return boxes
        return clip_boxes(apply_box_deltas(boxes, deltas), *working.image01.shape)

    def finish(
        self,
        working: WorkingImage,
        boxes: np.ndarray,
        class_scores: np.ndarray,
        confidence: float | None,
    ) -> Detections:
        return postprocess(
            boxes, class_scores, self.class_names, working, self.post_config, confidence
        )
