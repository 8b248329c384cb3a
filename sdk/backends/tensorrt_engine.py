"""TensorRT 10 engines built from ONNX files and cached beside their bundle.

An engine is only valid for the GPU model, the TensorRT version, the precision and the batch
profile it was built for, and for the exact ONNX bytes it came from. :class:`EngineKey` holds
those six facts and turns them into a stable file name; :func:`load_or_build` reuses the file
when the key matches and otherwise builds it (atomically: temporary file, then ``os.replace``).

The cache lives in a folder *beside* the bundle (``<bundle>.engines/``), never inside it, so the
bundle's file list and hashes stay valid (``docs/bundle.md``).

``tensorrt`` and ``cuda-python`` are imported lazily, inside the functions that need them; a
missing package or GPU raises :class:`~calcsdk.errors.BackendUnavailableError`. Untested here:
no development machine has TensorRT or a GPU (``docs/tensorrt.md``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from calcsdk.batch.durable import atomic_write_bytes
from calcsdk.bundle import sha256_file
from calcsdk.errors import BackendUnavailableError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_BYTES = 2 << 30  # 2 GiB of builder scratch memory (tactic search)
ENGINE_SUFFIX = ".engine"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_GPU_INSTALL_HINT = "pip install 'calcsdk[gpu]' (tensorrt>=10, cuda-python>=12) on a CUDA machine"


# --- lazy imports -------------------------------------------------------------------------
def import_tensorrt() -> Any:
    """The ``tensorrt`` module (TensorRT >= 10), or BackendUnavailableError naming it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the 'tensorrt' package is not importable ({exc}); {_GPU_INSTALL_HINT}", "tensorrt"
        ) from None
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise BackendUnavailableError(
            f"TensorRT >= 10 is required, found {trt.__version__}", "tensorrt"
        )
    return trt


def import_cudart() -> Any:
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (cuda-python >= 12.8/13) or
    the older ``cuda.cudart``; BackendUnavailableError naming ``cuda-python`` if neither."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the 'cuda-python' package is not importable ({exc}); {_GPU_INSTALL_HINT}",
                "tensorrt",
            ) from None
    return cudart


def cuda_check(result: Any, what: str) -> Any:
    """Unpack a cuda-python call's ``(err, *values)`` tuple: raise BackendUnavailableError
    unless ``err`` is ``cudaSuccess``; return None, the one value, or the tuple of values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(getattr(err, "value", err)) != 0:  # cudaError_t.cudaSuccess == 0
        raise BackendUnavailableError(f"{what} failed: {err!r}", "cuda")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_identity(device_index: int = 0) -> tuple[str, str]:
    """(GPU model name, compute capability ``"major.minor"``) of CUDA device ``device_index``.
    Raises BackendUnavailableError without cuda-python or without that GPU."""
    cudart = import_cudart()
    count = cuda_check(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    if not count or device_index >= count:
        raise BackendUnavailableError(
            f"no CUDA device {device_index} here ({count or 0} visible)", "tensorrt"
        )
    props = cuda_check(cudart.cudaGetDeviceProperties(device_index), "cudaGetDeviceProperties")
    name = props.name
    name = name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)
    return name.strip(), f"{props.major}.{props.minor}"


# --- cache key ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on. Batch sizes are counts of images/crops along
    the first input axis; ``onnx_sha256`` is the hex sha256 of the ONNX file's bytes."""

    gpu_name: str  # e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "major.minor", e.g. "9.0"
    trt_version: str  # tensorrt.__version__, e.g. "10.3.0"
    precision: str  # "fp32" | "fp16" | "int8" (int8 also enables fp16 for the other layers)
    batch_min: int
    batch_opt: int  # the batch size the builder tunes kernels for
    batch_max: int
    onnx_sha256: str

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 1 <= self.batch_min <= self.batch_opt <= self.batch_max:
            raise ValueError(
                "batch profile must satisfy 1 <= min <= opt <= max, got "
                f"({self.batch_min}, {self.batch_opt}, {self.batch_max})"
            )

    @property
    def digest(self) -> str:
        """Hex sha256 of all fields (canonical JSON): changes when any field changes."""
        blob = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def file_name(self) -> str:
        """Stable, readable cache file name, e.g.
        ``3f2a9c81d0e4-fp16-b1_32_256-sm9.0-trt10.3.0-<digest[:16]>.engine``."""
        parts = (
            self.onnx_sha256[:12],
            self.precision,
            f"b{self.batch_min}_{self.batch_opt}_{self.batch_max}",
            f"sm{self.compute_capability}",
            f"trt{self.trt_version}",
            self.digest[:16],
        )
        return _UNSAFE.sub("_", "-".join(parts)) + ENGINE_SUFFIX


def engine_key(
    onnx_path: str | os.PathLike,
    precision: str = "fp16",
    batch: tuple[int, int, int] = (1, 32, 256),
    device_index: int = 0,
) -> EngineKey:
    """The key of ``onnx_path`` built at ``precision`` with batch profile ``(min, opt, max)``
    on CUDA device ``device_index`` with the installed TensorRT (needs both, and the GPU)."""
    trt = import_tensorrt()
    name, capability = gpu_identity(device_index)
    return EngineKey(name, capability, str(trt.__version__), precision, *batch,
                     sha256_file(onnx_path))  # fmt: skip


