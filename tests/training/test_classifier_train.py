"""ROI-classifier training: configs, augmentation, learning, determinism, resume, validation."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch

from calcsdk.training.classifier import (
    ClassifierTrainConfig,
    augment_batch,
    get_config,
    load_classifier,
    predict,
    train_classifier,
)
from calcsdk.training.classifier.train import _build_model, _param_groups
from calcsdk.training.models import AlexNet, AlexNetConfig

TINY_NET = AlexNetConfig(width=1 / 16, dropout=0.0)
TINY_NET_DROPOUT = AlexNetConfig(width=1 / 16, dropout=0.5)  # exercises the dropout RNG
ROI = 227


def draw_rois(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic ROIs on a noisy background: 0 = a cluster of small bright dots,
    1 = a few large thin rings, 2 = background only. float32 (N, 227, 227), int64 (N,)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ROI, 0:ROI]
    images, labels = [], []
    for label in (0, 1, 2):
        for _ in range(per_class):
            image = 0.3 + 0.05 * rng.standard_normal((ROI, ROI))
            if label == 0:
                cx, cy = rng.uniform(60, 167, 2)
                for _ in range(rng.integers(6, 11)):
                    px, py = cx + rng.uniform(-30, 30), cy + rng.uniform(-30, 30)
                    image[(xx - px) ** 2 + (yy - py) ** 2 <= rng.uniform(2, 3.5) ** 2] = 0.9
            elif label == 1:
                for _ in range(rng.integers(1, 4)):
                    px, py = rng.uniform(40, 187, 2)
                    distance = np.hypot(xx - px, yy - py)
                    image[np.abs(distance - rng.uniform(10, 25)) <= 1.5] = 0.8
            images.append(np.clip(image, 0, 1))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images).astype(np.float32)[order], np.array(labels, np.int64)[order]


@pytest.fixture(scope="module")
def rois():
    x_train, y_train = draw_rois(30, seed=0)
    x_val, y_val = draw_rois(10, seed=1)
    return x_train, y_train, x_val, y_val


def _config(**overrides) -> ClassifierTrainConfig:
    fast = {"batch_size": 16, "learning_rate": 3e-3, "epochs": 3, "patience": 0, "progress": False}
    return get_config("rcnn-1", **{**fast, **overrides})


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


# --- configs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "learning_rate", "batch_size", "epochs"),
    [("rcnn-1", 1e-3, 128, 50), ("rcnn-2", 1e-4, 128, 100)],
)
def test_paper_configs(name, learning_rate, batch_size, epochs):
    config = get_config(name)
    assert (config.name, config.learning_rate, config.batch_size, config.epochs) == (
        name,
        learning_rate,
        batch_size,
        epochs,
    )
    assert (config.momentum, config.weight_decay) == (0.9, 5e-4)
    assert config.last_layer_lr_multiplier > 1


def test_get_config_overrides_and_stays_frozen():
    config = get_config("rcnn-2", epochs=3, momentum=0.8)
    assert (config.epochs, config.momentum, config.learning_rate) == (3, 0.8, 1e-4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 5


@pytest.mark.parametrize(
    ("name", "overrides", "error"),
    [
        ("rcnn-3", {}, ValueError),
        ("rcnn-1", {"lr": 0.1}, TypeError),
        ("rcnn-1", {"learning_rate": 0.0}, ValueError),
        ("rcnn-1", {"batch_size": 0}, ValueError),
        ("rcnn-1", {"patience": -1}, ValueError),
        ("rcnn-1", {"flip_probability": 1.5}, ValueError),
        ("rcnn-1", {"gamma_range": (1.2, 0.8)}, ValueError),
        ("rcnn-1", {"contrast_range": (0.0, 1.0)}, ValueError),
        ("rcnn-1", {"foreground_fraction": 1.0}, ValueError),
        ("rcnn-1", {"selection_metric": "f1"}, ValueError),
        ("rcnn-1", {"lr_schedule": "linear"}, ValueError),
        ("rcnn-1", {"warmup_epochs": -1.0}, ValueError),
    ],
)
def test_get_config_rejects(name, overrides, error):
    with pytest.raises(error):
        get_config(name, **overrides)


def test_last_layer_learns_faster_and_biases_do_not_decay():
    model = AlexNet(TINY_NET)
    groups = _param_groups(model, get_config("rcnn-1", last_layer_lr_multiplier=10.0))
    lr_of = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert len(lr_of) == len(list(model.parameters()))  # every parameter, once
    assert lr_of[id(model.fc8.weight)] == (pytest.approx(1e-2), 5e-4)
    assert lr_of[id(model.fc8.bias)] == (pytest.approx(1e-2), 0.0)
    assert lr_of[id(model.features.conv1.weight)] == (1e-3, 5e-4)
    assert lr_of[id(model.features.conv1.bias)] == (1e-3, 0.0)


# --- augmentation -----------------------------------------------------------------------------
NO_AUGMENT = {
    "flip_probability": 0.0,
    "max_rotation_degrees": 0.0,
    "gamma_range": (1.0, 1.0),
    "contrast_range": (1.0, 1.0),
}


def _batch(n: int = 4) -> torch.Tensor:
    return torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (NO_AUGMENT, lambda x: x),
        ({**NO_AUGMENT, "flip_probability": 1.0}, lambda x: x.flip(-1).flip(-2)),
        ({**NO_AUGMENT, "gamma_range": (2.0, 2.0)}, lambda x: x**2),
        (
            {**NO_AUGMENT, "contrast_range": (2.0, 2.0)},
            lambda x: (2 * x - x.mean((1, 2, 3), True)).clamp(0, 1),
        ),
    ],
)
def test_augment_exact_transforms(overrides, expected):
    x = _batch()
    out = augment_batch(x, get_config("rcnn-1", **overrides), torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, expected(x))


@pytest.mark.parametrize("n", [0, 1, 5])
def test_augment_keeps_shape_range_and_is_seeded(n):
    config = get_config("rcnn-1")
    x = _batch(n)
    first = augment_batch(x, config, torch.Generator().manual_seed(7))
    again = augment_batch(x, config, torch.Generator().manual_seed(7))
    assert first.shape == x.shape and first.dtype == x.dtype
    assert torch.equal(first, again)
    if n:
        assert 0 <= first.min() and first.max() <= 1
        assert not torch.equal(first, augment_batch(x, config, torch.Generator().manual_seed(8)))
        assert not torch.equal(first, x)


def test_rotation_turns_a_bar():
    x = torch.zeros(1, 1, 33, 33)
    x[..., 16, 4:29] = 1.0  # horizontal bar through the centre
    config = get_config("rcnn-1", **{**NO_AUGMENT, "max_rotation_degrees": 15.0})
    out = augment_batch(x, config, torch.Generator().manual_seed(3))
    assert out[..., 16, 16] > 0.9  # the centre stays
    assert not torch.allclose(out, x, atol=0.05)  # but the bar has turned


@pytest.mark.parametrize("x", [torch.zeros(2, 32, 32), torch.zeros(2, 1, 8, 8, dtype=torch.uint8)])
def test_augment_rejects(x):
    with pytest.raises(ValueError):
        augment_batch(x, get_config("rcnn-1"), torch.Generator())


# --- training ---------------------------------------------------------------------------------
def test_training_learns_and_writes_its_files(rois, tmp_path):
    result = train_classifier(*rois, _config(epochs=8), tmp_path, model_config=TINY_NET)
    history = result.history
    assert [h["epoch"] for h in history] == list(range(1, 9))
    assert history[-1]["loss"] < 0.9 * history[0]["loss"]
    assert result.best_val_accuracy > 0.5  # chance is 1/3
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged == history
    keys = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert keys <= set(logged[0])
    # best.pt holds the weights of the best epoch: predict() reproduces its accuracy.
    model = load_classifier(result.best_weights_path)
    probs, fc7 = predict(model, rois[2], batch_size=7)
    assert probs.shape == (30, 3) and fc7.shape == (30, model.fc7_dim)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert (probs.argmax(1) == rois[3]).mean() == pytest.approx(result.best_val_accuracy)


def test_same_seed_same_weights_other_seed_other_weights(rois, tmp_path):
    subset = (rois[0][:48], rois[1][:48], rois[2], rois[3])
    runs = {}
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        result = train_classifier(
            *subset, _config(epochs=2, seed=seed), tmp_path / name, model_config=TINY_NET_DROPOUT
        )
        runs[name] = _weights(result.last_checkpoint_path)
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_resume_equals_uninterrupted_run(rois, tmp_path):
    subset = (rois[0][:48], rois[1][:48], rois[2], rois[3])
    whole = train_classifier(
        *subset, _config(epochs=4), tmp_path / "whole", model_config=TINY_NET_DROPOUT
    )
    train_classifier(*subset, _config(epochs=2), tmp_path / "split", model_config=TINY_NET_DROPOUT)
    resumed = train_classifier(
        *subset, _config(epochs=4), tmp_path / "split", model_config=TINY_NET_DROPOUT, resume=True
    )

    def without_time(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert without_time(resumed.history) == without_time(whole.history)
    a, b = _weights(whole.last_checkpoint_path), _weights(resumed.last_checkpoint_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = (tmp_path / "split" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2, 3, 4]


def test_cosine_run_interrupted_and_resumed_equals_uninterrupted(rois, tmp_path, monkeypatch):
    import calcsdk.training.classifier.train as train_module

    subset = (rois[0][:48], rois[1][:48], rois[2], rois[3])
    config = _config(epochs=4, lr_schedule="cosine", warmup_epochs=1.0)
    whole = train_classifier(*subset, config, tmp_path / "whole", model_config=TINY_NET_DROPOUT)
    real, calls = train_module._train_one_epoch, []

    def crash_in_epoch_3(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(train_module, "_train_one_epoch", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(*subset, config, tmp_path / "split", model_config=TINY_NET_DROPOUT)
    monkeypatch.setattr(train_module, "_train_one_epoch", real)
    resumed = train_classifier(
        *subset, config, tmp_path / "split", model_config=TINY_NET_DROPOUT, resume=True
    )
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in whole.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history] == strip
    a, b = _weights(whole.last_checkpoint_path), _weights(resumed.last_checkpoint_path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cosine_schedule_sets_every_steps_learning_rate(rois, tmp_path, monkeypatch):
    from calcsdk.training.classifier.lr_schedule import lr_factor

    seen = []
    real_step = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append([group["lr"] for group in self.param_groups])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    subset = (rois[0][:48], rois[1][:48], rois[2], rois[3])  # 48 rows: 3 steps of 16
    config = _config(epochs=3, lr_schedule="cosine", warmup_epochs=1.0)
    result = train_classifier(*subset, config, tmp_path, model_config=TINY_NET)
    assert len(seen) == 9
    factors = [lr_factor("cosine", step, 9, 3) for step in range(9)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])  # warmup
    assert factors[3] == 1.0 and all(a > b for a, b in itertools.pairwise(factors[3:]))
    base = [group["lr"] for group in _param_groups(_build_model(TINY_NET, config), config)]
    assert sorted(set(base)) == [3e-3, 3e-2]  # fc8 at 10x, kept by the schedule
    for lrs, factor in zip(seen, factors, strict=True):
        assert lrs == pytest.approx([b * factor for b in base])
    assert [h["lr"] for h in result.history] == pytest.approx([3e-3 * f for f in factors[2::3]])


def _imbalanced(rois, background_per_foreground: int):
    """The module's ROIs with foreground (classes 0 and 1) thinned to 1 in
    ``background_per_foreground`` background, as R-CNN proposals are."""
    x, y = rois[0], rois[1]
    fg = np.flatnonzero(y != 2)[: max(2, int((y == 2).sum()) // background_per_foreground)]
    keep = np.sort(np.concatenate([fg, np.flatnonzero(y == 2)]))
    return x[keep], y[keep], rois[2], rois[3]


def test_foreground_biased_epochs_see_the_foreground_share(rois, tmp_path, monkeypatch):
    import calcsdk.training.classifier.train as train_module

    data = _imbalanced(rois, 6)  # 5 foreground, 30 background
    seen = []
    real = train_module._train_one_epoch

    def spy(trained, optimizer, x, y, indices, *args):
        seen.append(y[indices].numpy())
        return real(trained, optimizer, x, y, indices, *args)

    monkeypatch.setattr(train_module, "_train_one_epoch", spy)
    config = _config(epochs=2, foreground_fraction=0.25)
    result = train_classifier(*data, config, tmp_path, model_config=TINY_NET)
    assert len(seen) == 2 and all(len(labels) == len(data[1]) for labels in seen)
    for labels in seen:  # 25% of 35 draws rounds to 9 foreground, vs 5 when shuffled
        assert (labels != 2).sum() == 9
    assert not np.array_equal(seen[0], seen[1])  # each epoch its own order
    # the same run again draws the same batches (seeded)
    seen.clear()
    train_classifier(*data, config, tmp_path / "again", model_config=TINY_NET)
    assert (tmp_path / "again" / "log.jsonl").exists() and len(seen) == 2
    assert result.history[0]["loss"] == pytest.approx(
        json.loads((tmp_path / "again" / "log.jsonl").read_text().splitlines()[0])["loss"]
    )


def test_balanced_accuracy_selects_the_best_epoch(rois, tmp_path):
    config = _config(epochs=4, selection_metric="balanced_accuracy")
    result = train_classifier(*rois, config, tmp_path, model_config=TINY_NET)
    balanced = [h["val_balanced_accuracy"] for h in result.history]
    assert result.best_val_accuracy == pytest.approx(max(balanced))
    assert result.best_epoch == 1 + int(np.argmax(balanced))
    # balanced accuracy recomputed from best.pt's predictions
    probs, _ = predict(load_classifier(result.best_weights_path), rois[2])
    recalls = [np.mean(probs[rois[3] == c].argmax(1) == c) for c in range(3)]
    assert np.mean(recalls) == pytest.approx(result.best_val_accuracy)


def test_checkpoint_from_before_a_new_config_field_resumes(rois, tmp_path):
    subset = (rois[0][:48], rois[1][:48], rois[2], rois[3])
    train_classifier(*subset, _config(epochs=1), tmp_path, model_config=TINY_NET)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    for newer in (
        "foreground_fraction",
        "background_class",
        "selection_metric",
        "lr_schedule",
        "warmup_epochs",
    ):
        del saved["config"][newer]  # as written by an older calcsdk
    torch.save(saved, tmp_path / "last.pt")
    again = train_classifier(
        *subset, _config(epochs=2), tmp_path, model_config=TINY_NET, resume=True
    )
    assert [h["epoch"] for h in again.history] == [1, 2]
    with pytest.raises(ValueError, match="foreground_fraction"):
        train_classifier(
            *subset, _config(epochs=3, foreground_fraction=0.25), tmp_path,
            model_config=TINY_NET, resume=True,
        )  # fmt: skip


def test_early_stopping(rois, tmp_path):
    # A learning rate too small to change any prediction: val accuracy never improves.
    config = _config(epochs=10, patience=2, learning_rate=1e-12)
    result = train_classifier(*rois, config, tmp_path, model_config=TINY_NET)
    assert result.stopped_early
    assert len(result.history) == 3 and result.best_epoch == 1
    again = train_classifier(*rois, config, tmp_path, model_config=TINY_NET, resume=True)
    assert len(again.history) == 3  # a stopped run stays stopped


def test_run_directory_guards(rois, tmp_path):
    with pytest.raises(FileNotFoundError):
        train_classifier(*rois, _config(epochs=1), tmp_path, model_config=TINY_NET, resume=True)
    train_classifier(*rois, _config(epochs=1), tmp_path, model_config=TINY_NET)
    with pytest.raises(FileExistsError):
        train_classifier(*rois, _config(epochs=1), tmp_path, model_config=TINY_NET)
    with pytest.raises(ValueError, match="learning_rate"):
        train_classifier(
            *rois,
            _config(epochs=2, learning_rate=0.1),
            tmp_path,
            model_config=TINY_NET,
            resume=True,
        )
    with pytest.raises(ValueError, match="model_config"):
        train_classifier(
            *rois, _config(epochs=2), tmp_path, model_config=AlexNetConfig(width=1 / 8), resume=True
        )


GOOD_X, GOOD_Y = np.zeros((3, ROI, ROI), np.float32), np.array([0, 1, 2])


@pytest.mark.parametrize(
    ("x_train", "y_train", "message"),
    [
        (np.zeros((3, ROI, ROI), np.uint8), GOOD_Y, "floating"),
        (np.zeros((3, 224, 224), np.float32), GOOD_Y, "shape"),
        (np.zeros((3, 3, ROI, ROI), np.float32), GOOD_Y, "shape"),
        (np.full((3, ROI, ROI), 2.0, np.float32), GOOD_Y, r"\[0, 1\]"),
        (np.full((3, ROI, ROI), np.nan, np.float32), GOOD_Y, r"\[0, 1\]"),
        (GOOD_X, np.array([0, 1]), "shape"),
        (GOOD_X, np.array([0.0, 1.0, 2.0]), "integer"),
        (GOOD_X, np.array([0, 1, 3]), "labels in"),
        (GOOD_X, np.array([-1, 1, 2]), "labels in"),
        (np.zeros((0, ROI, ROI), np.float32), np.zeros(0, np.int64), "need training"),
    ],
)
def test_training_rejects_bad_inputs(x_train, y_train, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        train_classifier(
            x_train, y_train, GOOD_X, GOOD_Y, _config(), tmp_path, model_config=TINY_NET
        )


def test_batch_larger_than_the_data_trains_one_step(tmp_path):
    result = train_classifier(
        GOOD_X,
        GOOD_Y,
        GOOD_X,
        GOOD_Y,
        _config(epochs=1, batch_size=5),
        tmp_path,
        model_config=TINY_NET,
    )
    assert len(result.history) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_requested_without_cuda_raises(tmp_path):
    with pytest.raises(ValueError, match="CUDA"):
        train_classifier(
            GOOD_X,
            GOOD_Y,
            GOOD_X,
            GOOD_Y,
            _config(),
            tmp_path,
            model_config=TINY_NET,
            device="cuda",
        )


# --- predict ----------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 5])
def test_predict_shapes_and_batch_independence(n):
    torch.manual_seed(0)
    model = AlexNet(TINY_NET).train()
    x = np.random.default_rng(0).random((n, ROI, ROI), dtype=np.float32)
    probs, fc7 = predict(model, x, batch_size=2)
    assert probs.shape == (n, 3) and fc7.shape == (n, 256)
    assert probs.dtype == fc7.dtype == np.float32
    assert model.training  # mode restored
    probs_4d, fc7_4d = predict(model, x[:, None], batch_size=64)
    np.testing.assert_allclose(probs_4d, probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fc7_4d, fc7, rtol=1e-5, atol=1e-6)


def test_predict_rejects_bad_batch_size():
    with pytest.raises(ValueError):
        predict(AlexNet(TINY_NET), GOOD_X, batch_size=0)


def test_init_weights_keeps_matching_layers_and_renews_fc8(tmp_path):
    source = AlexNet(AlexNetConfig(width=1 / 16, num_classes=5))
    path = tmp_path / "pretrained.pt"
    torch.save({"model": source.state_dict()}, path)
    model = _build_model(TINY_NET, get_config("rcnn-1", init_weights=str(path)))
    assert torch.equal(model.features.conv1.weight, source.features.conv1.weight)
    assert torch.equal(model.fc6_to_fc7.fc7.weight, source.fc6_to_fc7.fc7.weight)
    assert model.fc8.out_features == 3  # the new last layer, freshly initialised


def test_float16_rois_train_as_their_float32_values(rois, tmp_path):
    # Paper-scale R-CNN samples stay float16 in memory; every batch is cast to float32, so the
    # run equals one on the same values stored as float32.
    x16 = [rois[0][:48].astype(np.float16), rois[2].astype(np.float16)]
    half = train_classifier(
        x16[0], rois[1][:48], x16[1], rois[3], _config(epochs=1), tmp_path / "h",
        model_config=TINY_NET,
    )  # fmt: skip
    full = train_classifier(
        x16[0].astype(np.float32), rois[1][:48], x16[1].astype(np.float32), rois[3],
        _config(epochs=1), tmp_path / "f", model_config=TINY_NET,
    )  # fmt: skip
    a, b = _weights(half.best_weights_path), _weights(full.best_weights_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = load_classifier(half.best_weights_path)
    for got, want in zip(predict(model, x16[1]), predict(model, x16[1].astype(np.float32))):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_as_roi_tensor_keeps_float16_and_checks_every_chunk():
    from calcsdk.training.classifier.inference import as_roi_tensor

    x = np.full((4097, 1, ROI, ROI), 0.5, np.float16)
    assert as_roi_tensor(x, 1).dtype == torch.float16
    assert as_roi_tensor(x.astype(np.float64)[:2], 1).dtype == torch.float32
    x[4096, 0, 3, 3] = np.nan  # in the second chunk
    with pytest.raises(ValueError, match=r"finite intensities in \[0, 1\]"):
        as_roi_tensor(x, 1)
