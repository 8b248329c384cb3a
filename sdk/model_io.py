"""Tensor names and layouts of the exported graphs, fixed in ONE place.

The exporters (``calcsdk.export``) write these names and the pipelines feed/read them.

R-CNN:
    fc7 extractor: ``crops`` (N, 1, 227, 227) float32 in [0, 1] -> ``fc7`` (N, D) float32
    SVM head:      ``fc7`` (N, D) float32 -> ``scores`` (N, C) float32 calibrated probabilities
                   of the C detector classes (manifest ``class_names`` order)
    box regressor: ``fc7`` (N, D) float32 -> ``deltas`` (N, 4) float32 class-agnostic R-CNN
                   deltas (dx, dy, dw, dh) of each proposal (:func:`calcsdk.boxes.apply_box_deltas`);
                   optional (manifest model role ``bbox``)
YOLOv4:
    ``images`` (N, 1, S, S) float32 in [0, 1] -> ``boxes`` (N, A, 4) float32 xyxy in network-input
    pixels and ``scores`` (N, A, C) float32 class confidences (objectness x class probability)
"""

from __future__ import annotations

FC7_INPUT = "crops"
FC7_OUTPUT = "fc7"
HEAD_INPUT = "fc7"
HEAD_OUTPUT = "scores"
BOX_INPUT = "fc7"
BOX_OUTPUT = "deltas"
YOLO_INPUT = "images"
YOLO_BOXES = "boxes"
YOLO_SCORES = "scores"
