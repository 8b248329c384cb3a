"""YOLOv4 -> ONNX with the box decoding in the graph, and YOLOv4 bundles.

Graph (torch's dynamo exporter, as ``onnx_fc7.py``; dynamic batch; height and width dynamic,
or fixed with ``input_size`` as bundles do: a fixed size exports about twice as fast and suits
TensorRT)::

    images (N, 1, H, W) float32 in [0, 1], H and W multiples of 32
      -> boxes  (N, A_total, 4) float32 xyxy network-input pixels
         scores (N, A_total, C) float32 objectness x class probability

decoded exactly as :func:`calcsdk.yolo_decode.decode_yolo` (same formula, same order; the
tests check the two against each other). With ``decode=False`` the graph outputs the raw heads
:data:`calcsdk.yolo_decode.RAW_OUTPUTS` instead and the SDK decodes in numpy.

``nms=True`` appends ONNX ``NonMaxSuppression`` (per image, per class, over the graph's own
predictions) and a third output ``selected_indices`` (K, 3) int64, rows ``(batch index,
class index, prediction index)`` into ``boxes`` / ``scores``, ordered by image, then class, then
decreasing score; ``boxes`` and ``scores`` stay outputs. It suits single-input consumers; the
SDK ignores it, because tiles of one mammogram must be merged before NMS.

Mish is exported through :func:`calcsdk.export.mish_export.with_exp_mish` (an ``Exp``-only form
of the same function): 2x faster in fp32 than onnxruntime's Softplus-based expansion.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from calcsdk.bundle import write_bundle
from calcsdk.export.mish_export import with_exp_mish
from calcsdk.export.onnx_fc7 import set_metadata
from calcsdk.model_io import YOLO_BOXES, YOLO_INPUT, YOLO_SCORES
from calcsdk.pipelines.yolo import MODEL_ROLE, YoloSettings
from calcsdk.postprocess import PostprocessConfig
from calcsdk.training.models.yolov4 import MAX_STRIDE, YOLOv4, split_anchors
from calcsdk.training.yolo.loss import decode_boxes
from calcsdk.yolo_decode import ANCHORS_PER_HEAD, DEFAULT_SCALE_X_Y, RAW_OUTPUTS, STRIDES

OPSET = 18
MAX_BATCH = 1024
MAX_CELLS = 256  # H and W up to 256 * 32 = 8192 pixels
YOLO_SELECTED = "selected_indices"
MODEL_FILE = "yolov4.onnx"


class DecodedYOLOv4(nn.Module):
    """``images`` -> ``(boxes, scores)``: the network followed by the in-graph decoding."""

    def __init__(
        self,
        model: YOLOv4,
        anchors: np.ndarray,
        scale_x_y: Sequence[float] = DEFAULT_SCALE_X_Y,
        strides: Sequence[int] = STRIDES,
    ):
        super().__init__()
        self.model = model
        grouped = torch.as_tensor(np.asarray(anchors, np.float32)).reshape(-1, ANCHORS_PER_HEAD, 2)
        self.register_buffer("anchors", grouped)
        self.scale_x_y = tuple(float(k) for k in scale_x_y)
        self.strides = tuple(int(s) for s in strides)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        all_boxes, all_scores = [], []
        for head, raw in enumerate(self.model(images)):
            p = split_anchors(raw, ANCHORS_PER_HEAD).permute(0, 1, 3, 4, 2)  # (N, A, H, W, 5+C)
            boxes = decode_boxes(p, self.anchors[head], self.strides[head], self.scale_x_y[head])
            scores = torch.sigmoid(p[..., 4:5]) * torch.sigmoid(p[..., 5:])
            all_boxes.append(boxes.reshape(raw.shape[0], -1, 4))
            all_scores.append(scores.reshape(raw.shape[0], -1, scores.shape[-1]))
        return torch.cat(all_boxes, dim=1), torch.cat(all_scores, dim=1)


class RawYOLOv4(nn.Module):
    """``images`` -> the three raw head outputs (a tuple, for the exporter)."""

    def __init__(self, model: YOLOv4):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model(images))


def export_yolo(
    model: YOLOv4,
    path: str | os.PathLike,
    *,
    anchors: np.ndarray,
    scale_x_y: Sequence[float] = DEFAULT_SCALE_X_Y,
    decode: bool = True,
    input_size: int | None = None,
    nms: bool = False,
    nms_iou_threshold: float = 0.45,
    nms_score_threshold: float = 0.005,
    nms_max_per_class: int = 100,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Export ``model`` (eval mode) to ``path``; returns the path.

    Args:
        anchors: ``(9, 2)`` anchors (w, h) in network pixels, sorted by area.
        scale_x_y: grid sensitivity of each head.
        decode: decode in the graph (``boxes``, ``scores``); False: raw heads.
        input_size: fixed input side S (a multiple of 32): inputs ``(N, 1, S, S)``; ``None``:
            any height and width that are multiples of 32 (up to 8192).
        nms, nms_iou_threshold, nms_score_threshold, nms_max_per_class: append ONNX
            NonMaxSuppression (module docstring); needs ``decode``.
        metadata: ONNX ``metadata_props`` (values are stringified; the anchors, strides and
            scale_x_y are always added).
    """
    if nms and not decode:
        raise ValueError("nms=True needs decode=True (NMS works on decoded boxes)")
    path = Path(path)
    model = with_exp_mish(model).eval()  # onnxruntime's Softplus is slow: see mish_export
    wrapped = DecodedYOLOv4(model, anchors, scale_x_y) if decode else RawYOLOv4(model)
    outputs = [YOLO_BOXES, YOLO_SCORES] if decode else list(RAW_OUTPUTS)
    batch = torch.export.Dim("N", min=1, max=MAX_BATCH)
    if input_size is None:
        example = torch.rand(2, model.config.in_channels, 2 * MAX_STRIDE, 3 * MAX_STRIDE)
        rows = torch.export.Dim("rows", min=1, max=MAX_CELLS)
        cols = torch.export.Dim("cols", min=1, max=MAX_CELLS)
        shapes = ({0: batch, 2: MAX_STRIDE * rows, 3: MAX_STRIDE * cols},)
    elif input_size < MAX_STRIDE or input_size % MAX_STRIDE:
        raise ValueError(f"input_size should be a multiple of {MAX_STRIDE}, got {input_size}")
    else:
        example = torch.rand(2, model.config.in_channels, input_size, input_size)
        shapes = ({0: batch},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapped.eval(),
            (example,),
            input_names=[YOLO_INPUT],
            output_names=outputs,
            dynamic_shapes=shapes,
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    onnx_model = program.model_proto
    if nms:
        _append_nms(onnx_model, nms_iou_threshold, nms_score_threshold, nms_max_per_class)
    info = {
        "anchors": json.dumps(np.asarray(anchors, np.float64).round(4).tolist()),
        "strides": json.dumps(list(STRIDES)),
        "scale_x_y": json.dumps(list(scale_x_y)),
        "decoded": str(decode).lower(),
        "nms": str(nms).lower(),
    }
    set_metadata(onnx_model, {**info, **{k: str(v) for k, v in (metadata or {}).items()}})
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, path)
    return path


