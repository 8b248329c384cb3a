"""The bundles shipped inside the package load, verify and detect on a shipped sample.

One real ``detect`` per bundle (a few seconds on 2 CPU cores), shared by the checks through a
module-scoped fixture; plus a blank image, which must give empty detections, not an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calcsdk
from calcsdk.detections import Detections
from calcsdk.image import read_mammogram
from calcsdk.samples import sample_paths

MODELS_DIR = Path(calcsdk.__file__).resolve().parent / "data" / "models"
MAX_BUNDLE_BYTES = 6 * 1024 * 1024
# (bundle directory, manifest name, pipeline)
SHIPPED = [
    ("default", "calcsdk-default-rcnn-tiny", "rcnn"),
    ("yolov4-tiny", "calcsdk-default-yolov4-tiny", "yolov4"),
]
BUNDLE_IDS = [row[0] for row in SHIPPED]


def _sample_png() -> Path:
    pngs = [p for p in sample_paths() if p.suffix == ".png"]
    if not pngs:
        raise FileNotFoundError("no shipped PNG sample under calcsdk/data/samples")
    return pngs[0]


@pytest.fixture(scope="module", params=SHIPPED, ids=BUNDLE_IDS)
def shipped(request):
    """``(bundle dir, expected name, expected pipeline, Detector, sample Mammogram,
    detections at conf 0)``: every scored detection, so the box checks see as many as exist."""
    directory, name, pipeline = request.param
    root = MODELS_DIR / directory
    detector = calcsdk.Detector(root)
    sample = _sample_png()
    mammogram = read_mammogram(sample)
    return root, name, pipeline, detector, mammogram, detector.detect(sample, conf=0)


def test_bundle_directory_is_under_6_mb(shipped):
    root = shipped[0]
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert 0 < size < MAX_BUNDLE_BYTES, f"{root}: {size} bytes"


def test_manifest_names_pipeline_and_held_out_metrics(shipped):
    _, name, pipeline, detector, _, _ = shipped
    manifest = detector.bundle.manifest
    assert (manifest["name"], detector.bundle.pipeline) == (name, pipeline)
    assert set(detector.class_names) == {"malignant", "benign"}
    table6 = manifest["metrics"]["table6_cf_0.5"]
    for key in ("precision", "recall", "f1", "map"):
        assert 0.0 <= table6[key] <= 1.0, key
    for key in ("reduced", "commands", "data", "date"):
        assert manifest["provenance"][key], key


def test_detect_on_a_shipped_sample_gives_boxes_inside_the_image(shipped):
    _, _, _, detector, mammogram, detections = shipped
    height, width = mammogram.pixels.shape
    assert isinstance(detections, Detections)
    assert detections.class_names == detector.class_names
    boxes = detections.boxes
    assert boxes.dtype == np.float32 and boxes.shape == (len(detections), 4)
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0)
    assert np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height)
    assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
    assert np.all((detections.scores >= 0) & (detections.scores <= 1))
    assert np.all((detections.labels >= 0) & (detections.labels < len(detector.class_names)))


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((300, 240), np.uint16), np.full((300, 240), 1000, np.uint16)],
    ids=["black", "flat"],
)
def test_blank_image_gives_empty_detections(shipped, pixels):
    detector = shipped[3]
    detections = detector.detect(pixels, conf=0, spacing_mm=0.1)
    assert isinstance(detections, Detections)
    assert len(detections) == 0 and detections.boxes.shape == (0, 4)
