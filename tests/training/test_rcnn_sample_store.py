"""The R-CNN's disk cache of training samples: same samples as computing them, resume without
recomputing, crops memory-mapped, and clear errors for a cache of another config, other images
or a damaged file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calcsdk.proposals import ProposalConfig
from calcsdk.training.datasets.coco import load_coco
from calcsdk.training.rcnn import sample_store
from calcsdk.training.rcnn.samples import SampleConfig
from calcsdk.training.rcnn.train import collect_samples

CONFIG = SampleConfig(proposals=ProposalConfig(max_boxes=100), negatives_per_image=8)


@pytest.fixture(scope="module")
def records(tiny_detection_data):
    return load_coco(tiny_detection_data / "annotations.json")[:3]


@pytest.fixture(scope="module")
def computed(records):
    return collect_samples(records, CONFIG, offset=5)


def _same(a, b) -> None:
    assert a.image_index == b.image_index
    for name in ("boxes", "labels", "is_gt", "weights", "crops"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_cached_samples_equal_computed_ones_and_are_memory_mapped(records, computed, tmp_path):
    cached = collect_samples(records, CONFIG, offset=5, cache_dir=tmp_path)
    for a, b in zip(cached, computed, strict=True):
        _same(a, b)
        assert isinstance(a.crops, np.memmap) and a.crops.dtype == np.float16
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["00005.npz", "00006.npz", "00007.npz"]


def test_processes_make_the_same_samples(records, computed, tmp_path):
    (tmp_path / "cache").mkdir()
    collect_samples(records[:1], CONFIG, offset=5, cache_dir=tmp_path / "cache")  # one is there
    cached = collect_samples(records, CONFIG, offset=5, cache_dir=tmp_path / "cache", workers=2)
    in_memory = collect_samples(records, CONFIG, offset=5, workers=2)
    for a, b, c in zip(cached, in_memory, computed, strict=True):
        _same(a, c)
        _same(b, c)


def test_resume_computes_only_the_missing_images(records, computed, tmp_path, monkeypatch):
    collect_samples(records, CONFIG, offset=5, cache_dir=tmp_path)
    (tmp_path / "00006.npz").unlink()  # as if interrupted before image 6 was complete
    made = []
    real = sample_store.image_samples

    def counting(index, record, config):
        made.append(index)
        return real(index, record, config)

    monkeypatch.setattr(sample_store, "image_samples", counting)
    again = collect_samples(records, CONFIG, offset=5, cache_dir=tmp_path)
    assert made == [6]
    for a, b in zip(again, computed, strict=True):
        _same(a, b)


def test_a_cache_of_another_config_is_refused(records, tmp_path):
    collect_samples(records[:1], CONFIG, cache_dir=tmp_path)
    other = SampleConfig(proposals=ProposalConfig(max_boxes=100), negatives_per_image=9)
    with pytest.raises(ValueError, match=r"config\.json.*negatives_per_image"):
        collect_samples(records[:1], other, cache_dir=tmp_path)


def test_a_cache_of_other_images_is_refused(records, tmp_path):
    collect_samples(records[:1], CONFIG, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"00000\.npz: made from .*other data or another split"):
        collect_samples(records[1:2], CONFIG, cache_dir=tmp_path)


@pytest.mark.parametrize("damage", ["truncated metadata", "crops of another length"])
def test_a_damaged_entry_names_its_file(records, tmp_path, damage):
    collect_samples(records[:1], CONFIG, cache_dir=tmp_path)
    if damage == "truncated metadata":
        meta = tmp_path / "00000.npz"
        meta.write_bytes(meta.read_bytes()[:50])
        expected = r"00000\.npz: unreadable sample-cache entry"
    else:
        crops = np.load(tmp_path / "00000.crops.npy")
        np.save(tmp_path / "00000.crops.npy", crops[:-1])
        expected = r"00000\.npz: inconsistent sample-cache entry"
    with pytest.raises(ValueError, match=expected):
        collect_samples(records[:1], CONFIG, cache_dir=tmp_path)


def test_sample_collection_benchmark_times_each_worker_count(tiny_detection_data, tmp_path):
    from calcsdk.benchmarks import sample_collection

    out = tmp_path / "r.json"
    argv = ["--data", str(tiny_detection_data), "--images", "2", "--workers", "1",
            "--repeat", "2", "--json", str(out)]  # fmt: skip
    assert sample_collection.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 2 and len(result["seconds"]["1"]) == 2
    assert result["speedup_vs_first"] == {"1": 1.0} and result["images_per_second"]["1"] > 0
