"""The YOLOv4 data-path benchmark times prepare and sampling, with and without mosaic."""

from __future__ import annotations

import json

import numpy as np

from calcsdk.benchmarks import yolo_data_throughput
from calcsdk.image import write_png


def _coco(folder) -> str:
    """Two 12-bit 320x256 PNGs at 0.1 mm, a bright half-ellipse 'breast' with one bright box."""
    yy, xx = np.mgrid[0:320, 0:256]
    images, annotations = [], []
    for i in (1, 2):
        pixels = np.full((320, 256), 200, np.uint16)
        pixels[(xx / 205) ** 2 + ((yy - 160) / 144) ** 2 <= 1] = 1800
        pixels[100 + 20 * i : 130 + 20 * i, 40:70] = 3500
        write_png(folder / f"{i}.png", pixels, spacing_mm=0.1, bits_stored=12)
        images.append({"id": i, "file_name": f"{i}.png", "width": 256, "height": 320,
                       "spacing_mm": 0.1})  # fmt: skip
        annotations.append({"id": i, "image_id": i, "category_id": i, "bbox": [40, 100 + 20 * i, 30, 30]})  # fmt: skip
    categories = [{"id": 1, "name": "malignant"}, {"id": 2, "name": "benign"}]
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))  # fmt: skip
    return str(path)


def test_both_passes_are_timed_and_written(tmp_path):
    out = tmp_path / "r.json"
    argv = ["--coco", _coco(tmp_path), "--images", "2", "--samples", "5",
            "--network-size", "64", "--tile-overlap", "16", "--json", str(out)]  # fmt: skip
    assert yolo_data_throughput.main(argv) == 0
    result = json.loads(out.read_text())
    assert [run["mosaic"] for run in result["runs"]] == [False, True]
    for run in result["runs"]:
        assert run["images"] == 2 and run["network_size"] == 64
        assert run["tiles"] >= 2 and run["samples"] == min(5, run["tiles"])
        assert run["tiles_per_second"] > 0 and run["prepare_images_per_second"] > 0
        assert run["sample_p90_ms"] >= run["sample_median_ms"] > 0
    assert result["environment"]["cpu"]["usable_cores"] >= 1
    assert result["command"].endswith("--json " + str(out))
