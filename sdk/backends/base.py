"""The backend protocol and registry.

A *backend* turns a model file (ONNX) into a *session* that runs it. Pipelines talk only to
sessions: ``session.run({name: array}) -> {name: array}``. Backends are registered by name and
imported lazily, so ``tensorrt`` is imported only when asked for; there is no per-backend
``if/elif`` in the hot path.

A backend that cannot honour the requested device, provider or precision raises
:class:`~calcsdk.errors.BackendUnavailableError`; it never falls back silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import import_module
from typing import Protocol, runtime_checkable

import numpy as np

from calcsdk.errors import BackendUnavailableError


@runtime_checkable
class Session(Protocol):
    """One loaded model. ``run`` is thread-safe and takes/returns host numpy arrays."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@runtime_checkable
class Backend(Protocol):
    """A factory of sessions for one device (``"cpu"``, ``"cuda"``, ``"cuda:1"``)."""

    name: str
    device: str

    def load(self, model_path: str | os.PathLike) -> Session: ...


# name -> "module:Class"; the module is imported only when the backend is requested.
_REGISTRY: dict[str, str] = {
    "onnxruntime": "calcsdk.backends.onnxruntime:OnnxRuntimeBackend",
    "tensorrt": "calcsdk.backends.tensorrt:TensorRTBackend",
}


def register_backend(name: str, target: str) -> None:
    """Register ``"module:Class"`` under ``name`` (third parties can add backends)."""
    _REGISTRY[name] = target


def backend_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_backend(
    name: str = "auto", *, device: str = "cpu", threads: int | None = None, **options
) -> Backend:
    """Instantiate backend ``name`` on ``device``. ``"auto"`` means onnxruntime (CPU, or its
    CUDA provider for a CUDA device). Raises BackendUnavailableError for an unknown name or an
    unavailable device."""
    if name == "auto":
        name = "onnxruntime"
    if name not in _REGISTRY:
        raise BackendUnavailableError(
            f"unknown backend {name!r}; available: {sorted(_REGISTRY)}", "backend"
        )
    module_name, _, class_name = _REGISTRY[name].partition(":")
    try:
        cls = getattr(import_module(module_name), class_name)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {name!r} cannot be imported here: {exc}", "backend"
        ) from None
    return cls(device=device, threads=threads, **options)


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"`` -> ("cpu", 0); ``"cuda"``/``"cuda:1"`` -> ("cuda", index). Else ValueError."""
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return kind, int(index or 0)
