"""`calcsdk train yolo|rcnn|classifier` are wired into the top-level CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from calcsdk.cli import main
from calcsdk.image import write_png


@pytest.fixture()
def tiny_coco(tmp_path):
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(4):
        pixels = (rng.random((256, 256)) * 300 + 1000).astype(np.uint16)
        pixels[100:110, 120:130] = 4000
        write_png(tmp_path / f"{i}.png", pixels, (0.2, 0.2), bits_stored=12)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 256, "height": 256,
                       "spacing_mm": 0.2, "patient_id": f"p{i}"})  # fmt: skip
        for k in range(3):  # k-means anchors need >= 9 distinct box sizes
            side = 20 + 4 * (3 * i + k)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": 1 + (i + k) % 2, "bbox": [20 + 70 * k, 90, side, side],
                                "area": side * side, "iscrowd": 0})  # fmt: skip
    categories = [{"id": 1, "name": "malignant"}, {"id": 2, "name": "benign"}]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    return tmp_path


def test_train_yolo_from_the_cli(tiny_coco, tmp_path):
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status = main(
            ["train", "yolo", "--data", str(tiny_coco), "--out", str(out), "--width", "0.0625",
             "--depth", "0.125", "--network-size", "64", "--tile-overlap", "16", "--max-steps", "1",
             "--batch-size", "2",
             "--micro-batch-size", "2", "--val-fraction", "0.25", "--no-progress"]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert status == 0 and (out / "last.pt").exists() and (out / "settings.json").exists()


@pytest.mark.parametrize("trainer", ["classifier", "rcnn", "yolo"])
def test_every_trainer_has_help(trainer, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", trainer, "--help"])
    assert info.value.code == 0
    assert f"usage: calcsdk train {trainer}" in capsys.readouterr().out


def test_train_rcnn_rejects_zero_folds(tiny_coco, tmp_path):
    with pytest.raises(SystemExit, match="--folds should be >= 1"):
        main(["train", "rcnn", "--data", str(tiny_coco), "--out", str(tmp_path / "r"),
              "--folds", "0", "--test-images", "377"])  # fmt: skip
