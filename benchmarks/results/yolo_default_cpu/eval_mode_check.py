"""BatchNorm check of a YOLOv4 run's ``last.pt``: eval mode vs train mode vs re-estimated.

    python eval_mode_check.py RUN [augment]      # in /work/runs/s13, beside yolo_cache/

Scores 16 cluster tiles and 16 background tiles of the first 60 validation images (the training
loss, :func:`build_criterion`) with BatchNorm in eval mode (running statistics), in train mode
(batch statistics), and in eval mode after re-estimating the statistics with the trainer's
precise BN (:func:`recalibrate_batchnorm`) over 6 micro-batches of 8 training tiles (cluster
and background mixed as in training; augmented with ``augment``); for the trained weights and
for their EMA. A large gap between the first and the others means the running statistics do
not match the weights.
"""

import json
import sys

import numpy as np
import torch

from calcsdk.training.datasets import load_coco
from calcsdk.training.yolo.command import split_records
from calcsdk.training.yolo.config import YoloTrainConfig
from calcsdk.training.yolo.data import YoloTileDataset, collate_samples
from calcsdk.training.yolo.precise_bn import recalibrate_batchnorm
from calcsdk.training.yolo.train import build_criterion, build_model

DATA = "/work/runs/synth_default/annotations.json"
CACHE = "yolo_cache"


def main() -> None:
    torch.set_num_threads(1)
    run = sys.argv[1] if len(sys.argv) > 1 else "run-yolov4-1"
    augment = len(sys.argv) > 2 and sys.argv[2] == "augment"
    saved = torch.load(f"{run}/last.pt", mmap=True, weights_only=True, map_location="cpu")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()}
    config = YoloTrainConfig(**fields)
    split = json.loads(open(f"{run}/split.json").read())
    parts = split_records(load_coco(DATA), split)
    val = YoloTileDataset(parts["val"][:60], config, train=False, cache_dir=CACHE)
    clusters = np.flatnonzero(val.positive)[:16]
    background = np.flatnonzero(~val.positive)[:16]
    criterion = build_criterion(config, np.asarray(saved["anchors"], np.float32))

    def losses(model: torch.nn.Module) -> str:
        out = []
        for name, indices in (("cluster tiles", clusters), ("background", background)):
            images, targets = collate_samples([val[i] for i in indices])
            with torch.no_grad():
                outputs = [o.float() for o in model(images)]
                loss, terms = criterion(outputs, targets, normalizer=len(indices))
            out.append(
                f"{name} {float(loss):.2f} { ({k: round(float(v), 2) for k, v in terms.items()}) }"
            )
        return "; ".join(out)

    train = YoloTileDataset(parts["train"][:60], config, train=augment, cache_dir=CACHE)
    rng = np.random.default_rng(0)
    mix = rng.permutation(
        np.concatenate([np.flatnonzero(train.positive)[:24], np.flatnonzero(~train.positive)[:24]])
    )
    batches = [collate_samples([train[i] for i in mix[s : s + 8]])[0] for s in range(0, 48, 8)]
    print("step", saved["state"]["global_step"])
    for weights in ("model", "ema"):
        model = build_model(config)
        model.load_state_dict(saved[weights] if weights == "model" else saved[weights]["module"])
        model.eval()
        print(f" {weights}, eval mode:", losses(model))
        model.train()
        print(f" {weights}, train mode:", losses(model))
        recalibrate_batchnorm(model, batches)  # the trainer's precise BN
        model.eval()
        print(f" {weights}, eval mode, statistics re-estimated (augment={augment}):", losses(model))


if __name__ == "__main__":
    main()
