"""Box regression: training pairs from labelled samples, ridge fit folded onto raw features, and
its ONNX export."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from calcsdk.boxes import apply_box_deltas
from calcsdk.export.onnx_head import export_box_regressor
from calcsdk.model_io import BOX_INPUT, BOX_OUTPUT
from calcsdk.training.rcnn.box_regression import (
    BoxRegressionConfig,
    BoxRegressor,
    fit_box_regressor,
    regression_pairs,
)
from calcsdk.training.rcnn.samples import ImageSamples


def samples(boxes, labels, is_gt) -> ImageSamples:
    n = len(labels)
    return ImageSamples(
        0,
        np.array(boxes, np.float32),
        np.array(labels, np.int64),
        np.array(is_gt, bool),
        np.zeros((n, 1, 2, 2), np.float16),
    )


def test_pairs_are_positive_proposals_close_to_a_cluster_of_their_image():
    first = samples(
        [[0, 0, 100, 100], [2, 2, 102, 98], [40, 40, 140, 140], [0, 0, 100, 100], [300, 300, 320, 320]],
        [0, 0, 0, 2, 1],
        [True, False, False, False, False],
    )  # fmt: skip
    second = samples([[10, 10, 50, 50], [12, 10, 52, 50]], [1, 1], [True, False])
    rows, deltas = regression_pairs([first, second], positive_labels=(0, 1), min_iou=0.6)
    # row 1: positive at IoU ~0.92; row 2: IoU 0.22 (too far); row 3: background; row 4: no
    # cluster near; the GT rows themselves are left out; second image starts at row 5
    assert rows.tolist() == [1, 6]
    np.testing.assert_allclose(
        apply_box_deltas(first.boxes[[1]], deltas[:1]), [[0, 0, 100, 100]], atol=1e-4
    )
    np.testing.assert_allclose(apply_box_deltas(second.boxes[[1]], deltas[1:]), [[10, 10, 50, 50]], atol=1e-4)  # fmt: skip


def test_no_pairs():
    rows, deltas = regression_pairs([samples([[0, 0, 9, 9]], [2], [False])], (0, 1), 0.6)
    assert rows.shape == (0,) and deltas.shape == (0, 4)


def test_fit_recovers_a_linear_map_on_raw_features():
    rng = np.random.default_rng(0)
    features = rng.normal(3.0, [0.5, 2.0, 1.0, 4.0, 0.1], (400, 5)).astype(np.float32)
    true_w = rng.normal(0, 0.3, (4, 5))
    deltas = features @ true_w.T + [0.1, -0.2, 0.05, 0.0]
    regressor = fit_box_regressor(features, deltas, BoxRegressionConfig(alpha=1e-6))
    np.testing.assert_allclose(regressor.deltas(features), deltas, atol=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        fit_box_regressor(features[:1], deltas[:1])


def test_save_load_and_onnx_export_agree(tmp_path):
    rng = np.random.default_rng(1)
    regressor = BoxRegressor(rng.normal(size=(4, 16)), rng.normal(size=4))
    regressor.save(tmp_path / "r.npz")
    loaded = BoxRegressor.load(tmp_path / "r.npz")
    path = export_box_regressor(loaded.weight, loaded.bias, tmp_path / "r.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    features = rng.normal(size=(7, 16)).astype(np.float32)
    (out,) = session.run([BOX_OUTPUT], {BOX_INPUT: features})
    np.testing.assert_allclose(out, regressor.deltas(features), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="4 outputs"):
        export_box_regressor(np.zeros((3, 16)), np.zeros(3), tmp_path / "bad.onnx")
