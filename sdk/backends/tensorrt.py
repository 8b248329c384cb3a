"""Native TensorRT 10 backend: engines built from the bundle's ONNX, cached beside the bundle.

``load(model.onnx)`` computes the :class:`~calcsdk.backends.tensorrt_engine.EngineKey` (GPU
model, compute capability, TensorRT version, precision, batch profile, sha256 of the ONNX),
reuses the cached engine or builds it, and returns a :class:`TensorRTSession`. Sessions take
and return host numpy arrays like the onnxruntime backend; the timings of a session therefore
include the host<->device copies.

``tensorrt`` and ``cuda-python`` are imported when the backend is created, never at module
import. A CPU device, a missing package or a missing GPU raises
:class:`~calcsdk.errors.BackendUnavailableError`. Untested here: no development machine has
TensorRT or a GPU (``docs/tensorrt.md``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.backends.base import parse_device
from calcsdk.backends.tensorrt_engine import (
    DEFAULT_WORKSPACE_BYTES,
    ENGINE_SUFFIX,
    PRECISIONS,
    EngineKey,
    cuda_check,
    engine_cache_dir,
    gpu_identity,
    import_cudart,
    import_tensorrt,
    load_or_build,
)
from calcsdk.bundle import sha256_file
from calcsdk.errors import BackendUnavailableError

MIN_BUFFER_BYTES = 256  # device buffers are never zero-sized (empty outputs still get one)


def _release(cudart: Any, buffers: dict[str, tuple[int, int]], stream: Any) -> None:
    for ptr, _ in buffers.values():
        cudart.cudaFree(ptr)
    buffers.clear()
    cudart.cudaStreamDestroy(stream)


class TensorRTSession:
    """One deserialized engine with its execution context, CUDA stream and device buffers.

    ``run`` is thread-safe (one lock per session: calls are serialised on its stream). Inputs
    are (N, ...) arrays of the engine's input dtypes (float32 for calcsdk's graphs); batches
    larger than ``max_batch`` are run in chunks of ``max_batch`` and concatenated. Outputs are
    fresh host arrays of the engine's output dtypes.
    """

    def __init__(self, trt: Any, cudart: Any, engine: Any, device_index: int, source: str,
                 max_batch: int):  # fmt: skip
        self.source = source
        self.max_batch = int(max_batch)
        self._cudart = cudart
        self._device_index = device_index
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise BackendUnavailableError("cannot create a TensorRT execution context", source)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        is_input = {n: engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = tuple(n for n in names if is_input[n])
        self.output_names = tuple(n for n in names if not is_input[n])
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._lock = threading.Lock()
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._stream = cuda_check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        weakref.finalize(self, _release, cudart, self._buffers, self._stream)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != set(self.input_names):
            raise ValueError(
                f"{self.source}: expected inputs {self.input_names}, got {tuple(feeds)}"
            )
        arrays = {name: np.asarray(feeds[name]) for name in self.input_names}
        for name, array in arrays.items():
            if array.dtype != self._dtypes[name] or array.ndim < 1:
                raise TypeError(
                    f"{self.source}: input {name!r} should be an (N, ...) "
                    f"{self._dtypes[name]} array, got {array.dtype} {array.shape}"
                )
        batch = {len(a) for a in arrays.values()}
        if len(batch) != 1:
            raise ValueError(f"{self.source}: inputs differ in batch size: {sorted(batch)}")
        n = batch.pop()
        with self._lock:
            cuda_check(self._cudart.cudaSetDevice(self._device_index), "cudaSetDevice")
            if n == 0:
                return self._empty_outputs(arrays)
            chunks = [
                self._run_once({k: a[i : i + self.max_batch] for k, a in arrays.items()})
                for i in range(0, n, self.max_batch)
            ]
        if len(chunks) == 1:
            return chunks[0]
        return {k: np.concatenate([c[k] for c in chunks]) for k in self.output_names}

    # --- internals (called under the lock) ---------------------------------------------
    def _device_buffer(self, name: str, nbytes: int) -> int:
        """A device pointer of at least ``nbytes`` bytes for tensor ``name`` (grown on demand)."""
        ptr, size = self._buffers.get(name, (0, 0))
        if nbytes > size:
            if ptr:
                cuda_check(self._cudart.cudaFree(ptr), "cudaFree")
                del self._buffers[name]
            size = max(nbytes, MIN_BUFFER_BYTES)
            ptr = int(cuda_check(self._cudart.cudaMalloc(size), "cudaMalloc"))
            self._buffers[name] = (ptr, size)
        return ptr

    def _set_input_shapes(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name, array in arrays.items():
            if not self._context.set_input_shape(name, tuple(array.shape)):
                raise ValueError(
                    f"{self.source}: input {name!r} of shape {array.shape} is outside the "
                    f"engine's optimisation profile (batch 1..{self.max_batch}, fixed other axes)"
                )

    def _output_shape(self, name: str) -> tuple[int, ...]:
        shape = tuple(self._context.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise BackendUnavailableError(
                f"output {name!r} has a data-dependent shape {shape}; not supported", self.source
            )
        return shape

    def _empty_outputs(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._set_input_shapes({k: np.empty((1, *a.shape[1:]), a.dtype) for k, a in arrays.items()})
        return {
            k: np.empty((0, *self._output_shape(k)[1:]), self._dtypes[k]) for k in self.output_names
        }

    def _run_once(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, stream = self._cudart, self._stream
        to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        to_host = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._set_input_shapes(arrays)
        staged = []  # keeps the contiguous host inputs alive until the stream is synchronised
        for name, array in arrays.items():
            host = np.ascontiguousarray(array)
            staged.append(host)
            ptr = self._device_buffer(name, host.nbytes)
            cuda_check(
                cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, to_device, stream),
                "cudaMemcpyAsync",
            )
            self._context.set_tensor_address(name, ptr)
        outputs = {}
        for name in self.output_names:
            host = np.empty(self._output_shape(name), self._dtypes[name])
            self._context.set_tensor_address(name, self._device_buffer(name, host.nbytes))
            outputs[name] = host
        if not self._context.execute_async_v3(int(stream)):
            raise BackendUnavailableError("TensorRT execute_async_v3 failed", self.source)
        for name, host in outputs.items():
            ptr = self._buffers[name][0]
            cuda_check(
                cudart.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, to_host, stream),
                "cudaMemcpyAsync",
            )
        cuda_check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return outputs


class TensorRTBackend:
    """Native TensorRT on ``device="cuda[:N]"`` at ``precision`` ``"fp16"`` (default),
    ``"fp32"`` or ``"int8"``, with one optimisation profile over the batch axis: batch sizes
    ``1..max_batch``, kernels tuned for ``opt_batch`` (default ``min(32, max_batch)``).

    Engines are cached in ``cache_dir`` (default: ``<bundle>.engines`` beside the bundle, see
    :func:`~calcsdk.backends.tensorrt_engine.engine_cache_dir`). ``int8`` uses the ONNX's own
    Q/DQ nodes when it has symmetric int8 ones; otherwise it needs ``calibration``, a mapping
    input name -> (N, ...) float32 array (e.g. ``{"crops": (N, 1, 227, 227)}``) of the
    network's own inputs, used only when an engine has to be built. ``threads`` is accepted for
    the Backend protocol and ignored (the work runs on the GPU).
    """

    name = "tensorrt"

    def __init__(
        self,
        device: str = "cuda:0",
        threads: int | None = None,
        precision: str = "fp16",
        max_batch: int = 256,
        cache_dir: str | os.PathLike | None = None,
        *,
        opt_batch: int | None = None,
        calibration: Mapping[str, np.ndarray] | None = None,
        workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
    ):
        kind, index = parse_device(device)
        if kind != "cuda":
            raise BackendUnavailableError(
                f"the tensorrt backend needs a CUDA device ('cuda' or 'cuda:N'), got {device!r}",
                "tensorrt",
            )
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.device = device
        self.threads = threads
        self.precision = precision
        self.max_batch = int(max_batch)
        self.opt_batch = int(opt_batch or min(32, self.max_batch))
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.calibration = calibration
        self.workspace_bytes = int(workspace_bytes)
        self._index = index
        self._trt = import_tensorrt()
        self._cudart = import_cudart()
        self._gpu_name, self._capability = gpu_identity(index)
        cuda_check(self._cudart.cudaSetDevice(index), "cudaSetDevice")
        self._runtime = self._trt.Runtime(self._trt.Logger(self._trt.Logger.WARNING))

    def engine_key(self, model_path: str | os.PathLike) -> EngineKey:
        """The cache key of ``model_path`` on this backend's GPU, TensorRT and settings."""
        return EngineKey(
            self._gpu_name,
            self._capability,
            str(self._trt.__version__),
            self.precision,
            1,
            self.opt_batch,
            self.max_batch,
            sha256_file(model_path),
        )

    def load(self, model_path: str | os.PathLike) -> TensorRTSession:
        path = Path(model_path)
        if not path.is_file():
            raise BackendUnavailableError("model file not found", path)
        key = self.engine_key(path)
        cache = self.cache_dir or engine_cache_dir(path)
        cuda_check(self._cudart.cudaSetDevice(self._index), "cudaSetDevice")
        engine = None
        for rebuild in (False, True):  # a cached file that fails to deserialize is rebuilt once
            data = load_or_build(path, key, cache, self._calibrator(key, cache),
                                 rebuild=rebuild, workspace_bytes=self.workspace_bytes)  # fmt: skip
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is not None:
                break
        if engine is None:
            raise BackendUnavailableError("TensorRT cannot deserialize the engine", path)
        return TensorRTSession(self._trt, self._cudart, engine, self._index, str(path),
                               self.max_batch)  # fmt: skip

    def _calibrator(self, key: EngineKey, cache: Path) -> Any:
        """An int8 calibrator when one may be needed (built lazily; unused for Q/DQ graphs)."""
        if key.precision != "int8" or self.calibration is None:
            return None
        if (cache / key.file_name()).is_file():
            return None  # the engine is cached: no calibration will run
        from calcsdk.backends.tensorrt_calibrator import make_int8_calibrator

        table = cache / (key.file_name().removesuffix(ENGINE_SUFFIX) + ".calib")
        return make_int8_calibrator(self.calibration, table)
