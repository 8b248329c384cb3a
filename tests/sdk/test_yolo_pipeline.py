"""The YOLOv4 pipeline with fake numpy sessions (no torch, no ONNX): tiling, core ownership,
decoding of raw heads, mapping back to original pixels, settings round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from calcsdk.errors import BundleError
from calcsdk.image import read_mammogram
from calcsdk.pipelines.yolo import YoloPipeline, YoloSettings
from calcsdk.postprocess import PostprocessConfig
from calcsdk.yolo_decode import RAW_OUTPUTS, num_predictions

ANCHORS = tuple((float(w), float(w)) for w in (4, 6, 8, 12, 16, 24, 32, 48, 64))
SETTINGS = YoloSettings(
    anchors=ANCHORS, working_spacing_mm=0.2, network_size=64, tile_overlap=16, batch_size=3
)
CLASSES = ("malignant", "benign")


class BrightSpotSession:
    """Decoded outputs: one box around the pixels > 0.5 of each input, class 0, score 0.9."""

    input_names = ("images",)
    output_names = ("boxes", "scores")

    def __init__(self):
        self.batches = []

    def run(self, feeds):
        images = feeds["images"]
        self.batches.append(images.shape)
        n, _, height, width = images.shape
        boxes = np.tile(np.float32([0, 0, 1, 1]), (n, num_predictions(height, width), 1))
        scores = np.zeros((n, boxes.shape[1], 2), np.float32)
        for i in range(n):
            ys, xs = np.nonzero(images[i, 0] > 0.5)
            if len(xs):
                boxes[i, 5] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                scores[i, 5] = [0.9, 0.05]
        return {"boxes": boxes, "scores": scores}


class RawSession:
    """Raw heads: background everywhere but one cell of the stride-8 head, anchor 0."""

    input_names = ("images",)
    output_names = RAW_OUTPUTS

    def run(self, feeds):
        n, _, height, width = feeds["images"].shape
        raws = [np.full((n, 21, height // s, width // s), -10.0, np.float32) for s in (8, 16, 32)]
        raws[0][:, 0:4, 2, 3] = 0.0  # tx, ty, tw, th of anchor 0 at row 2, column 3
        raws[0][:, 4, 2, 3] = 10.0  # objectness
        raws[0][:, 6, 2, 3] = 10.0  # class 1 (benign)
        return dict(zip(RAW_OUTPUTS, raws))


def _mammogram(shape=(320, 256), spot=(60, 150), spacing=0.1):
    """A flat 'breast' with one 16x16 bright spot at (x, y) (over 0.5 % of the breast, so it,
    and only it, normalises to 1); 0.1 mm pixels by default."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.full(shape, 200, np.uint16)
    pixels[(xx / (0.8 * width)) ** 2 + ((yy - height / 2) / (0.45 * height)) ** 2 <= 1] = 1800
    if spot is not None:
        x, y = spot
        pixels[y : y + 16, x : x + 16] = 3500
    return read_mammogram(pixels, spacing_mm=spacing)


def test_overlapping_tiles_report_a_spot_once_in_original_pixels():
    session = BrightSpotSession()
    pipeline = YoloPipeline.from_session(session, SETTINGS, CLASSES)
    detections = pipeline(_mammogram(), confidence=0.5)
    assert len(detections) == 1
    np.testing.assert_allclose(detections.boxes, [[60, 150, 76, 166]], atol=1e-4)
    assert detections.labels.tolist() == [0] and detections.scores[0] == pytest.approx(0.9)
    assert all(shape[0] <= 3 and shape[1:] == (1, 64, 64) for shape in session.batches)
    assert sum(shape[0] for shape in session.batches) > 1  # the spot lies in several tiles


def test_confidence_above_every_score_keeps_nothing():
    pipeline = YoloPipeline.from_session(BrightSpotSession(), SETTINGS, CLASSES)
    assert len(pipeline(_mammogram(), confidence=0.95)) == 0


def test_letterbox_maps_back_approximately():
    settings = dataclasses.replace(SETTINGS, layout="letterbox")
    pipeline = YoloPipeline.from_session(BrightSpotSession(), settings, CLASSES)
    detections = pipeline(_mammogram(), confidence=0.5)
    assert len(detections) == 1
    centre = (detections.boxes[0, :2] + detections.boxes[0, 2:]) / 2
    np.testing.assert_allclose(centre, [68, 158], atol=4)  # 0.4x: a pixel is 5 original pixels


def test_raw_heads_are_decoded_in_numpy():
    pipeline = YoloPipeline.from_session(RawSession(), SETTINGS, CLASSES)
    assert not pipeline.decoded_in_graph
    detections = pipeline(_mammogram(shape=(128, 128), spot=None), confidence=0.5)
    assert len(detections) == 1 and detections.labels.tolist() == [1]
    # cell (row 2, col 3) of stride 8, 4x4 anchor: centre (28, 20) working = (56, 40) original
    np.testing.assert_allclose(detections.boxes, [[52, 36, 60, 44]], atol=1e-3)


def test_image_without_breast_gives_no_detections():
    blank = read_mammogram(np.zeros((128, 128), np.uint16), spacing_mm=0.1)
    pipeline = YoloPipeline.from_session(BrightSpotSession(), SETTINGS, CLASSES)
    detections = pipeline(blank, confidence=0.0)
    assert len(detections) == 0 and detections.class_names == CLASSES


def test_unknown_outputs_are_refused():
    class Other:
        input_names, output_names = ("images",), ("logits",)

    with pytest.raises(BundleError, match="raw_stride8"):
        YoloPipeline.from_session(Other(), SETTINGS, CLASSES, PostprocessConfig())


def test_settings_round_trip_through_manifest_sections():
    sections = SETTINGS.to_manifest()
    assert set(sections) == {"preprocess", "yolo"}
    assert sections["yolo"]["anchors"][0] == [4.0, 4.0]
    again = YoloSettings.from_sections(sections["preprocess"], {**sections["yolo"], "note": 1})
    assert again == SETTINGS and again.extra == {"note": 1}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"anchors": ANCHORS[:6]}, "anchors"),
        ({"layout": "crop"}, "layout"),
        ({"network_size": 100}, "network_size"),
        ({"tile_overlap": 64}, "tile_overlap"),
        ({"working_spacing_mm": 0.0}, "working_spacing_mm"),
        ({"batch_size": 0}, "batch_size"),
        ({"scale_x_y": (1.2, 1.1)}, "scale_x_y"),
    ],
)
def test_bad_settings_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SETTINGS, **changes)


def test_settings_need_anchors():
    with pytest.raises(ValueError, match="anchors"):
        YoloSettings.from_sections({"network_size": 64})
