"""YOLOv4 with TensorRT's ``EfficientNMS_TRT`` plugin in the graph (an ONNX for TensorRT only).

Takes a decoded YOLOv4 ONNX (:mod:`calcsdk.export.onnx_yolo`)::

    images (N, 1, S, S) float32 in [0, 1]
      -> boxes  (N, A, 4) float32 xyxy network-input pixels
         scores (N, A, C) float32 objectness x class probability

and appends one ``EfficientNMS_TRT`` node (TensorRT's ONNX parser imports unknown ops as the
plugin of the same name; the node's domain is ignored by it, and the default ``"TRT"`` keeps
the graph valid for ``onnx.checker``). The outputs become, per image, K = ``max_output_boxes``::

    num_detections    (N, 1)    int32    valid rows of the three below
    detection_boxes   (N, K, 4) float32  xyxy network-input pixels, by decreasing score
    detection_scores  (N, K)    float32
    detection_classes (N, K)    int32    index into the bundle's class_names

NMS is per class (``class_agnostic=False``) on scores that are already probabilities
(``score_activation=0``), boxes as corners (``box_coding=0``), no background class (-1).
onnxruntime cannot run this graph, and the SDK's tiled pipeline does not use it (tiles of one
mammogram are merged before NMS): it serves single-image TensorRT consumers. Untested on
TensorRT here: no development machine has TensorRT or a GPU (``docs/tensorrt.md``).
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from calcsdk.model_io import YOLO_BOXES, YOLO_SCORES

PLUGIN = "EfficientNMS_TRT"
PLUGIN_DOMAIN = "TRT"
NUM_DETECTIONS = "num_detections"
DETECTION_BOXES = "detection_boxes"
DETECTION_SCORES = "detection_scores"
DETECTION_CLASSES = "detection_classes"
NMS_OUTPUTS = (NUM_DETECTIONS, DETECTION_BOXES, DETECTION_SCORES, DETECTION_CLASSES)


def _batch_dim(value_info: onnx.ValueInfoProto) -> str | int:
    dim = value_info.type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "N")


def with_efficient_nms(
    model: onnx.ModelProto,
    *,
    score_threshold: float = 0.005,
    iou_threshold: float = 0.45,
    max_output_boxes: int = 100,
    class_agnostic: bool = False,
    domain: str = PLUGIN_DOMAIN,
) -> onnx.ModelProto:
    """A copy of ``model`` whose ``boxes``/``scores`` outputs feed ``EfficientNMS_TRT``.

    Args:
        score_threshold: drop scores below this (in [0, 1]); below ~0.01 the plugin is slower.
        iou_threshold: suppress boxes overlapping a kept one by more than this IoU.
        max_output_boxes: K, detections kept per image.
        class_agnostic: one NMS over all classes instead of one per class.
        domain: node domain; ``""`` also parses in TensorRT but fails ``onnx.checker``.
    Returns:
        the new model, with outputs :data:`NMS_OUTPUTS` only (module docstring).
    """
    if not 0.0 <= score_threshold <= 1.0 or not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(
            f"thresholds should be in [0, 1], got score {score_threshold}, iou {iou_threshold}"
        )
    if max_output_boxes < 1:
        raise ValueError(f"max_output_boxes should be >= 1, got {max_output_boxes}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    outputs = {o.name: o for o in graph.output}
    missing = [n for n in (YOLO_BOXES, YOLO_SCORES) if n not in outputs]
    if missing:
        raise ValueError(
            f"the ONNX should output {YOLO_BOXES!r} and {YOLO_SCORES!r}, lacks {missing}"
        )
    if set(NMS_OUTPUTS) & {v.name for v in (*graph.output, *graph.value_info)}:
        raise ValueError(f"the ONNX already has tensors named like {NMS_OUTPUTS}")
    batch = _batch_dim(outputs[YOLO_BOXES])
    k = int(max_output_boxes)

    attributes = {
        "score_threshold": float(score_threshold),
        "iou_threshold": float(iou_threshold),
        "max_output_boxes": k,
        "background_class": -1,
        "score_activation": 0,
        "box_coding": 0,
        "plugin_version": "1",
    }
    if class_agnostic:
        attributes["class_agnostic"] = 1
    node = helper.make_node(
        PLUGIN, [YOLO_BOXES, YOLO_SCORES], list(NMS_OUTPUTS), name="efficient_nms",
        domain=domain, **attributes,
    )  # fmt: skip
    graph.node.append(node)
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(NUM_DETECTIONS, TensorProto.INT32, [batch, 1]),
            helper.make_tensor_value_info(DETECTION_BOXES, TensorProto.FLOAT, [batch, k, 4]),
            helper.make_tensor_value_info(DETECTION_SCORES, TensorProto.FLOAT, [batch, k]),
            helper.make_tensor_value_info(DETECTION_CLASSES, TensorProto.INT32, [batch, k]),
        ]
    )
    if domain and domain not in {o.domain for o in out.opset_import}:
        out.opset_import.append(helper.make_opsetid(domain, 1))
    entry = out.metadata_props.add()
    entry.key = "calcsdk.nms"
    entry.value = f"{PLUGIN} (TensorRT only) iou={iou_threshold} score={score_threshold} k={k}"
    return out


def export_efficient_nms(
    src: str | os.PathLike, dst: str | os.PathLike, **options: float | int | bool | str
) -> Path:
    """Read the decoded YOLOv4 ONNX ``src``, append EfficientNMS (:func:`with_efficient_nms`
    ``options``), check it with ``onnx.checker`` and write ``dst``. Returns ``dst``."""
    model = with_efficient_nms(onnx.load(src), **options)
    if options.get("domain", PLUGIN_DOMAIN):  # the checker rejects unknown ops in domain ""
        onnx.checker.check_model(model)
    dst = Path(dst)
    onnx.save(model, dst)
    return dst
