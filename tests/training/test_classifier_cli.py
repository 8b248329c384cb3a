"""``calcsdk train classifier``: options, a small end-to-end run on an ROI folder, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from calcsdk.cli import build_parser, main
from calcsdk.training.classifier import cross_validation, load_classifier
from calcsdk.training.roi_dataset import write_roi_index, write_rois

TILE = 64  # pixels of one drawn ROI in the source mosaic (warped to 227 by write_rois)
PATIENTS = 20
ROIS_PER_PATIENT = 3
FAST = ["--width", "0.0625", "--epochs", "1", "--lr", "0.02", "--batch-size", "16", "--no-progress"]


def _draw_tile(label: str, rng: np.random.Generator) -> np.ndarray:
    """float (TILE, TILE): dots (malignant), a ring (benign) or background (normal)."""
    yy, xx = np.mgrid[0:TILE, 0:TILE]
    tile = 0.3 + 0.03 * rng.standard_normal((TILE, TILE))
    if label == "malignant":
        for px, py in rng.uniform(20, 44, (6, 2)):
            tile[(xx - px) ** 2 + (yy - py) ** 2 <= 2.0] = 0.9
    elif label == "benign":
        tile[np.abs(np.hypot(xx - 32, yy - 32) - 12) <= 1.0] = 0.8
    return tile


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    """A ``calcsdk synth``-like folder: ``<dir>/rois/`` written by the real ROI writer, one
    mosaic image per patient, labels 2:1:1 (malignant, benign, normal) as in the paper."""
    out = tmp_path_factory.mktemp("synth")
    rng = np.random.default_rng(0)
    cycle = ["malignant", "benign", "malignant", "normal"]
    records, n = [], 0
    for patient in range(PATIENTS):
        labels = [cycle[(n + i) % len(cycle)] for i in range(ROIS_PER_PATIENT)]
        mosaic = np.concatenate([_draw_tile(label, rng) for label in labels], axis=1)
        pixels = np.rint(np.clip(mosaic, 0, 1) * 4095).astype(np.uint16)
        boxes = [[i * TILE, 0, (i + 1) * TILE, TILE] for i in range(ROIS_PER_PATIENT)]
        ids = [f"roi{n + i:03d}" for i in range(ROIS_PER_PATIENT)]
        records += write_rois(
            out / "rois", pixels, 4095, np.array(boxes, np.float32), labels, ids,
            image_id=patient, patient_id=f"p{patient}",
        )  # fmt: skip
        n += ROIS_PER_PATIENT
    write_roi_index(out / "rois", records)
    return out


def _parse(argv: list[str]):
    return build_parser(argv).parse_args(argv)


def test_defaults_follow_the_paper():
    args = _parse(["train", "classifier", "--rois", "r", "--out", "o"])
    assert (args.folds, args.representation, args.config, args.width) == (5, "all", "rcnn-2", 1.0)
    assert (args.test_rois, args.val_fraction, args.seed) == (1000, 0.2, 0)
    assert (args.epochs, args.patience, args.max_rois, args.device) == (None, None, None, None)
    assert args.lr is None  # the config's (the paper's) learning rate
    assert not args.resume


@pytest.mark.parametrize(
    "extra",
    [
        ["--representation", "rgb"],
        ["--config", "rcnn-3"],
        ["--folds", "five"],
        ["--width"],
    ],
)
def test_bad_options_exit(extra):
    with pytest.raises(SystemExit) as exit_info:
        _parse(["train", "classifier", "--rois", "r", "--out", "o", *extra])
    assert exit_info.value.code == 2


def test_rois_and_out_are_required():
    with pytest.raises(SystemExit):
        _parse(["train", "classifier", "--out", "o"])


def test_run_then_resume_with_more_representations(synth_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "cls"
    argv = ["train", "classifier", "--rois", str(synth_dir), "--out", str(out), "--folds", "2"]
    argv += [*FAST, "--max-rois", "40"]
    assert main([*argv, "--representation", "grayscale"]) == 0
    printed = capsys.readouterr().out
    assert "grayscale: AlexNet" in printed and f"report: {out / 'report.md'}" in printed
    model = load_classifier(out / "grayscale" / "best.pt")
    assert model.config.width == 0.0625
    with np.load(out / "split.npz") as split:
        rows = split["source_rows"]  # rows of index.csv: a patient-level subset of ~40
        assert abs(len(rows) - 40) <= ROIS_PER_PATIENT
        assert len(np.unique(rows)) == len(rows) and rows.max() < PATIENTS * ROIS_PER_PATIENT
    report = json.loads((out / "report.json").read_text())
    assert list(report["representations"]) == ["grayscale"]
    assert report["settings"]["train_config"]["epochs"] == 1
    assert report["settings"]["train_config"]["learning_rate"] == 0.02
    assert report["settings"]["dataset"]["rois"] == len(rows)

    calls = []
    real = cross_validation.train_classifier

    def recording(x_train, y_train, x_val, y_val, config, out_dir, **kwargs):
        calls.append(out_dir)
        return real(x_train, y_train, x_val, y_val, config, out_dir, **kwargs)

    monkeypatch.setattr(cross_validation, "train_classifier", recording)
    assert main([*argv, "--representation", "all", "--resume"]) == 0
    trained = sorted(str(path.relative_to(out)) for path in calls)
    assert trained == ["binary/fold1", "binary/fold2", "filtered/fold1", "filtered/fold2"]
    report = json.loads((out / "report.json").read_text())
    assert list(report["representations"]) == ["grayscale", "binary", "filtered"]
    assert all((out / f"confusion_{name}.png").is_file() for name in report["representations"])


def test_existing_run_needs_resume(synth_dir, tmp_path):
    out = tmp_path / "cls"
    argv = ["train", "classifier", "--rois", str(synth_dir / "rois"), "--out", str(out)]
    argv += [*FAST, "--folds", "2", "--representation", "binary", "--max-rois", "24"]
    assert main(argv) == 0
    with pytest.raises(FileExistsError, match="resume"):
        main(argv)


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        (["--max-rois", "0"], ValueError, "max-rois"),
        (["--folds", "1"], ValueError, "n_folds"),
        (["--val-fraction", "1.5"], ValueError, "val_fraction"),
    ],
)
def test_bad_values_raise(synth_dir, tmp_path, extra, error, message):
    argv = ["train", "classifier", "--rois", str(synth_dir), "--out", str(tmp_path / "cls")]
    with pytest.raises(error, match=message):
        main([*argv, *FAST, *extra])


def test_missing_roi_folder_raises(tmp_path):
    argv = ["train", "classifier", "--rois", str(tmp_path / "none"), "--out", str(tmp_path)]
    with pytest.raises(FileNotFoundError):
        main(argv)
