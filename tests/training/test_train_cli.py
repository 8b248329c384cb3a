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


def _tiny_train_yolo(data, out, *extra: str) -> int:
    """``calcsdk train yolo`` on a tiny YOLOv4 (64-pixel tiles, batch 2), one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main(
            ["train", "yolo", "--data", str(data), "--out", str(out), "--width", "0.0625",
             "--depth", "0.125", "--network-size", "64", "--tile-overlap", "16",
             "--batch-size", "2", "--micro-batch-size", "2", "--no-progress", *extra]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def test_train_yolo_from_the_cli(tiny_coco, tmp_path):
    out = tmp_path / "run"
    status = _tiny_train_yolo(tiny_coco, out, "--max-steps", "1", "--val-fraction", "0.25",
                              "--warmup-epochs", "0.1", "--negative-tile-ratio", "0.5",
                              "--eval-every-epochs", "2",
                              "--checkpoint-every-steps", "50", "--precise-bn-tiles", "2",
                              "--no-validation")  # fmt: skip
    assert status == 0 and (out / "last.pt").exists() and (out / "settings.json").exists()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert "val" not in log[-1] and not (out / "best.pt").exists()  # --no-validation
    assert log[-1]["precise_bn_tiles"] == 2
    config = torch.load(out / "last.pt", weights_only=True)["config"]
    assert (config["warmup_epochs"], config["negative_tile_ratio"]) == (0.1, 0.5)
    assert (config["eval_every_epochs"], config["checkpoint_every_steps"]) == (2, 50)


def test_train_yolo_on_another_runs_split_then_evaluates_its_test_images(tiny_coco, tmp_path):
    """``--split`` (another machine's paths, matched by file name) picks train/val/test;
    the test images get the R-CNN's report; ``--max-minutes`` stops after the first step."""
    coco = json.loads((tiny_coco / "annotations.json").read_text())
    (tiny_coco / "4.png").write_bytes((tiny_coco / "3.png").read_bytes())  # a 5th image
    coco["images"].append({**coco["images"][3], "id": 5, "file_name": "4.png", "patient_id": "p4"})
    coco["annotations"].append({**coco["annotations"][-1], "id": 99, "image_id": 5})
    (tiny_coco / "annotations.json").write_text(json.dumps(coco))
    split = {"train": ["/elsewhere/0.png", "/elsewhere/1.png", "/elsewhere/2.png"],
             "val": ["/x/3.png"], "test": ["/x/4.png"]}  # fmt: skip
    (tmp_path / "split.json").write_text(json.dumps(split))
    out = tmp_path / "run"
    status = _tiny_train_yolo(tiny_coco, out, "--max-minutes", "0.0001", "--split",
                              str(tmp_path / "split.json"), "--device", "cpu")  # fmt: skip
    assert status == 0
    written = json.loads((out / "split.json").read_text())
    assert [len(written[k]) for k in ("train", "val", "test")] == [3, 1, 1]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["partial"] and log[0]["global_step"] == 1
    evaluation = json.loads((out / "eval" / "evaluation.json").read_text())
    assert evaluation["overall"]["n_images"] == 1
    assert set(evaluation["overall"]["table6"]) >= {"precision", "recall", "f1", "map"}
    assert (out / "eval" / "evaluation.md").exists()


def test_train_yolo_refuses_a_split_naming_unknown_images(tiny_coco, tmp_path):
    split = {"train": ["0.png", "9.png"], "val": ["1.png"]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    with pytest.raises(SystemExit, match=r"1 train images are not in --data, e.g. \['9.png'\]"):
        main(["train", "yolo", "--data", str(tiny_coco), "--out", str(tmp_path / "r"),
              "--split", str(tmp_path / "split.json")])  # fmt: skip


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
