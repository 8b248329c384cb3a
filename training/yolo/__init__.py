"""The YOLOv4 baseline: configs, anchors, targets and loss, data, EMA, training and evaluation.

The network itself is :mod:`calcsdk.training.models.yolov4`; the decoding, the tile geometry and
the inference pipeline that training evaluates through are the SDK's own
(:mod:`calcsdk.yolo_decode`, :mod:`calcsdk.tiling`, :mod:`calcsdk.pipelines.yolo`).
Import the submodules directly (``from calcsdk.training.yolo.train import train_yolo``).
"""
