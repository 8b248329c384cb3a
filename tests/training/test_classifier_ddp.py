"""DistributedDataParallel: two CPU processes under torchrun (gloo) end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from calcsdk.training.classifier import distributed as ddp
from calcsdk.training.classifier import load_classifier

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture
def tiny_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "rois.npz"
    np.savez(
        path,
        x_train=rng.random((24, 227, 227), dtype=np.float32),
        y_train=np.arange(24) % 3,
        x_val=rng.random((7, 227, 227), dtype=np.float32),  # odd: ranks get 4 and 3
        y_val=np.arange(7) % 3,
    )
    return path


def _torchrun(npz, out, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "calcsdk.training.classifier.train",
        "--data", str(npz), "--out", str(out), "--config", "rcnn-1", "--width", "0.0625",
        "--batch-size", "8", "--learning-rate", "0.01", "--no-progress", "--device", "cpu",
        *extra,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_two_cpu_ranks_end_with_identical_weights(tiny_npz, tmp_path):
    out = tmp_path / "run"
    done = _torchrun(tiny_npz, out, "--epochs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    replicas = json.loads((out / "replicas.json").read_text())
    assert replicas["world_size"] == 2
    first, second = replicas["digests"]
    assert first == second
    # The checkpoint rank 0 wrote holds those very weights, and they moved from the start.
    model = load_classifier(out / "last.pt")
    assert ddp.parameter_digest(model) == first
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(0 <= r["val_accuracy"] <= 1 for r in log)


# --- single-process behaviour of the helpers --------------------------------------------------
@pytest.fixture
def no_torchrun_env(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_single_process_context(no_torchrun_env):
    context = ddp.setup_distributed("cpu")
    assert (context.rank, context.world_size, context.is_main, context.is_distributed) == (
        0,
        1,
        True,
        False,
    )
    assert ddp.sum_over_ranks([1.0, 2.5], context) == [1.0, 2.5]
    model = torch.nn.Linear(2, 2)
    assert ddp.gather_parameter_digests(model, context) == [ddp.parameter_digest(model)]
    ddp.barrier(context)
    ddp.teardown_distributed(context)


@pytest.mark.parametrize(("value", "ok"), [("2", True), ("two", False), ("", False)])
def test_world_size_env_must_be_an_integer(monkeypatch, no_torchrun_env, value, ok):
    monkeypatch.setenv("WORLD_SIZE", value)
    if ok:
        assert ddp._env_int("WORLD_SIZE", 1) == 2
    else:
        with pytest.raises(ValueError, match="WORLD_SIZE"):
            ddp._env_int("WORLD_SIZE", 1)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("cpu", "cpu"),
        (torch.device("cpu"), "cpu"),
        (None, "cuda:0" if torch.cuda.is_available() else "cpu"),
    ],
)
def test_resolve_device(requested, expected):
    assert str(ddp.resolve_device(requested)) == expected


def test_parameter_digest_sees_every_change():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = ddp.parameter_digest(model)
    with torch.no_grad():
        model.bias[1] += 1e-7
    assert ddp.parameter_digest(model) != before
