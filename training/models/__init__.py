"""Networks in plain ``torch.nn`` (torchvision is not used): the paper's AlexNet and YOLOv4."""

from __future__ import annotations

from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig, check_alexnet_input
from calcsdk.training.models.cspdarknet53 import CSPDarknet53
from calcsdk.training.models.yolov4 import YOLOv4, YOLOv4Config, check_yolo_input, split_anchors

__all__ = [
    "AlexNet",
    "AlexNetConfig",
    "CSPDarknet53",
    "YOLOv4",
    "YOLOv4Config",
    "check_alexnet_input",
    "check_yolo_input",
    "split_anchors",
]
