"""Tile/letterbox geometry: positions, cores, masks, network inputs and the inverse box map."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calcsdk.tiling import (
    Tile,
    boxes_from_tile,
    boxes_to_tile,
    in_core,
    plan_tiles,
    tile_input,
    tile_positions,
)


@pytest.mark.parametrize(
    ("length", "size", "overlap", "expected"),
    [
        (1, 512, 128, [0]),
        (100, 512, 128, [0]),
        (512, 512, 0, [0]),
        (513, 512, 0, [0, 1]),
        (896, 512, 128, [0, 384]),
        (1024, 512, 128, [0, 384, 512]),
        (1280, 512, 128, [0, 384, 768]),
        (1000, 512, 0, [0, 488]),
    ],
)
def test_tile_positions(length, size, overlap, expected):
    assert tile_positions(length, size, overlap) == expected


@pytest.mark.parametrize("overlap", [-1, 512, 600])
def test_tile_positions_rejects_bad_overlap(overlap):
    with pytest.raises(ValueError, match="overlap"):
        tile_positions(1000, 512, overlap)


@pytest.mark.parametrize(
    ("shape", "size", "overlap", "count"),
    [
        ((64, 64), 64, 16, 1),
        ((100, 70), 64, 16, 4),
        ((1280, 1024), 512, 128, 9),
        ((30, 500), 64, 0, 8),
    ],
)
def test_cores_partition_the_image_and_sit_in_their_windows(shape, size, overlap, count):
    tiles = plan_tiles(shape, size, overlap=overlap)
    assert len(tiles) == count
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    owners = np.zeros(shape, np.int64)
    for tile in tiles:
        x1, y1, x2, y2 = tile.core
        owners += (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
        wx1, wy1, wx2, wy2 = tile.window
        assert wx1 <= x1 < x2 <= wx2 and wy1 <= y1 < y2 <= wy2
        assert wx2 <= shape[1] and wy2 <= shape[0]
        assert (tile.scale_x, tile.scale_y) == (1.0, 1.0)
    assert (owners == 1).all()


def test_box_up_to_overlap_wide_is_whole_in_the_tile_that_keeps_it():
    shape, size, overlap = (1280, 1024), 256, 64
    tiles = plan_tiles(shape, size, overlap=overlap)
    rng = np.random.default_rng(0)
    centres = rng.uniform([0, 0], [shape[1], shape[0]], size=(500, 2))
    half = rng.uniform(1, overlap / 2, size=(500, 2))
    boxes = np.clip(np.c_[centres - half, centres + half], 0, [shape[1], shape[0]] * 2)
    owners = np.stack([in_core(boxes, tile) for tile in tiles])
    assert (owners.sum(axis=0) == 1).all()
    for tile, owned in zip(tiles, owners):
        x1, y1, x2, y2 = tile.window
        inside = boxes[owned]
        assert (inside[:, 0] >= x1).all() and (inside[:, 2] <= x2).all()
        assert (inside[:, 1] >= y1).all() and (inside[:, 3] <= y2).all()


@pytest.mark.parametrize(
    ("shape", "size", "input_size"),
    [((2560, 2048), 512, (512, 410)), ((100, 300), 96, (32, 96)), ((40, 40), 64, (64, 64))],
)
def test_letterbox_is_one_scaled_window(shape, size, input_size):
    (tile,) = plan_tiles(shape, size, layout="letterbox", overlap=500)
    assert tile.window == (0, 0, shape[1], shape[0])
    assert tile.input_size == input_size
    assert tile.scale_y == pytest.approx(input_size[0] / shape[0])
    assert tile.scale_x == pytest.approx(input_size[1] / shape[1])


@pytest.mark.parametrize(
    "tile",
    [Tile(0, 0, 10, 10), Tile(384, 768, 512, 512), Tile(0, 0, 2048, 2560, 0.2, 0.2)],
)
@pytest.mark.parametrize("count", [0, 1, 5])
def test_box_maps_round_trip(tile, count):
    rng = np.random.default_rng(count)
    xy = rng.uniform(0, 500, size=(count, 2))
    boxes = np.c_[xy, xy + rng.uniform(1, 50, size=(count, 2))].astype(np.float32)
    there = boxes_to_tile(boxes, tile)
    assert there.shape == (count, 4) and there.dtype == np.float32
    np.testing.assert_allclose(boxes_from_tile(there, tile), boxes, rtol=1e-5, atol=1e-3)
    if count:
        assert there[0, 0] == pytest.approx((boxes[0, 0] - tile.x0) * tile.scale_x, rel=1e-5)


def test_tile_input_copies_window_and_pads():
    image = np.arange(100 * 80, dtype=np.float32).reshape(100, 80) / 8000
    tile = plan_tiles(image.shape, 64, overlap=16)[-1]  # bottom-right: window 64 x 64
    net = tile_input(image, tile, 64)
    x1, y1, x2, y2 = tile.window
    np.testing.assert_array_equal(net, image[y1:y2, x1:x2])
    small = Tile(0, 0, 30, 20)
    buffer = np.full((2, 32, 32), 7.0, np.float32)
    net = tile_input(image, small, 32, pad_value=0.25, out=buffer[1])
    assert net.base is buffer or net is buffer[1] or np.shares_memory(net, buffer)
    np.testing.assert_array_equal(buffer[1, :20, :30], image[:20, :30])
    assert (buffer[1, 20:] == 0.25).all() and (buffer[1, :, 30:] == 0.25).all()
    assert (buffer[0] == 7.0).all()


def test_letterbox_input_is_area_resized_top_left():
    rng = np.random.default_rng(3)
    image = rng.random((200, 120), dtype=np.float32)
    (tile,) = plan_tiles(image.shape, 64, layout="letterbox")
    net = tile_input(image, tile, 64)
    expected = cv2.resize(image, (38, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(net[:, :38], expected)
    assert (net[:, 38:] == 0).all()


def test_mask_skips_background_tiles():
    mask = np.zeros((1280, 1024), bool)
    mask[:300, :300] = True  # only the top-left corner has breast
    tiles = plan_tiles(mask.shape, 512, overlap=128, mask=mask)
    assert [t.window[:2] for t in tiles] == [(0, 0)]
    assert plan_tiles(mask.shape, 512, overlap=128, mask=np.zeros_like(mask)) == []
    sparse = plan_tiles(mask.shape, 512, overlap=128, mask=mask, min_mask_fraction=0.5)
    assert sparse == []
    (box,) = plan_tiles(mask.shape, 512, layout="letterbox", mask=mask)
    assert box.window == (0, 0, 1024, 1280)


def test_in_core_of_empty_boxes():
    assert in_core(np.zeros((0, 4)), Tile(0, 0, 8, 8)).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_shape": (100, 100), "network_size": 100}, "multiple of 32"),
        ({"image_shape": (100, 100), "network_size": 64, "layout": "resize"}, "layout"),
        ({"image_shape": (0, 100), "network_size": 64}, "image_shape"),
        (
            {"image_shape": (100, 100), "network_size": 64, "mask": np.ones((100, 99), bool)},
            "mask",
        ),
        ({"image_shape": (100, 100), "network_size": 64, "mask": np.ones((100, 100))}, "mask"),
        ({"image_shape": (100, 100), "network_size": 64, "min_mask_fraction": 1.0}, "fraction"),
    ],
)
def test_plan_tiles_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_tiles(**kwargs)


@pytest.mark.parametrize(
    ("tile", "size", "message"),
    [
        (Tile(0, 0, 50, 50), 32, "exceeds the network"),
        (Tile(90, 0, 20, 20), 32, "exceeds the image"),
    ],
)
def test_tile_input_rejects_bad_tiles(tile, size, message):
    with pytest.raises(ValueError, match=message):
        tile_input(np.zeros((100, 100), np.float32), tile, size)


@pytest.mark.parametrize("args", [(-1, 0, 5, 5), (0, 0, 0, 5), (0, 0, 5, 5, 0.0, 1.0)])
def test_tile_rejects_bad_geometry(args):
    with pytest.raises(ValueError):
        Tile(*args)
