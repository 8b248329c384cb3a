"""Cache, per held-out image, the bundle's proposals (working frame) and their fc7 features, so
heads and postprocess settings can be compared without re-running EdgeBoxes and AlexNet.
usage: fc7_cache.py BUNDLE DATA SPLIT_JSON KEY OUT_DIR   (KEY: val or test)"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from calcsdk import Detector
from calcsdk.image import read_mammogram
from calcsdk.model_io import FC7_INPUT, FC7_OUTPUT
from calcsdk.prepare import roi_crops
from calcsdk.training.datasets.coco import load_coco

bundle, data, split, key, out = (
    sys.argv[1],
    Path(sys.argv[2]),
    Path(sys.argv[3]),
    sys.argv[4],
    Path(sys.argv[5]),
)
out.mkdir(parents=True, exist_ok=True)
wanted = {str(Path(p).resolve()) for p in json.loads(split.read_text())[key]}
records = [
    r for r in load_coco(data / "annotations.json") if str(Path(r.image_path).resolve()) in wanted
]
pipe = Detector(bundle)._pipeline
s = pipe.settings
t0 = time.time()
for i, r in enumerate(records):
    dst = out / f"{i:05d}.npz"
    if dst.exists():
        continue
    working, boxes = pipe.front(read_mammogram(r.image_path, spacing_mm=r.spacing_mm))
    feats = []
    for start in range(0, len(boxes), s.chunk_size):
        crops = roi_crops(
            working.image01,
            boxes[start : start + s.chunk_size],
            representation=s.representation,
            size=s.crop_size,
            context_pad=s.context_pad,
        )
        feats.append(pipe.fc7.run({FC7_INPUT: crops})[FC7_OUTPUT].astype(np.float16))
    fc7 = np.concatenate(feats) if feats else np.zeros((0, 1), np.float16)
    tmp = out / f"{i:05d}.tmp.npz"
    np.savez(
        tmp,
        boxes=boxes,
        fc7=fc7,
        scale=np.array(working.scale),
        original_shape=np.array(working.original_shape),
        image_path=r.image_path,
        gt_boxes=np.asarray(r.boxes, np.float32).reshape(-1, 4),
        gt_labels=np.asarray(r.labels),
    )
    tmp.rename(dst)
    if i % 25 == 0:
        print(f"{key} {i + 1}/{len(records)} {time.time() - t0:.0f}s", flush=True)
print("done", key, len(records), f"{time.time() - t0:.0f}s", flush=True)
