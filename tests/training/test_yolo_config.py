"""YOLOv4 training configurations: the paper's two settings and validation of the fields."""

from __future__ import annotations

import pytest

from calcsdk.training.yolo.config import CONFIGS, YoloTrainConfig, get_config


@pytest.mark.parametrize(
    ("name", "lr", "batch", "epochs"), [("yolov4-1", 1e-3, 128, 50), ("yolov4-2", 1e-4, 128, 100)]
)
def test_paper_settings(name, lr, batch, epochs):
    config = CONFIGS[name]
    assert (config.name, config.learning_rate, config.batch_size, config.epochs) == (
        name,
        lr,
        batch,
        epochs,
    )
    assert config.accumulation_steps == batch // config.micro_batch_size


def test_get_config_overrides_and_rejects_unknown():
    config = get_config("yolov4-2", micro_batch_size=4, width=0.25)
    assert (config.micro_batch_size, config.width, config.learning_rate) == (4, 0.25, 1e-4)
    assert config.accumulation_steps == 32
    with pytest.raises(ValueError, match="unknown YOLOv4 config"):
        get_config("yolov4-3")
    with pytest.raises(TypeError, match="lr"):
        get_config("yolov4-1", lr=0.1)


@pytest.mark.parametrize(
    "fields",
    [
        {"batch_size": 128, "micro_batch_size": 48},
        {"batch_size": 0},
        {"learning_rate": 0.0},
        {"layout": "resize"},
        {"network_size": 500},
        {"tile_overlap": 512},
        {"mosaic_probability": 1.5},
        {"objectness_prior": 0.0},
        {"ema_decay": 1.0},
        {"anchor_count": 6},
        {"gamma_range": (1.2, 0.8)},
        {"negative_tile_ratio": -1.0},
        {"max_steps": 0},
    ],
)
def test_invalid_fields_raise(fields):
    with pytest.raises(ValueError):
        YoloTrainConfig(**fields)
