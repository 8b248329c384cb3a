"""TensorRT int8 entropy calibration from in-memory arrays (implicit quantisation).

TensorRT's calibrator base class lives in the ``tensorrt`` module, which calcsdk imports only
when asked for, so the class is made by a function: :func:`array_int8_calibrator_class`
returns ``ArrayInt8Calibrator`` (a subclass of ``trt.IInt8EntropyCalibrator2``), and
:func:`make_int8_calibrator` builds one. Calibration data are the network's own inputs, e.g.
(N, 1, 227, 227) float32 proposal crops in [0, 1] for fc7 (``calcsdk.export.quantize``) or
(N, 1, S, S) float32 tiles for YOLOv4 (``calcsdk.export.yolo_int8.calibration_tiles``).

Calibrators are deprecated since TensorRT 10.1 (superseded by explicit Q/DQ quantisation) but
still supported by TensorRT 10. Untested here: no development machine has TensorRT or a GPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from calcsdk.backends.tensorrt_engine import cuda_check, import_cudart, import_tensorrt
from calcsdk.batch.durable import atomic_write_bytes
from calcsdk.errors import BackendUnavailableError

CALIBRATION_BATCH = 16  # images per calibration batch; the last incomplete batch is dropped


def _as_inputs(arrays: np.ndarray | Mapping[str, np.ndarray]) -> dict[str | None, np.ndarray]:
    named = {None: arrays} if isinstance(arrays, np.ndarray) else dict(arrays)
    if not named:
        raise ValueError("calibration needs at least one input array")
    counts = set()
    for name, array in named.items():
        if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.ndim < 2:
            raise TypeError(
                f"calibration input {name!r} should be an (N, ...) float32 array, got "
                f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}"
            )
        counts.add(len(array))
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"calibration inputs need one common N >= 1, got {sorted(counts)}")
    return named


@functools.lru_cache(maxsize=1)
def array_int8_calibrator_class() -> type:
    """The ``ArrayInt8Calibrator`` class (needs tensorrt and cuda-python; raises
    BackendUnavailableError naming the missing one)."""
    trt = import_tensorrt()
    cudart = import_cudart()
    to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice

    class ArrayInt8Calibrator(trt.IInt8EntropyCalibrator2):
        """Feeds ``arrays`` ((N, ...) float32, typically (N, 1, H, W) in [0, 1]; one array for a
        single-input network or a mapping input name -> array) to TensorRT in batches of
        ``batch_size``, and reads/writes the calibration table at ``cache_file``."""

        def __init__(
            self,
            arrays: np.ndarray | Mapping[str, np.ndarray],
            cache_file: str | os.PathLike,
            batch_size: int = CALIBRATION_BATCH,
        ):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.arrays = _as_inputs(arrays)
            self.cache_file = Path(cache_file)
            count = len(next(iter(self.arrays.values())))
            self.batch_size = max(1, min(int(batch_size), count))
            self._next = 0
            self._device: dict[str | None, int] = {}
            for name, array in self.arrays.items():
                nbytes = self.batch_size * array[0].nbytes
                self._device[name] = int(cuda_check(cudart.cudaMalloc(nbytes), "cudaMalloc"))

        def check_inputs(self, shapes: Mapping[str, tuple[int, ...]]) -> None:
            """Raise BackendUnavailableError unless the arrays fit the network's inputs
            (``shapes``: input name -> per-sample shape, batch axis excluded)."""
            names = set(self.arrays)
            if names == {None} and len(shapes) == 1:
                names = set(shapes)
                self.arrays = {n: self.arrays[None] for n in names}
                self._device = {n: self._device[None] for n in names}
            if names != set(shapes):
                raise BackendUnavailableError(
                    f"calibration data for {sorted(map(str, names))} do not match the network "
                    f"inputs {sorted(shapes)}",
                    self.cache_file,
                )
            for name, shape in shapes.items():
                if tuple(self.arrays[name].shape[1:]) != tuple(shape):
                    raise BackendUnavailableError(
                        f"calibration input {name!r} has samples of shape "
                        f"{self.arrays[name].shape[1:]}, the network expects {tuple(shape)}",
                        self.cache_file,
                    )

        def get_batch_size(self) -> int:
            return self.batch_size

        def get_batch(self, names: list[str]) -> list[int] | None:
            start, stop = self._next, self._next + self.batch_size
            if stop > len(next(iter(self.arrays.values()))):
                return None
            pointers = []
            for name in names:
                batch = np.ascontiguousarray(self.arrays[name][start:stop])
                ptr = self._device[name]
                cuda_check(
                    cudart.cudaMemcpy(ptr, batch.ctypes.data, batch.nbytes, to_device),
                    "cudaMemcpy",
                )
                pointers.append(ptr)
            self._next = stop
            return pointers

        def read_calibration_cache(self) -> bytes | None:
            if self.cache_file.is_file() and self.cache_file.stat().st_size > 0:
                return self.cache_file.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.cache_file, bytes(cache))

        def close(self) -> None:
            """Free the device buffers (idempotent)."""
            for ptr in set(self._device.values()):
                cudart.cudaFree(ptr)
            self._device = {}

        def __del__(self):
            try:
                self.close()
            except Exception:  # interpreter shutdown: CUDA may already be gone
                pass

    return ArrayInt8Calibrator


def make_int8_calibrator(
    arrays: np.ndarray | Mapping[str, np.ndarray],
    cache_file: str | os.PathLike,
    batch_size: int = CALIBRATION_BATCH,
) -> Any:
    """An ``ArrayInt8Calibrator`` over ``arrays`` ((N, ...) float32, e.g. (N, 1, H, W) in
    [0, 1]) writing its calibration table to ``cache_file``."""
    return array_int8_calibrator_class()(arrays, cache_file, batch_size)