def engine_cache_dir(bundle_or_model_path: Any) -> Path:
    """The engine folder beside a bundle: ``<bundle>.engines`` next to the bundle directory or
    archive. Accepts a :class:`~calcsdk.bundle.Bundle`, a bundle directory or a model file in
    one. Model files of an archive bundle live in a private temporary copy, so they share a
    per-user cache (``$XDG_CACHE_HOME/calcsdk/engines``; safe: keys hash the ONNX bytes)."""
    source = getattr(bundle_or_model_path, "source", bundle_or_model_path)
    path = Path(source).absolute()
    bundle = path.parent if path.is_file() and path.suffix == ".onnx" else path
    tmp = Path(tempfile.gettempdir()).absolute()
    if bundle.parent == tmp and bundle.name.startswith("calcsdk-bundle-"):
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return base / "calcsdk" / "engines"
    return bundle.parent / f"{bundle.name}.engines"


# --- build and cache ----------------------------------------------------------------------
def _logger(trt: Any) -> Any:
    return trt.Logger(trt.Logger.WARNING)


def _has_qdq(trt: Any, network: Any) -> bool:
    kinds = {trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE}
    return any(network.get_layer(i).type in kinds for i in range(network.num_layers))


def _input_shape(trt_input: Any, batch: int, source: Any) -> tuple[int, ...]:
    dims = tuple(trt_input.shape)
    if any(d < 0 for d in dims[1:]):
        raise BackendUnavailableError(
            f"input {trt_input.name!r} has dynamic non-batch dims {dims}; export the ONNX "
            "with a fixed input size for TensorRT",
            source,
        )
    return (batch if dims[0] < 0 else dims[0], *dims[1:])


def build_engine(
    onnx_path: str | os.PathLike,
    key: EngineKey,
    *,
    calibrator: Any = None,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> bytes:
    """Build a serialized TensorRT engine from ``onnx_path`` for ``key``.

    Every input's first axis gets one optimisation profile ``(key.batch_min, key.batch_opt,
    key.batch_max)``; other axes must be fixed. ``fp16`` sets the FP16 flag. ``int8`` sets
    INT8 and FP16: a graph with QuantizeLinear/DequantizeLinear nodes is quantised explicitly
    (no calibrator; TensorRT needs symmetric int8 Q/DQ), any other needs ``calibrator`` (an
    ``IInt8EntropyCalibrator2``, see :mod:`calcsdk.backends.tensorrt_calibrator`), which is
    run with batch size ``calibrator.get_batch_size()``. ``workspace_bytes``: builder scratch
    memory in bytes. Returns the engine's bytes; raises BackendUnavailableError on failure.
    """
    trt = import_tensorrt()
    logger = _logger(trt)
    try:
        builder = trt.Builder(logger)
    except Exception as exc:  # pybind raises TypeError/RuntimeError without a usable GPU
        raise BackendUnavailableError(
            f"cannot create a TensorRT builder: {exc}", onnx_path
        ) from None
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT cannot parse the ONNX: {errors}", onnx_path)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    profile = builder.create_optimization_profile()
    for tensor in inputs:
        shapes = [_input_shape(tensor, b, onnx_path) for b in
                  (key.batch_min, key.batch_opt, key.batch_max)]  # fmt: skip
        profile.set_shape(tensor.name, *shapes)
    config.add_optimization_profile(profile)

    if key.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if key.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if not _has_qdq(trt, network):
            if calibrator is None:
                raise BackendUnavailableError(
                    "int8 needs a calibrator (the ONNX has no Q/DQ nodes)", onnx_path
                )
            check = getattr(calibrator, "check_inputs", None)
            if check is not None:  # ArrayInt8Calibrator: refuse data that do not fit
                check({t.name: _input_shape(t, 1, onnx_path)[1:] for t in inputs})
            calibration = builder.create_optimization_profile()
            batch = int(calibrator.get_batch_size())
            for tensor in inputs:
                shape = _input_shape(tensor, batch, onnx_path)
                calibration.set_shape(tensor.name, shape, shape, shape)
            config.int8_calibrator = calibrator  # deprecated in 10.1, still supported in 10.x
            config.set_calibration_profile(calibration)
        elif calibrator is not None:
            log.info("%s has Q/DQ nodes: explicit int8, the calibrator is not used", onnx_path)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(
            f"TensorRT failed to build a {key.precision} engine (see its log)", onnx_path
        )
    return bytes(serialized)


def load_or_build(
    onnx_path: str | os.PathLike,
    key: EngineKey,
    cache_dir: str | os.PathLike,
    calibrator: Any = None,
    *,
    rebuild: bool = False,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> bytes:
    """The engine of ``onnx_path`` for ``key``: read from ``cache_dir / key.file_name()`` when
    present (and not ``rebuild``), else built with :func:`build_engine` and written there
    atomically (:func:`calcsdk.batch.durable.atomic_write_bytes`). Returns its bytes."""
    import_tensorrt()  # refuse early, naming the package, even when a cached file exists
    cache_dir = Path(cache_dir)
    path = cache_dir / key.file_name()
    if path.is_file() and path.stat().st_size > 0 and not rebuild:
        log.debug("reusing TensorRT engine %s", path)
        return path.read_bytes()
    log.info("building TensorRT %s engine for %s -> %s", key.precision, onnx_path, path)
    data = build_engine(onnx_path, key, calibrator=calibrator, workspace_bytes=workspace_bytes)
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return data
