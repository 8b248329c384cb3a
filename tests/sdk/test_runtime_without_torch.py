"""The runtime package must import and work with torch and scikit-learn absent.

A child interpreter installs an import hook that makes ``torch``, ``sklearn`` and ``skl2onnx``
unimportable (as in a runtime-only environment), then imports every module of ``calcsdk``'s
runtime (the ``sdk/`` folder) and exercises the public entry points.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[2] / "sdk"

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = ("torch", "sklearn", "skl2onnx", "torchvision")
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by test)")
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _runtime_modules() -> list[str]:
    names = []
    for path in sorted(SDK.rglob("*.py")):
        rel = path.relative_to(SDK).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.append(".".join(["calcsdk", *parts]))
    return names


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_blocker_really_blocks():
    result = _run("import torch")
    assert result.returncode != 0 and "blocked by test" in result.stderr


def test_import_calcsdk_without_torch():
    modules = _runtime_modules()
    assert "calcsdk.image" in modules or len(modules) > 5
    result = _run(
        f"""
        import importlib, sys
        import calcsdk
        from calcsdk import Detections, CalcSdkError
        for name in {modules!r}:
            importlib.import_module(name)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn"))
        assert not heavy, heavy
        print("ok", len({modules!r}))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


@pytest.mark.parametrize("command", ["--help", "preprocess --help", "demo --help"])
def test_cli_help_without_torch(command):
    result = _run(
        f"""
        import sys
        from calcsdk.cli import main
        try:
            main({command.split()!r})
        except SystemExit as exc:
            sys.exit(exc.code)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "usage: calcsdk" in result.stdout


def test_detect_without_torch(toy_bundle, tmp_path):
    """The runtime scores a mammogram end to end with torch and scikit-learn unimportable."""
    import numpy as np

    pixels = np.zeros((400, 320), np.uint16)
    pixels[60:340, :250] = 1500
    pixels[190:200, 100:110] = 4000
    np.save(tmp_path / "m.npy", pixels)
    result = _run(
        f"""
        import sys
        import numpy as np
        from calcsdk import Detector
        det = Detector({str(toy_bundle)!r}).detect(np.load({str(tmp_path / "m.npy")!r}), conf=0.0, spacing_mm=0.1)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn"))
        assert not heavy, heavy
        print("detections", len(det), det.boxes.dtype)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("detections") and "float32" in result.stdout
