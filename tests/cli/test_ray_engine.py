"""``calcsdk detect --engine ray``: on a local Ray (2 CPUs, started once for the module) it gives
the same outputs, errors and resume behaviour as the local engine; without Ray, a clear error.

The Ray runs go through ``calcsdk.cli.main`` in this process, since the test owns the Ray session
(``ray.init(num_cpus=2)``); the engine joins it instead of starting its own."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from calcsdk.benchmarks.phantom import draw_phantom
from calcsdk.cli import main as calcsdk_main
from calcsdk.image import write_png

SHAPE = (300, 240)


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip(
        "ray", reason='Ray is not installed: pip install "calcsdk[distributed]"'
    )
    pytest.importorskip("ray.data", reason="Ray Data is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ray")
    folder = root / "in"
    folder.mkdir()
    for index in range(6):
        spacing = None if index == 5 else (0.2, 0.2)  # one file relies on --spacing
        write_png(folder / f"m{index}.png", draw_phantom(index, SHAPE)[0], spacing)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def records(journal: Path) -> dict[str, dict]:
    lines = [json.loads(x) for x in journal.read_text().splitlines()[1:]]
    return {r["file"]: {k: v for k, v in r.items() if k != "overlay"} for r in lines}


def run_cli(args: list[str], cwd: Path, monkeypatch) -> int:
    monkeypatch.chdir(cwd)
    return calcsdk_main(args)


def test_ray_engine_matches_the_local_engine(ray_session, inputs, toy_bundle, monkeypatch, capsys):
    common = ["detect", "in", "--model", str(toy_bundle), "--spacing", "0.2", "--threads", "1"]
    local = run_cli(
        [*common, "--out", "local/r.csv", "--overlays", "local/ov"], inputs, monkeypatch
    )
    remote = run_cli(
        [
            *common,
            "--out",
            "ray/r.csv",
            "--overlays",
            "ray/ov",
            "--engine",
            "ray",
            "--workers",
            "2",
        ],
        inputs,
        monkeypatch,
    )
    assert (local, remote) == (1, 1)  # the corrupt file fails in both
    summary = capsys.readouterr().err
    assert summary.count("images: 6 scored, 1 failed") == 2
    local_rows, ray_rows = read_csv(inputs / "local/r.csv"), read_csv(inputs / "ray/r.csv")
    assert local_rows and ray_rows == local_rows
    assert records(inputs / "ray/r.csv.journal") == records(inputs / "local/r.csv.journal")
    errors = [json.loads(x) for x in (inputs / "ray/r.errors.jsonl").read_text().splitlines()]
    assert [(e["file"], e["error"]) for e in errors] == [("in/corrupt.png", "CorruptImageError")]
    assert sorted(p.name for p in (inputs / "ray/ov").iterdir()) == sorted(
        p.name for p in (inputs / "local/ov").iterdir()
    )
    # --resume on Ray: only the failed file is tried again
    resumed = run_cli(
        [*common, "--out", "ray/r.csv", "--engine", "ray", "--resume"], inputs, monkeypatch
    )
    assert resumed == 1
    assert "images: 0 scored, 1 failed, 6 already done (resumed)" in capsys.readouterr().err
    assert read_csv(inputs / "ray/r.csv") == local_rows


BLOCK_RAY = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "ray":
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by test)")
    sys.meta_path.insert(0, Block())
    from calcsdk.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_without_ray_the_error_says_how_to_install(inputs, toy_bundle):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_RAY,
            "detect",
            "in",
            "--model",
            str(toy_bundle),
            "--out",
            "noray/r.csv",
            "--engine",
            "ray",
        ],
        cwd=inputs,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert 'pip install "calcsdk[distributed]"' in result.stderr
