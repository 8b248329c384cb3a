"""The wheel a vendor installs carries what ``Detector()`` and ``make demo`` need: every
shipped bundle file, the sample mammograms, the benchmark schema and the ``py.typed`` marker
(PEP 561, so type checkers read calcsdk's annotations); and no weights or run outputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MAX_WHEEL_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> list[str]:
    # built from a copy, so that setuptools' build/ folder never lands in the checkout
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "results", "*.egg-info")
    for folder in ("sdk", "training", "export", "benchmarks"):
        shutil.copytree(REPO / folder, source / folder, ignore=skip)
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps"]
    command += ["--no-build-isolation", "--no-cache-dir", "-q", "-w", str(out)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=out)
    assert built.returncode == 0, built.stderr[-2000:]
    assert "would be ignored" not in built.stderr  # every shipped folder is a listed package
    (wheel,) = out.glob("calcsdk-*.whl")
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_carries_the_shipped_data_and_the_type_marker(wheel_names):
    names = set(wheel_names)
    shipped = [p for p in (REPO / "sdk" / "data").rglob("*") if p.is_file()]
    assert shipped
    for path in shipped:
        assert f"calcsdk/{path.relative_to(REPO / 'sdk').as_posix()}" in names
    assert "calcsdk/py.typed" in names
    assert "calcsdk/benchmarks/schema/bench.schema.json" in names
    assert "calcsdk/batch/archives.py" in names and "calcsdk/training/__init__.py" in names


def test_wheel_holds_no_weights_tests_or_results(wheel_names):
    assert not [n for n in wheel_names if n.endswith((".pt", ".pth", ".npz", ".jsonl"))]
    assert not [n for n in wheel_names if n.startswith(("tests/", "calcsdk/benchmarks/results"))]
