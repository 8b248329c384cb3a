"""Where a benchmark ran: CPU, GPU, OS and library versions (the ``environment`` of bench JSON).

Nothing here needs a GPU or optional package: absent things are reported as ``None``.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
from typing import Any

__all__ = ["cpu_model", "cpu_simd", "environment_fingerprint"]

# The vector extensions that set CPU training and inference speed here: the same "AMD EPYC"
# model name has run AlexNet training at 38.8 ROIs/s with AVX-512 and ~15-20 with AVX2 only.
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_simd(cpuinfo: str | None = None) -> list[str] | None:
    """Which of :data:`SIMD_FLAGS` the CPU reports, in that order.

    Args:
        cpuinfo: text of ``/proc/cpuinfo``; ``None`` reads it.
    Returns:
        The flags present (from the first ``flags`` line), or ``None`` where there is no
        ``/proc/cpuinfo`` (macOS, Windows) or no ``flags`` line (non-x86).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        if line.lower().startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in SIMD_FLAGS if flag in present]
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _gpus() -> list[dict[str, str]] | None:
    """``nvidia-smi`` GPUs (name, driver, memory), or ``None`` without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    query = "name,driver_version,memory.total"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [{"error": str(exc)}]
    keys = query.split(",")
    return [dict(zip(keys, (v.strip() for v in line.split(",")))) for line in out.splitlines()]


def _version(module: str) -> str | None:
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown"))
    except Exception:
        return None


def environment_fingerprint() -> dict[str, Any]:
    """CPU model and cores, GPUs, OS and the versions that decide latency."""
    import cv2

    try:
        import onnxruntime as ort

        providers = list(ort.get_available_providers())
    except ImportError:  # pragma: no cover - a runtime dependency
        providers = []
    return {
        "cpu": {
            "model": cpu_model(),
            "simd": cpu_simd(),
            "logical_cores": os.cpu_count(),
            "usable_cores": _usable_cores(),
            "machine": platform.machine(),
        },
        "gpus": _gpus(),
        "os": platform.platform(),
        "versions": {
            "python": platform.python_version(),
            "calcsdk": _version("calcsdk"),
            "numpy": _version("numpy"),
            "opencv": cv2.__version__,
            "onnxruntime": _version("onnxruntime"),
            "tensorrt": _version("tensorrt"),
            "torch": _version("torch") if "torch" in sys.modules else None,
        },
        "onnxruntime_providers": providers,
    }
