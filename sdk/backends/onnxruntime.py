"""ONNX Runtime backend: CPU, plus the CUDA and TensorRT execution providers when present.

Sessions are created with full graph optimisation (int8 QDQ models depend on it, see
FINDINGS.md) and a fixed thread count, so results are deterministic for a given input. After
creation the session's *actual* providers are checked: onnxruntime-gpu silently falls back to
CPU when CUDA is unusable, and calcsdk refuses that instead of hiding it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import onnxruntime as ort

from calcsdk.backends.base import parse_device
from calcsdk.errors import BackendUnavailableError

_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntimeSession:
    """A thread-safe wrapper of ``ort.InferenceSession`` with name-checked feeds."""

    def __init__(self, session: ort.InferenceSession, source: str):
        self._session = session
        self.source = source
        self.input_names = tuple(i.name for i in session.get_inputs())
        self.output_names = tuple(o.name for o in session.get_outputs())
        self.providers = tuple(session.get_providers())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != set(self.input_names):
            raise ValueError(
                f"{self.source}: expected inputs {self.input_names}, got {tuple(feeds)}"
            )
        outputs = self._session.run(list(self.output_names), dict(feeds))
        return dict(zip(self.output_names, outputs))


class OnnxRuntimeBackend:
    """``device="cpu"`` uses the CPU provider; ``"cuda[:N]"`` requires the CUDA provider
    (``provider="tensorrt"`` asks for ORT's TensorRT provider instead)."""

    name = "onnxruntime"

    def __init__(
        self, device: str = "cpu", threads: int | None = None, provider: str | None = None
    ):
        kind, index = parse_device(device)
        self.device = device
        self.threads = threads
        provider = provider or kind
        if provider not in _PROVIDERS or (kind == "cpu") != (provider == "cpu"):
            raise BackendUnavailableError(
                f"provider {provider!r} does not fit device {device!r}", "onnxruntime"
            )
        wanted = _PROVIDERS[provider]
        available = ort.get_available_providers()
        if wanted not in available:
            raise BackendUnavailableError(
                f"{wanted} is not available in this onnxruntime build "
                f"({ort.__version__}; available: {available}). For GPUs install "
                "onnxruntime-gpu in an environment without onnxruntime.",
                "onnxruntime",
            )
        self._provider = wanted
        self._provider_options = {} if kind == "cpu" else {"device_id": index}
        if wanted == "CUDAExecutionProvider":
            # onnxruntime's CUDA provider runs float32 convolutions and matmuls as TF32 by
            # default (relative error ~5e-4 on fc7 on an H100, enough to reorder near-tied
            # proposals at NMS); "fp32" here means IEEE float32, as on the CPU.
            self._provider_options["use_tf32"] = 0

    def load(self, model_path: str | os.PathLike) -> OnnxRuntimeSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
            options.inter_op_num_threads = 1
        providers = [(self._provider, self._provider_options)]
        if self._provider != "CPUExecutionProvider":
            providers.append(("CPUExecutionProvider", {}))  # for ops the GPU provider lacks
        try:
            session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendUnavailableError(f"cannot load the model: {exc}", model_path) from None
        if self._provider not in session.get_providers():
            raise BackendUnavailableError(
                f"{self._provider} was requested but the session runs on "
                f"{session.get_providers()} (no usable GPU?)",
                model_path,
            )
        return OnnxRuntimeSession(session, str(model_path))
