"""The proposal-recall harness: recall of the best K proposals, read off one EdgeBoxes run."""

from __future__ import annotations

import numpy as np

from calcsdk.benchmarks.proposal_recall import VARIANTS, sweep
from calcsdk.image import read_mammogram
from calcsdk.prepare import prepare_mammogram
from calcsdk.proposals import ProposalConfig
from tests.conftest import draw_toy_mammogram


def _prepared():
    pixels, box = draw_toy_mammogram(0)
    working = prepare_mammogram(read_mammogram(pixels, spacing_mm=0.1), 0.1)
    return [(working, box[None].astype(np.float32))]


def test_recall_rises_with_the_number_of_proposals_kept():
    result = sweep(_prepared(), [1, 5, 10_000], ProposalConfig(max_proposals=None))
    rows = result["rows"]
    assert [r["max_proposals"] for r in rows] == [1, 5, 10_000]
    assert rows[0]["proposals_per_image"] == 1
    assert rows[-1]["proposals_per_image"] == result["all_proposals_per_image"] > 5
    for key in ("recall_iou_0.5", "recall_iou_0.3"):
        values = [r[key] for r in rows]
        assert values == sorted(values) and 0 <= values[0] and values[-1] <= 1
    assert rows[-1]["recall_iou_0.3"] == 1.0  # the toy cluster is found with every proposal
    assert result["seconds_per_image_p50"] > 0


def test_the_default_variant_is_the_sdk_default():
    assert next(iter(VARIANTS.values())) == ProposalConfig()