def _append_nms(
    model: onnx.ModelProto, iou_threshold: float, score_threshold: float, max_per_class: int
) -> None:
    """Add ``selected_indices`` = NonMaxSuppression(boxes, scores transposed to (N, C, A))."""
    graph = model.graph
    constants = [
        helper.make_tensor("nms_max_per_class", TensorProto.INT64, [1], [int(max_per_class)]),
        helper.make_tensor("nms_iou_threshold", TensorProto.FLOAT, [1], [float(iou_threshold)]),
        helper.make_tensor("nms_score_threshold", TensorProto.FLOAT, [1], [float(score_threshold)]),
    ]
    graph.initializer.extend(constants)
    graph.node.extend(
        [
            helper.make_node("Transpose", [YOLO_SCORES], ["nms_scores"], perm=[0, 2, 1]),
            helper.make_node(
                "NonMaxSuppression",
                [YOLO_BOXES, "nms_scores", *(c.name for c in constants)],
                [YOLO_SELECTED],
                center_point_box=0,  # corners; any diagonal pair works, so xyxy does
            ),
        ]
    )
    graph.output.append(helper.make_tensor_value_info(YOLO_SELECTED, TensorProto.INT64, [None, 3]))


def write_yolo_bundle(
    root: str | os.PathLike,
    onnx_path: str | os.PathLike,
    settings: YoloSettings,
    *,
    class_names: Sequence[str] = ("malignant", "benign"),
    thresholds: PostprocessConfig | None = None,
    name: str = "calcsdk-yolov4",
    version: str = "0.1.0",
    provenance: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """A bundle directory holding ``onnx_path`` (as ``yolov4.onnx``) and its manifest.

    The graph's outputs decide the model entry (decoded ``boxes``/``scores`` or raw heads).
    """
    graph_outputs = [
        o.name for o in onnx.load(str(onnx_path), load_external_data=False).graph.output
    ]
    outputs = [o for o in graph_outputs if o != YOLO_SELECTED]
    thresholds = thresholds or PostprocessConfig()
    manifest = {
        "name": name,
        "version": version,
        "pipeline": MODEL_ROLE,
        "class_names": list(class_names),
        **settings.to_manifest(),
        "thresholds": {
            "confidence": thresholds.confidence,
            "nms_iou": thresholds.nms_iou,
            "max_detections": thresholds.max_detections,
            "min_size_px": thresholds.min_size_px,
            "nms_containment": thresholds.nms_containment,
            "vote_iou": thresholds.vote_iou,
        },
        "models": {
            MODEL_ROLE: {
                "file": MODEL_FILE,
                "inputs": [YOLO_INPUT],
                "outputs": outputs,
                "precision": "fp32",
                "opset": OPSET,
            }
        },
        "provenance": dict(provenance or {}),
        "metrics": dict(metrics or {}),
    }
    return write_bundle(root, manifest, {MODEL_FILE: onnx_path})


def export_yolo_bundle(
    model: YOLOv4,
    settings: YoloSettings,
    root: str | os.PathLike,
    *,
    decode: bool = True,
    **bundle_fields: Any,
) -> Path:
    """Export ``model`` with ``settings``' anchors and scale_x_y for ``network_size`` inputs
    (fixed), then write the bundle at ``root`` (``bundle_fields`` as :func:`write_yolo_bundle`).
    Returns ``root``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="calcsdk-yolo-export-") as tmp:
        onnx_path = export_yolo(
            model,
            Path(tmp) / MODEL_FILE,
            anchors=np.asarray(settings.anchors),
            scale_x_y=settings.scale_x_y,
            decode=decode,
            input_size=settings.network_size,
            metadata={
                "class_names": json.dumps(
                    list(bundle_fields.get("class_names", ("malignant", "benign")))
                )
            },
        )
        return write_yolo_bundle(root, onnx_path, settings, **bundle_fields)


def export_yolo_run(
    run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, weights: str = "best"
) -> Path:
    """Bundle a ``train_yolo`` run: ``best.pt`` (or ``last.pt``'s EMA weights when there is no
    best, or with ``weights="last"``) and the run's ``settings.json``; the bundle records the
    training config and the best validation figures. Returns the bundle directory
    (default ``RUN/bundle``)."""
    from calcsdk.training.yolo.train import load_trained_yolo

    run = Path(run_dir)
    if weights not in ("best", "last"):
        raise ValueError(f"weights should be 'best' or 'last', got {weights!r}")
    source = (
        run / "best.pt" if weights == "best" and (run / "best.pt").exists() else run / "last.pt"
    )
    if not source.exists():
        raise FileNotFoundError(f"{source}: no trained weights in {run}")
    model, anchors = load_trained_yolo(source)
    sections = json.loads((run / "settings.json").read_text())
    settings = YoloSettings.from_sections(sections["preprocess"], sections["yolo"])
    if not np.allclose(anchors, np.asarray(settings.anchors), rtol=1e-6):
        raise ValueError(f"{run}: the anchors of {source.name} and settings.json differ")
    saved = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    best = torch.load(source, map_location="cpu", weights_only=True).get("val", {})
    provenance = {
        "weights": source.name,
        "config": saved.get("config", {}),
        "model_config": saved.get("model_config", {}),
        "global_step": saved.get("state", {}).get("global_step"),
    }
    return export_yolo_bundle(
        model,
        settings,
        Path(out) if out else run / "bundle",
        provenance=json.loads(json.dumps(provenance, default=list)),
        metrics={"validation": best},
    )
