"""calcsdk.export: torch/sklearn models to ONNX, int8 and TensorRT, with parity reports."""
