"""Paired evaluation: variants of one bundle scored on the same images and proposals."""

from __future__ import annotations

import argparse
import json

import pytest

from calcsdk.benchmarks.paired_eval import main, parse_variant
from calcsdk.training.synth import command as synth


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth4")
    parser = argparse.ArgumentParser()
    synth.add_arguments(parser)
    args = ["--out", str(out), "--images", "4", "--seed", "3", "--spacing", "0.2"]
    args += ["--size", "80x100mm", "--no-dicom", "--rois", "8"]
    assert synth.run(parser.parse_args(args)) == 0
    return out


def test_parse_variant():
    v = parse_variant("int8 vote_iou=0.3 nms_containment=none max_detections=5")
    assert (v.name, v.precision) == (
        "int8 vote_iou=0.3 nms_containment=none max_detections=5",
        "int8",
    )
    assert v.overrides == {"vote_iou": 0.3, "nms_containment": None, "max_detections": 5}
    assert parse_variant("fp32").overrides == {}
    for bad in ("", "fp32 bogus=1", "fp32 vote_iou", "fp32 vote_iou=high"):
        with pytest.raises(ValueError):
            parse_variant(bad)


def test_variants_share_proposals_and_report_deltas(toy_bundle, tiny_synth, tmp_path, capsys):
    out = tmp_path / "paired.json"
    args = ["--model", str(toy_bundle), "--data", str(tiny_synth), "--json", str(out)]
    args += ["--variant", "fp32", "--variant", "fp32 vote_iou=0.3", "--variant", "fp32"]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert len(report["images"]) == 4 and report["n_truths"] >= 1
    rows = report["variants"]
    assert list(rows) == ["fp32", "fp32 vote_iou=0.3"]  # a repeated variant is one row
    assert rows["fp32"]["delta_vs_first"] == {k: 0.0 for k in rows["fp32"]["delta_vs_first"]}
    voted = rows["fp32 vote_iou=0.3"]
    assert voted["overrides"] == {"vote_iou": 0.3}
    for key in ("precision", "recall", "f1", "map"):
        assert voted["delta_vs_first"][key] == pytest.approx(
            voted["table6"][key] - rows["fp32"]["table6"][key]
        )
    assert set(voted["sensitivity_at_fp"]) >= {"0.5", "1.0", "2.0"}
    assert "| fp32 vote_iou=0.3 |" in out.with_suffix(".md").read_text()
    assert "| fp32 |" in capsys.readouterr().out


def test_a_precision_the_bundle_lacks_is_an_error(toy_bundle, tiny_synth):
    with pytest.raises(Exception, match="int8"):
        main(["--model", str(toy_bundle), "--data", str(tiny_synth), "--variant", "int8"])


def test_a_split_that_selects_no_image_is_an_error(toy_bundle, tiny_synth, tmp_path, capsys):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test": ["elsewhere/images/x.png"]}))
    args = ["--model", str(toy_bundle), "--data", str(tiny_synth), "--split", str(split)]
    with pytest.raises(SystemExit):
        main([*args, "--variant", "fp32"])
    assert "no images of" in capsys.readouterr().err
