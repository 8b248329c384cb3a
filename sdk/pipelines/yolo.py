"""The paper's one-stage baseline at inference time (YOLOv4 / CSPDarknet53):

    mammogram -> working frame -> tiles (or one letterbox) -> YOLOv4 (ONNX)
              -> decode (numpy, when the graph does not) -> merge tiles -> postprocess

Tiles go through the network in chunks of ``batch_size`` from one reused buffer. Each tile keeps
only its candidates (score >= ``pre_nms_score``, at most ``pre_nms_top_k``, as darknet's mAP
threshold and an RPN's pre-NMS top-k) whose centre lies in its core (:mod:`calcsdk.tiling`);
the shared :func:`calcsdk.postprocess.postprocess` then thresholds, runs class-wise NMS over the
whole image and maps the boxes back to ORIGINAL pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from calcsdk.backends.base import Backend, Session
from calcsdk.bundle import Bundle
from calcsdk.detections import Detections
from calcsdk.errors import BundleError
from calcsdk.image import Mammogram
from calcsdk.model_io import YOLO_BOXES, YOLO_INPUT, YOLO_SCORES
from calcsdk.postprocess import PostprocessConfig, postprocess
from calcsdk.prepare import WorkingImage, prepare_mammogram
from calcsdk.tiling import LAYOUTS, Tile, boxes_from_tile, in_core, plan_tiles, tile_input
from calcsdk.yolo_decode import (
    DEFAULT_SCALE_X_Y,
    RAW_OUTPUTS,
    STRIDES,
    anchors_by_head,
    decode_yolo,
)

MODEL_ROLE = "yolov4"  # the bundle's model role (calcsdk.detector's _MAIN_MODEL)


@dataclass(frozen=True)
class YoloSettings:
    """The manifest's ``preprocess`` and ``yolo`` sections of a YOLOv4 bundle.

    Sizes are working pixels (= network pixels in the ``"tile"`` layout); see
    :mod:`calcsdk.training.yolo.data` for why the defaults tile at 0.2 mm.
    """

    anchors: tuple[tuple[float, float], ...]  # 9 anchors (w, h), network pixels, by area
    working_spacing_mm: float = 0.2  # every image is resampled to this, mm per pixel
    fallback_spacing_mm: float | None = None  # assumed when a file states no spacing
    layout: str = "tile"  # "tile" (scale 1, overlapping windows) or "letterbox"
    network_size: int = 512  # side of the square network input, pixels (multiple of 32)
    tile_overlap: int = 256  # pixels shared by neighbouring tiles (>= the largest cluster)
    min_breast_fraction: float = 0.0  # tiles with at most this breast fraction are skipped
    batch_size: int = 4  # tiles per network call (bounded memory)
    strides: tuple[int, ...] = STRIDES  # network pixels per cell of each head
    scale_x_y: tuple[float, ...] = DEFAULT_SCALE_X_Y  # grid sensitivity of each head
    pre_nms_score: float = 0.005  # per-tile candidate floor (darknet's mAP threshold)
    pre_nms_top_k: int = 1000  # per-tile candidate cap, highest scores first
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        anchors = tuple(tuple(float(v) for v in a) for a in self.anchors)
        anchors_by_head(np.asarray(anchors), len(self.strides))  # validates shape and values
        object.__setattr__(self, "anchors", anchors)
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        object.__setattr__(self, "scale_x_y", tuple(float(k) for k in self.scale_x_y))
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout should be one of {LAYOUTS}, got {self.layout!r}")
        if self.network_size < 32 or self.network_size % 32:
            raise ValueError(f"network_size should be a multiple of 32, got {self.network_size}")
        if not 0 <= self.tile_overlap < self.network_size:
            raise ValueError(
                f"tile_overlap should be in [0, {self.network_size}), got {self.tile_overlap}"
            )
        if not self.working_spacing_mm > 0:
            raise ValueError(f"working_spacing_mm should be > 0, got {self.working_spacing_mm}")
        if self.batch_size < 1 or self.pre_nms_top_k < 1:
            raise ValueError("batch_size and pre_nms_top_k should be >= 1")
        if len(self.scale_x_y) != len(self.strides):
            raise ValueError("scale_x_y needs one factor per stride")

    def to_manifest(self) -> dict[str, dict[str, Any]]:
        """``{"preprocess": {...}, "yolo": {...}}`` sections for a bundle manifest."""
        values = asdict(self)
        values.pop("extra")
        yolo_keys = ("anchors", "strides", "scale_x_y", "pre_nms_score", "pre_nms_top_k")
        yolo = {k: values.pop(k) for k in yolo_keys}
        yolo["anchors"] = [list(a) for a in yolo["anchors"]]
        return {"preprocess": values, "yolo": yolo}

    @classmethod
    def from_sections(cls, *sections: Mapping[str, Any]) -> YoloSettings:
        """Settings from manifest sections; unknown keys are kept in ``extra``."""
        merged: dict[str, Any] = {}
        for section in sections:
            merged.update(section)
        known = {k for k in cls.__dataclass_fields__ if k != "extra"}
        if "anchors" not in merged:
            raise ValueError("a YOLOv4 bundle needs 'anchors' in its 'yolo' section")
        kwargs = {k: v for k, v in merged.items() if k in known}
        for key in ("anchors", "strides", "scale_x_y"):
            if key in kwargs:
                kwargs[key] = tuple(
                    tuple(v) if isinstance(v, (list, tuple)) else v for v in kwargs[key]
                )
        return cls(**kwargs, extra={k: v for k, v in merged.items() if k not in known})


class YoloPipeline:
    """Loads the bundle's ``yolov4`` model on ``backend``; call it per image."""

    def __init__(self, bundle: Bundle, backend: Backend, precision: str = "fp32"):
        try:
            settings = YoloSettings.from_sections(
                bundle.section("preprocess"), bundle.section("yolo")
            )
        except (TypeError, ValueError) as exc:
            raise BundleError(
                f"bad YOLOv4 settings in the manifest: {exc}", bundle.source
            ) from None
        session = backend.load(bundle.model_path(MODEL_ROLE, precision))
        post_config = PostprocessConfig(**bundle.section("thresholds"))
        self._setup(session, settings, bundle.class_names, post_config, bundle.source)

    @classmethod
    def from_session(
        cls,
        session: Session,
        settings: YoloSettings,
        class_names: Sequence[str],
        post_config: PostprocessConfig | None = None,
    ) -> YoloPipeline:
        """A pipeline over any session (e.g. a torch model during training evaluation) whose
        outputs are either ``boxes``/``scores`` or the raw heads :data:`RAW_OUTPUTS`."""
        pipeline = cls.__new__(cls)
        pipeline._setup(
            session, settings, class_names, post_config or PostprocessConfig(), "<session>"
        )
        return pipeline

    def _setup(
        self,
        session: Session,
        settings: YoloSettings,
        class_names: Sequence[str],
        post_config: PostprocessConfig,
        source: str,
    ) -> None:
        self.session = session
        self.settings = settings
        self.class_names = tuple(class_names)
        self.post_config = post_config
        self.anchors = np.asarray(settings.anchors, np.float32)
        outputs = set(session.output_names)
        self.decoded_in_graph = {YOLO_BOXES, YOLO_SCORES} <= outputs
        if not self.decoded_in_graph and not set(RAW_OUTPUTS) <= outputs:
            raise BundleError(
                f"the YOLOv4 model should output {(YOLO_BOXES, YOLO_SCORES)} or {RAW_OUTPUTS}, "
                f"got {tuple(session.output_names)}",
                source,
            )

    def __call__(self, mammogram: Mammogram, confidence: float | None = None) -> Detections:
        working = self.prepare(mammogram)
        tiles = self.plan(working)
        boxes, class_scores = self.detect_tiles(working.image01, tiles)
        return self.finish(working, boxes, class_scores, confidence)

    def prepare(self, mammogram: Mammogram) -> WorkingImage:
        s = self.settings
        return prepare_mammogram(mammogram, s.working_spacing_mm, s.fallback_spacing_mm)

    def plan(self, working: WorkingImage) -> list[Tile]:
        s = self.settings
        return plan_tiles(
            working.image01.shape,
            s.network_size,
            layout=s.layout,
            overlap=s.tile_overlap,
            mask=working.mask,
            min_mask_fraction=s.min_breast_fraction,
        )

    def detect_tiles(
        self, image01: np.ndarray, tiles: Sequence[Tile]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Candidates of all tiles: ``(K, 4)`` float32 xyxy working frame, ``(K, C)`` scores."""
        s = self.settings
        size = s.network_size
        buffer = np.empty((min(s.batch_size, max(len(tiles), 1)), 1, size, size), np.float32)
        all_boxes = [np.zeros((0, 4), np.float32)]
        all_scores = [np.zeros((0, len(self.class_names)), np.float32)]
        for start in range(0, len(tiles), s.batch_size):
            chunk = tiles[start : start + s.batch_size]
            for i, tile in enumerate(chunk):
                tile_input(image01, tile, size, out=buffer[i, 0])
            boxes, scores = self.run_network(buffer[: len(chunk)])
            for tile, tile_boxes, tile_scores in zip(chunk, boxes, scores):
                kept_boxes, kept_scores = self._tile_candidates(tile, tile_boxes, tile_scores)
                all_boxes.append(kept_boxes)
                all_scores.append(kept_scores)
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def run_network(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(B, 1, S, S)`` inputs -> boxes ``(B, A, 4)`` network pixels, scores ``(B, A, C)``."""
        outputs = self.session.run({YOLO_INPUT: images})
        if self.decoded_in_graph:
            return outputs[YOLO_BOXES], outputs[YOLO_SCORES]
        s = self.settings
        return decode_yolo(
            [outputs[name] for name in RAW_OUTPUTS],
            self.anchors,
            strides=s.strides,
            scale_x_y=s.scale_x_y,
        )

    def _tile_candidates(
        self, tile: Tile, boxes: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One tile's best candidates, in the working frame, whose centre is in its core."""
        s = self.settings
        best = scores.max(axis=1) if scores.size else np.zeros(len(scores), np.float32)
        keep = np.flatnonzero(best >= s.pre_nms_score)
        if len(keep) > s.pre_nms_top_k:
            keep = keep[np.argsort(-best[keep], kind="stable")[: s.pre_nms_top_k]]
        working_boxes = boxes_from_tile(boxes[keep], tile)
        owned = in_core(working_boxes, tile)
        return working_boxes[owned], scores[keep][owned].astype(np.float32, copy=False)

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
