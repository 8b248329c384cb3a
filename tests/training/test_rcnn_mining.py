"""Hard-negative mining over every proposal of training images (training/rcnn/mining.py)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from calcsdk.proposals import ProposalConfig
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.models.alexnet import AlexNet, AlexNetConfig
from calcsdk.training.rcnn import command
from calcsdk.training.rcnn import mining as mining_module
from calcsdk.training.rcnn.head import LinearSvmHead
from calcsdk.training.rcnn.labels import label_proposals
from calcsdk.training.rcnn.mining import MiningConfig, mine_background
from calcsdk.training.rcnn.samples import BACKGROUND, SampleConfig, image_proposals
from calcsdk.training.rcnn.train import RcnnTrainConfig, fit_rcnn

SAMPLES = SampleConfig(working_spacing_mm=0.1, proposals=ProposalConfig(max_boxes=60))


@pytest.fixture(scope="module")
def setting(tiny_detection_data):
    torch.manual_seed(0)
    alexnet = AlexNet(AlexNetConfig(width=1 / 16)).eval()
    rng = np.random.default_rng(0)
    d = alexnet.fc7_dim
    head = LinearSvmHead(
        mean=np.zeros(d), scale=np.ones(d), weight=rng.normal(size=(2, d)), bias=np.zeros(2),
        platt_a=np.ones(2), platt_b=np.zeros(2),
    )  # fmt: skip
    records = load_coco(tiny_detection_data / "annotations.json")[:2]
    return alexnet, head, records


def _background_count(record) -> int:
    _, proposals, gt, gt_labels = image_proposals(record, SAMPLES)
    labels, _ = label_proposals(proposals, gt, gt_labels, background_label=BACKGROUND)
    return int((labels == BACKGROUND).sum())


def test_keeps_the_highest_margin_background_of_each_image(setting):
    alexnet, head, records = setting
    everything = mine_background(alexnet, head, records[:1], SAMPLES, MiningConfig(per_image=10**6))
    # every background proposal (IoU < 0.3 with every cluster), and nothing else
    assert everything.shape == (_background_count(records[0]), alexnet.fc7_dim)
    assert everything.dtype == np.float32
    hardest = mine_background(alexnet, head, records[:1], SAMPLES, MiningConfig(per_image=7))
    assert hardest.shape == (7, alexnet.fc7_dim)
    margins = head.decision(everything).max(axis=1)
    top = np.sort(np.argsort(-margins, kind="stable")[:7])
    np.testing.assert_allclose(hardest, everything[top], rtol=1e-5, atol=1e-6)


def test_mines_only_the_first_images_and_caches(setting, tmp_path, monkeypatch):
    alexnet, head, records = setting
    config = MiningConfig(images=1, per_image=5)
    cache = tmp_path / "mined.npz"
    first = mine_background(alexnet, head, records, SAMPLES, config, cache=cache)
    assert len(first) == 5 and cache.exists()  # 2 records given, 1 mined

    def fail(*_args, **_kwargs):
        raise AssertionError("mined again although the cache exists")

    monkeypatch.setattr(mining_module, "_hardest_of_image", fail)
    np.testing.assert_array_equal(
        mine_background(alexnet, head, records, SAMPLES, config, cache=cache), first
    )


@pytest.mark.parametrize("field", ["images", "per_image", "chunk_size"])
def test_config_refuses_non_positive_counts(field):
    with pytest.raises(ValueError, match=f"MiningConfig.{field} should be >= 1"):
        MiningConfig(**{field: 0})


def test_fit_refuses_mining_without_images(tmp_path):
    config = RcnnTrainConfig(mining=MiningConfig())
    with pytest.raises(ValueError, match="no mining_records"):
        fit_rcnn([], [], config, tmp_path, classifier_weights=None, model_config=AlexNetConfig())


def test_cli_refuses_a_non_positive_svm_c(tmp_path):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--data", str(tmp_path), "--out", str(tmp_path), "--svm-c", "0"])
    with pytest.raises(SystemExit, match="--svm-c should be > 0"):
        command.run(args)


@pytest.mark.slow
def test_cli_run_refits_the_svms_with_mined_negatives(tiny_detection_data, tmp_path):
    from calcsdk import Detector

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    run = tmp_path / "run"
    args = ["--data", str(tiny_detection_data), "--out", str(run), "--width", "0.0625",
            "--epochs", "1", "--batch-size", "32", "--max-boxes", "60", "--negatives-per-image",
            "8", "--mine-images", "2", "--mine-per-image", "20", "--svm-c", "1e-4",
            "--svm-rounds", "2", "--svm-negatives-per-round", "300", "--no-eval"]  # fmt: skip
    assert command.run(parser.parse_args(args)) == 0
    trained = json.loads((run / "rcnn_train.json").read_text())
    assert trained["mined_negatives"] == 40  # 2 images x 20 (each has more background)
    assert trained["config"]["mining"] == {"images": 2, "per_image": 20, "chunk_size": 256}
    head = trained["config"]["head"]
    assert (head["svm_c"], head["hard_negative_rounds"], head["negatives_per_round"]) == (
        1e-4,
        2,
        300,
    )
    assert "mining" in trained["seconds"]
    with np.load(run / "mined_background.npz") as mined:
        assert mined["fc7"].shape[0] == 40
    Detector(run / "bundle")
