"""YOLOv4 training data: prepared working images, tiles as in the SDK, seeded samples, collate,
and the measured reason for tiling at 0.2 mm."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from calcsdk.image import write_png
from calcsdk.preprocess import resample_to_spacing
from calcsdk.tiling import Tile, boxes_to_tile, plan_tiles, tile_input
from calcsdk.training.datasets import ImageRecord
from calcsdk.training.yolo.config import YoloTrainConfig
from calcsdk.training.yolo.data import YoloTileDataset, collate_samples, prepare_record

CONFIG = YoloTrainConfig(
    working_spacing_mm=0.2, network_size=64, tile_overlap=16, augment=True, mosaic=True
)


def _record(folder, name, boxes, labels, spacing=0.1, shape=(320, 256)) -> ImageRecord:
    """A bright half-ellipse 'breast' on a dark background with a bright dot per box."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.full(shape, 200, np.uint16)
    pixels[(xx / (0.8 * width)) ** 2 + ((yy - height / 2) / (0.45 * height)) ** 2 <= 1] = 1800
    for x1, y1, x2, y2 in boxes:
        pixels[int(y1) : int(y2), int(x1) : int(x2)] = 3500
    path = folder / f"{name}.png"
    write_png(path, pixels, spacing_mm=spacing, bits_stored=12)
    return ImageRecord(
        str(path), np.asarray(boxes, np.float32).reshape(-1, 4), labels, (spacing, spacing)
    )


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("yolo-data")
    return [
        _record(folder, "a", [[40, 100, 70, 130], [60, 200, 80, 230]], [0, 1]),
        _record(folder, "b", [], []),
        _record(folder, "c", [[20, 150, 44, 170]], [1], spacing=0.2, shape=(160, 128)),
    ]


def test_prepared_images_are_in_the_working_frame(records):
    image = prepare_record(records[0], CONFIG)
    assert image.shape == (160, 128)  # 0.1 mm -> 0.2 mm
    np.testing.assert_allclose(image.boxes, [[20, 50, 35, 65], [30, 100, 40, 115]])
    assert image.load().dtype == np.float32
    shape_tiles = plan_tiles(image.shape, 64, overlap=16)
    assert 0 < len(image.tiles) <= len(shape_tiles)
    assert all(t in shape_tiles for t in image.tiles)


def test_evaluation_samples_are_the_sdk_tiles(records):
    dataset = YoloTileDataset(records, CONFIG, train=False)
    assert len(dataset) == sum(len(im.tiles) for im in dataset.images)
    for index, (image_index, tile_index) in enumerate(dataset.items):
        prepared = dataset.images[image_index]
        tile = prepared.tiles[tile_index]
        pixels, boxes, labels = dataset.sample(index)
        np.testing.assert_array_equal(pixels, tile_input(prepared.load(), tile, 64))
        assert boxes.shape == (len(labels), 4)
        assert ((boxes >= 0) & (boxes <= 64)).all()
        visible = boxes_to_tile(prepared.boxes, tile)
        assert len(boxes) <= len(visible)
    assert dataset.positive.sum() >= 3  # each of the 3 boxes is whole in at least one tile


def test_training_samples_depend_only_on_seed_epoch_and_index(records):
    dataset = YoloTileDataset(records, CONFIG, train=True)
    again = YoloTileDataset(records, CONFIG, train=True, images=dataset.images)
    for index in range(len(dataset)):
        a, b = dataset.sample(index), again.sample(index)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    dataset.set_epoch(1)
    assert any(not np.array_equal(dataset.sample(i)[0], again.sample(i)[0]) for i in range(4))
    image, boxes, labels = dataset[0]
    assert image.shape == (1, 64, 64) and image.dtype == torch.float32
    assert boxes.dtype == torch.float32 and labels.dtype == torch.int64


