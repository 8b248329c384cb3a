"""train_yolo end to end on tiny synthetic mammograms: the loss falls, the evaluation runs,
runs resume exactly, the schedule follows darknet."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from calcsdk.image import write_png
from calcsdk.training.datasets import ImageRecord
from calcsdk.training.yolo.config import get_config
from calcsdk.training.yolo.train import load_trained_yolo, train_yolo

# tiny YOLOv4 (width 1/8, depth 1/3), 64-pixel tiles at 0.2 mm, no augmentation (a fixed task)
TINY = get_config(
    "yolov4-1",
    width=0.125,
    depth=0.33,
    network_size=64,
    tile_overlap=16,
    batch_size=8,
    micro_batch_size=4,
    epochs=3,
    learning_rate=0.01,
    warmup_epochs=0.2,
    augment=False,
    tile_jitter=False,
    ema_decay=0.5,
    eval_every_epochs=3,
    progress=False,
)
ANCHORS = np.array([[w, w] for w in (6, 8, 10, 12, 14, 16, 18, 22, 26)], np.float32)


def _draw(rng: np.random.Generator, clusters: int, height: int = 160, width: int = 128):
    """A bright half-ellipse 'breast' with one or two clusters of bright dots; 0.2 mm pixels."""
    yy, xx = np.mgrid[0:height, 0:width]
    breast = (xx / (0.8 * width)) ** 2 + ((yy - height / 2) / (0.45 * height)) ** 2 <= 1
    image = np.full((height, width), 300.0)
    image[breast] = 1800 + 150 * rng.standard_normal(breast.sum())
    boxes, labels = [], []
    for row in range(clusters):
        label = int(rng.integers(2))
        cx, cy = rng.uniform(16, 0.5 * width), rng.uniform(30, 55) + 70 * row
        count, radius, spread = (8, 1.0, 5.0) if label == 0 else (4, 2.0, 7.0)
        dots = np.c_[cx, cy] + rng.uniform(-spread, spread, size=(count, 2))
        for x, y in dots:
            image[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] += 1500
        low, high = dots.min(0) - radius - 1, dots.max(0) + radius + 2
        boxes.append([*np.maximum(low, 0), min(high[0], width), min(high[1], height)])
        labels.append(label)
    return np.clip(image, 0, 4095).astype(np.uint16), np.array(boxes, np.float32), labels


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convolutions: thread synchronisation costs more than it saves, and on a loaded
    machine two spinning threads slowed a 3 s run to minutes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("yolo-train")
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):  # 10 clusters: enough distinct sizes for 9 k-means anchors
        pixels, boxes, labels = _draw(rng, clusters=2 if i % 3 else 1)
        path = folder / f"img{i}.png"
        write_png(path, pixels, spacing_mm=0.2, bits_stored=12)
        out.append(ImageRecord(str(path), boxes, labels, (0.2, 0.2), patient_id=f"p{i}"))
    return out


def test_tiny_yolo_loss_falls_and_evaluation_runs(records, tmp_path):
    result = train_yolo(records, TINY, tmp_path, val_records=records[:2], device="cpu")
    losses = [record["loss"] for record in result.history]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[2] < losses[1] < losses[0] and losses[2] < 0.85 * losses[0], losses
    val = result.history[-1]["val"]
    assert set(val) == {"precision", "recall", "f1", "mAP"}
    assert all(0.0 <= v <= 1.0 for v in val.values())
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3] and log[0]["images_per_second"] > 0
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["preprocess"]["network_size"] == 64 and len(settings["yolo"]["anchors"]) == 9
    assert result.settings.anchors == tuple(map(tuple, settings["yolo"]["anchors"]))
    assert result.best_weights_path is not None
    model, anchors = load_trained_yolo(result.last_checkpoint_path)
    assert not model.training and anchors.shape == (9, 2)


def test_bf16_autocast_trains_too(records, tmp_path):
    """``autocast="bf16"`` (for GPUs) runs the forward in bfloat16 and still learns; on the CPU
    here, which supports bfloat16 autocast as well."""
    config = dataclasses.replace(TINY, autocast="bf16", eval_every_epochs=100)
    result = train_yolo(records, config, tmp_path, anchors=ANCHORS, device="cpu")
    losses = [record["loss"] for record in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    with pytest.raises(ValueError, match="autocast"):
        dataclasses.replace(TINY, autocast="fp8")


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_inside_an_epoch_replays_the_uninterrupted_run(records, tmp_path):
    config = dataclasses.replace(TINY, epochs=2, batch_size=8, micro_batch_size=8)
    whole = train_yolo(records[:2], config, tmp_path / "whole", anchors=ANCHORS, device="cpu")
    steps = whole.global_step
    assert steps >= 4
    cut = dataclasses.replace(config, max_steps=steps // 2 + 1)  # stops inside epoch 2
    first = train_yolo(records[:2], cut, tmp_path / "cut", anchors=ANCHORS, device="cpu")
    assert first.global_step == steps // 2 + 1 and first.history[-1]["partial"]
    resumed = train_yolo(records[:2], config, tmp_path / "cut", resume=True, device="cpu")
    assert resumed.global_step == steps
    a, b = _weights(whole.last_checkpoint_path), _weights(resumed.last_checkpoint_path)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-6)
    for key, value in a["ema"]["module"].items():
        torch.testing.assert_close(b["ema"]["module"][key], value, rtol=1e-5, atol=1e-6)


def test_existing_run_is_not_overwritten_and_changed_config_is_refused(records, tmp_path):
    config = dataclasses.replace(TINY, epochs=1, max_steps=1)
    train_yolo(records[:1], config, tmp_path, anchors=ANCHORS, device="cpu")
    with pytest.raises(FileExistsError):
        train_yolo(records[:1], config, tmp_path, anchors=ANCHORS, device="cpu")
    changed = dataclasses.replace(config, learning_rate=0.5)
    with pytest.raises(ValueError, match="learning_rate"):
        train_yolo(records[:1], changed, tmp_path, resume=True, device="cpu")
    with pytest.raises(ValueError, match="at least one"):
        train_yolo([], config, tmp_path / "empty", device="cpu")


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 1e-3 * (1 / 10) ** 4),  # burn-in: 1 epoch = 10 steps, power 4
        (4, 1e-3 * (5 / 10) ** 4),
        (10, 1e-3),
        (79, 1e-3),
        (80, 1e-4),  # 80 % of 100 steps
        (90, 1e-5),
        (99, 1e-5),
    ],
)
def test_learning_rate_follows_darknet_steps(step, expected):
    config = get_config("yolov4-1", epochs=10, warmup_epochs=1.0)
    assert config.learning_rate_at(step, steps_per_epoch=10) == pytest.approx(expected)


def test_precise_bn_recalibrates_the_ema_statistics_only(records, tmp_path):
    """With ``precise_bn_tiles`` the run ends by re-estimating the EMA's BatchNorm statistics:
    the same weights as a run without it, other running statistics, and the tile count logged."""
    config = dataclasses.replace(TINY, epochs=1, eval_every_epochs=100, precise_bn_tiles=0)
    plain = train_yolo(records[:3], config, tmp_path / "plain", anchors=ANCHORS, device="cpu")
    precise = train_yolo(
        records[:3],
        dataclasses.replace(config, precise_bn_tiles=6),
        tmp_path / "precise",
        anchors=ANCHORS,
        device="cpu",
    )
    assert plain.history[-1]["precise_bn_tiles"] == 0
    assert precise.history[-1]["precise_bn_tiles"] == 6
    a, b = _weights(plain.last_checkpoint_path), _weights(precise.last_checkpoint_path)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-6)
    ema_a, ema_b = a["ema"]["module"], b["ema"]["module"]
    stats = [k for k in ema_a if k.endswith(("running_mean", "running_var"))]
    assert stats
    for key in ema_a:
        if key in stats:
            assert not torch.allclose(ema_a[key], ema_b[key]), key
        elif not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(ema_b[key], ema_a[key], rtol=1e-5, atol=1e-6)
    # 6 tiles in micro-batches of 4: two cumulative batches
    assert all(int(v) == 2 for k, v in ema_b.items() if k.endswith("num_batches_tracked"))
    with pytest.raises(ValueError, match="precise_bn_tiles"):
        dataclasses.replace(TINY, precise_bn_tiles=-1)