def test_collate_rows_are_image_label_box(records):
    dataset = YoloTileDataset(records, CONFIG, train=False)
    positives = np.flatnonzero(dataset.positive)[:2].tolist()
    negatives = np.flatnonzero(~dataset.positive)[:1].tolist()
    batch = [dataset[i] for i in (*negatives, *positives)]
    images, targets = collate_samples(batch)
    assert images.shape == (3, 1, 64, 64)
    assert targets.shape[1] == 6 and set(targets[:, 0].tolist()) == {1.0, 2.0}
    first = batch[1]
    torch.testing.assert_close(targets[targets[:, 0] == 1, 2:], first[1])
    assert collate_samples([batch[0]])[1].shape == (0, 6)


@pytest.mark.parametrize("ratio", [0.0, 1.0, None])
def test_negative_tile_ratio(records, ratio):
    dataset = YoloTileDataset(
        records, dataclasses.replace(CONFIG, negative_tile_ratio=ratio), train=True
    )
    order = dataset.epoch_indices(0)
    positives = int(dataset.positive.sum())
    expected = (
        len(dataset)
        if ratio is None
        else positives + min(round(ratio * positives), len(dataset) - positives)
    )
    assert len(order) == expected == len(set(order.tolist()))
    assert dataset.positive[order].sum() == positives
    if ratio is None:  # a fresh permutation each epoch
        assert not np.array_equal(order, dataset.epoch_indices(1))


def test_disk_cache_matches_memory(records, tmp_path):
    cached = YoloTileDataset(records[:1], CONFIG, train=False, cache_dir=tmp_path)
    memory = YoloTileDataset(records[:1], CONFIG, train=False)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert cached.images[0].image01 is None and cached.images[0].load().dtype == np.float16
    for index in range(len(cached)):
        np.testing.assert_allclose(cached.sample(index)[0], memory.sample(index)[0], atol=1e-3)


def test_letterbox_layout_is_one_scaled_tile(records):
    config = dataclasses.replace(CONFIG, layout="letterbox", mosaic=False)
    dataset = YoloTileDataset(records, config, train=False)
    assert len(dataset) == len(records)
    _, boxes, _ = dataset.sample(0)
    expected = np.array([[20, 50, 35, 65], [30, 100, 40, 115]]) * 0.4  # 160 x 128 into 64
    np.testing.assert_allclose(boxes, expected, rtol=0.01)
    assert dataset.network_scale() == pytest.approx(51 / 128)  # 51.2 rounds to 51 columns
    np.testing.assert_allclose(dataset.box_sizes_network()[0], [6.0, 6.0], rtol=0.01)


@pytest.mark.parametrize(
    ("working_mm", "network_scale", "low", "high"),
    [(0.2, 1.0, 0.6, 0.9), (0.1, 608 / 2560, 0.1, 0.35)],  # tile 512 @ 0.2 mm vs letterbox 608
)
def test_measured_calcification_contrast_of_the_layouts(working_mm, network_scale, low, high):
    """The data.py table: a 0.3 mm calcification keeps ~80 % of its peak contrast in 0.2 mm
    tiles and ~27 % when a 256 mm tall mammogram is letterboxed into 608 pixels."""
    rng = np.random.default_rng(0)
    peaks = []
    for _ in range(6):
        sub = 8  # area coverage at 0.1 mm / 8
        cx, cy = rng.uniform(3.0, 4.0, size=2)
        ys, xs = (np.mgrid[0 : 64 * sub, 0 : 64 * sub] + 0.5) * 0.1 / sub
        disc = ((xs - cx) ** 2 + (ys - cy) ** 2 <= 0.15**2).reshape(64, sub, 64, sub).mean((1, 3))
        working, _ = resample_to_spacing(disc.astype(np.float32), 0.1, working_mm)
        h, w = working.shape
        tile = Tile(0, 0, w, h, round(w * network_scale) / w, round(h * network_scale) / h)
        peaks.append(
            tile_input(working, tile, 64)[: tile.input_size[0], : tile.input_size[1]].max()
        )
    assert low < np.mean(peaks) < high
