"""The paper's ROI-classifier experiment: k-fold CV, saved predictions, resume, the report.

One small real run (tiny AlexNet, 160 drawn ROIs, 2 folds, all three representations) is
shared by the module; the report is checked against numbers recomputed here, independently,
with scikit-learn from the saved predictions, and on a hand-made run folder with known values.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from calcsdk.representations import REPRESENTATIONS, roi_representations
from calcsdk.training.classifier import cross_validation, get_config, load_classifier, predict
from calcsdk.training.classifier.cross_validation import (
    CrossValidationConfig,
    CvRunFiles,
    predicted_classes,
    run_cross_validation,
    select_best_fold,
)
from calcsdk.training.classifier.report import PAPER_TABLE2, build_report, write_report
from calcsdk.training.models import AlexNetConfig

TINY_NET = AlexNetConfig(width=1 / 16, dropout=0.0)
FAST = {  # learns within 4 epochs on grayscale and filtered ROIs, so the folds differ
    "batch_size": 16,
    "learning_rate": 1e-2,
    "epochs": 4,
    "patience": 0,
    "augment": False,
    "progress": False,
}
CV = CrossValidationConfig(n_folds=2, seed=3)
PER_CLASS = (80, 40, 40)  # malignant, benign, normal: the paper's 2:1:1
ROI = 227


def draw_rois(per_class: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (N, 227, 227) in [0, 1] and int64 (N,) labels: 0 = clustered bright dots,
    1 = one large thin ring, 2 = noisy background only."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ROI, 0:ROI].astype(np.float32)
    labels = np.repeat(np.arange(len(per_class)), per_class)
    x = 0.3 + 0.05 * rng.standard_normal((len(labels), ROI, ROI), dtype=np.float32)
    for i, label in enumerate(labels):
        if label == 0:
            for px, py in rng.uniform(70, 157, (8, 2)):
                x[i][(xx - px) ** 2 + (yy - py) ** 2 <= 9.0] = 0.9
        elif label == 1:
            px, py = rng.uniform(70, 157, 2)
            x[i][np.abs(np.hypot(xx - px, yy - py) - 25.0) <= 1.5] = 0.8
    order = rng.permutation(len(labels))
    return np.clip(x, 0.0, 1.0)[order], labels[order].astype(np.int64)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The machine is shared: one thread is faster than two oversubscribed ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    x, labels = draw_rois(PER_CLASS, seed=0)
    groups = [f"patient{i // 2}" for i in range(len(labels))]  # two ROIs per patient
    return roi_representations(x), labels, groups


@pytest.fixture(scope="module")
def cv_run(data, tmp_path_factory):
    rois, labels, groups = data
    out = tmp_path_factory.mktemp("cv") / "run"
    result = run_cross_validation(
        rois.__getitem__,
        labels,
        out,
        get_config("rcnn-1", **FAST),
        model_config=TINY_NET,
        cv_config=CV,
        groups=groups,
    )
    return out, result


# --- the protocol and the saved files ---------------------------------------------------------
def test_split_follows_the_protocol(cv_run, data):
    out, result = cv_run
    _, labels, groups = data
    test = result.protocol.test
    # the paper's 1,000 of 5,000, scaled; whole patients (2 ROIs each) make it approximate
    assert abs(len(test) - round(1000 * len(labels) / 5000)) <= 2
    test_patients = {groups[i] for i in test}
    with np.load(CvRunFiles(out).split) as split:
        assert np.array_equal(split["test"], test)
        for k, (train, val) in enumerate(result.protocol.folds, start=1):
            assert np.array_equal(split[f"fold{k}_train"], train)
            assert np.array_equal(split[f"fold{k}_val"], val)
            pool = np.concatenate([train, val])
            assert len(np.intersect1d(train, val)) == 0
            assert np.array_equal(np.sort(np.concatenate([pool, test])), np.arange(len(labels)))
            assert not test_patients & {groups[i] for i in pool}  # no patient leaks into test
            assert 0.1 < len(val) / len(pool) < 0.3  # 80 / 20 inside the fold


def test_every_fold_saved_predictions_of_its_best_model(cv_run, data):
    out, result = cv_run
    rois, labels, _ = data
    files = CvRunFiles(out)
    assert list(result.representations) == list(REPRESENTATIONS)
    for name, entry in result.representations.items():
        for fold in entry.folds:
            model = load_classifier(fold.run_dir / "best.pt")
            for part, expected in zip(
                ("val", "test"), (result.protocol.folds[fold.fold - 1][1], result.protocol.test)
            ):
                with np.load(files.predictions(name, fold.fold, part)) as saved:
                    assert np.array_equal(saved["indices"], expected)
                    assert np.array_equal(saved["y_true"], labels[expected])
                    assert saved["probs"].shape == (len(expected), 3)
                    probs, _ = predict(model, rois[name][expected])
                    np.testing.assert_allclose(saved["probs"], probs, atol=1e-6)
            record = json.loads(files.fold_record(name, fold.fold).read_text())
            # the trainer's best validation accuracy is the saved predictions' accuracy
            assert record["trainer_best_val_accuracy"] == pytest.approx(fold.val_accuracy)
            assert len(record["seconds_per_epoch"]) == FAST["epochs"] == fold.epochs_trained
            assert all(s > 0 for s in fold.seconds_per_epoch)


def test_selected_model_is_the_best_validation_fold(cv_run):
    out, result = cv_run
    files = CvRunFiles(out)
    entries = result.representations.values()
    assert any(len({f.val_accuracy for f in entry.folds}) > 1 for entry in entries)  # not moot
    for name, entry in result.representations.items():
        val = [f.val_accuracy for f in entry.folds]
        assert entry.selected_fold == 1 + int(np.flatnonzero(np.array(val) == max(val))[0])
        source = entry.folds[entry.selected_fold - 1].run_dir / "best.pt"
        assert entry.selected_weights_path.read_bytes() == source.read_bytes()
        selection = json.loads(files.selection(name).read_text())
        assert selection["selected_fold"] == entry.selected_fold


# --- the report, recomputed independently -----------------------------------------------------
def test_report_numbers_are_recomputed_from_the_saved_predictions(cv_run):
    out, _ = cv_run
    written = write_report(out)
    report = json.loads(written.json.read_text())
    markdown = written.markdown.read_text()
    files = CvRunFiles(out)
    for name in REPRESENTATIONS:
        entry = report["representations"][name]
        val_accuracies = []
        for fold in entry["folds"]:
            k = fold["fold"]
            for part in ("val", "test"):
                with np.load(files.predictions(name, k, part)) as saved:
                    expected = accuracy_score(saved["y_true"], saved["probs"].argmax(1))
                assert fold[f"{part}_accuracy"] == pytest.approx(expected, abs=1e-12)
                assert f"{100 * expected:.2f}" in markdown
            val_accuracies.append(fold["val_accuracy"])
        selected = int(np.argmax(val_accuracies)) + 1
        assert entry["selected_fold"] == selected
        with np.load(files.predictions(name, selected, "test")) as saved:
            y_true, y_pred = saved["y_true"], saved["probs"].argmax(1)
        test = entry["selected_test"]
        assert test["confusion"] == sk_confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist()
        for average in ("micro", "macro", "weighted"):
            f1 = f1_score(y_true, y_pred, labels=[0, 1, 2], average=average, zero_division=0)
            assert test[average]["f1"] == pytest.approx(f1, abs=1e-12)
            assert f"{f1:.3f}" in markdown
        figure = cv2.imread(str(written.figures[name]))
        assert figure is not None and figure.shape[0] > 200
    for value in PAPER_TABLE2["grayscale"][: CV.n_folds]:
        assert f"{value:.2f}" in markdown


# --- resume -----------------------------------------------------------------------------------
def _rerun(data, out, monkeypatch, *, config=None, cv_config=CV, labels=None):
    rois, saved_labels, groups = data
    calls = []
    real = cross_validation.train_classifier

    def counting(*args, **kwargs):
        calls.append(kwargs["resume"])
        return real(*args, **kwargs)

    monkeypatch.setattr(cross_validation, "train_classifier", counting)
    result = run_cross_validation(
        rois.__getitem__,
        saved_labels if labels is None else labels,
        out,
        config or get_config("rcnn-1", **FAST),
        model_config=TINY_NET,
        cv_config=cv_config,
        groups=groups,
        resume=True,
    )
    return result, calls


def test_resume_skips_finished_folds_and_finishes_the_rest(cv_run, data, monkeypatch, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(cv_run[0], out)
    result, calls = _rerun(data, out, monkeypatch)
    assert calls == []  # nothing retrained
    assert result.representations["binary"].folds == tuple(
        dataclasses.replace(f, run_dir=out / "binary" / f"fold{f.fold}")
        for f in cv_run[1].representations["binary"].folds
    )
    files = CvRunFiles(out)
    files.fold_record("filtered", 2).unlink()  # as if interrupted after its last epoch
    files.predictions("filtered", 2, "test").unlink()
    result, calls = _rerun(data, out, monkeypatch)
    assert calls == [True]  # only that fold, resumed from its last.pt
    assert result.representations["filtered"].folds[1].test_accuracy == pytest.approx(
        cv_run[1].representations["filtered"].folds[1].test_accuracy
    )


def test_existing_run_without_resume_raises(cv_run, data):
    rois, labels, groups = data
    with pytest.raises(FileExistsError, match="resume"):
        run_cross_validation(
            rois.__getitem__, labels, cv_run[0], get_config("rcnn-1", **FAST),
            model_config=TINY_NET, cv_config=CV, groups=groups,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cv_config": dataclasses.replace(CV, seed=4)}, "seed"),
        ({"cv_config": dataclasses.replace(CV, n_test=500)}, "n_test"),
        ({"config": get_config("rcnn-1", **{**FAST, "learning_rate": 5e-2})}, "learning_rate"),
        ({"labels": "shuffled"}, "ROIs"),
    ],
)
def test_resume_with_other_settings_raises(cv_run, data, monkeypatch, change, message):
    if change.get("labels") == "shuffled":
        change = {"labels": np.roll(data[1], 1)}
    with pytest.raises(ValueError, match=message):
        _rerun(data, cv_run[0], monkeypatch, **change)


def test_resume_may_raise_epochs_without_retraining_finished_folds(
    cv_run, data, monkeypatch, tmp_path
):
    out = tmp_path / "run"
    shutil.copytree(cv_run[0], out)
    longer = get_config("rcnn-1", **{**FAST, "epochs": 5})  # epochs may change on resume
    _, calls = _rerun(data, out, monkeypatch, config=longer)
    assert calls == []


def _drop_from_saved_config(out, key):
    """Rewrite ``cv.json`` as a version without ``train_config.key`` would have written it."""
    path = CvRunFiles(out).settings
    saved = json.loads(path.read_text())
    del saved["train_config"][key]
    path.write_text(json.dumps(saved))


def test_resume_of_a_run_older_than_a_config_field(cv_run, data, monkeypatch, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(cv_run[0], out)
    _drop_from_saved_config(out, "lr_schedule")  # that run had the default schedule
    _, calls = _rerun(data, out, monkeypatch)
    assert calls == []
    cosine = get_config("rcnn-1", **{**FAST, "lr_schedule": "cosine"})
    with pytest.raises(ValueError, match="lr_schedule constant != cosine"):
        _rerun(data, out, monkeypatch, config=cosine)


def test_resume_of_a_run_copied_without_weights(cv_run, data, monkeypatch, tmp_path):
    """The recorded runs keep predictions and logs but no *.pt: resuming one still finishes
    the missing folds and reports, and the selection says its weights are absent."""
    out = tmp_path / "run"
    shutil.copytree(cv_run[0], out, ignore=shutil.ignore_patterns("*.pt"))
    files = CvRunFiles(out)
    files.fold_record("filtered", 2).unlink()  # this fold is trained again, from scratch
    shutil.rmtree(files.fold_dir("filtered", 2))
    result, calls = _rerun(data, out, monkeypatch)
    assert calls == [False]
    for name, entry in result.representations.items():
        before = cv_run[1].representations[name]
        assert entry.selected_fold == before.selected_fold
        weights = files.fold_dir(name, entry.selected_fold) / "best.pt"
        selection = json.loads(files.selection(name).read_text())
        if weights.exists():  # the retrained fold was selected: its weights are copied
            assert entry.selected_weights_path.read_bytes() == weights.read_bytes()
            assert selection["weights"] == str(entry.selected_weights_path)
        else:
            assert entry.selected_weights_path is None and selection["weights"] is None
            assert not files.selected_weights(name).exists()
    assert result.representations["filtered"].folds[1].test_accuracy == pytest.approx(
        cv_run[1].representations["filtered"].folds[1].test_accuracy
    )
    assert json.loads(write_report(out).json.read_text())  # the report needs no weights


# --- small pieces -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("val_accuracies", "expected"),
    [([0.5, 0.7, 0.6], 2), ([0.7, 0.7, 0.1], 1), ([0.0], 1), ([0.2, 0.3, 0.3, 1.0], 4)],
)
def test_select_best_fold(val_accuracies, expected):
    assert select_best_fold(val_accuracies) == expected


@pytest.mark.parametrize("val_accuracies", [[], [0.5, 1.2], [np.nan], [-0.1]])
def test_select_best_fold_rejects(val_accuracies):
    with pytest.raises(ValueError):
        select_best_fold(val_accuracies)


@pytest.mark.parametrize(
    ("probs", "expected"),
    [
        (np.zeros((0, 3), np.float32), []),
        ([[0.2, 0.5, 0.3]], [1]),
        ([[0.4, 0.2, 0.4], [0.1, 0.1, 0.8]], [0, 2]),  # ties go to the lowest class
    ],
)
def test_predicted_classes(probs, expected):
    result = predicted_classes(np.asarray(probs))
    assert result.dtype == np.int64 and result.tolist() == expected


@pytest.mark.parametrize(
    "overrides",
    [
        {"representations": ()},
        {"representations": ("grayscale", "grayscale")},
        {"representations": ("rgb",)},
        {"n_folds": 1},
        {"n_test": 0},
        {"val_fraction": 1.0},
    ],
)
def test_config_rejects(overrides):
    with pytest.raises(ValueError):
        CrossValidationConfig(**overrides)


@pytest.mark.parametrize(
    ("labels", "rois", "message"),
    [
        (np.array([0, 1, 3] * 10), None, "labels"),
        (np.array([0.0, 1.0, 2.0] * 10), None, "labels"),
        (np.array([0, 0, 1, 2] * 10), np.zeros((3, ROI, ROI), np.float32), "gave 3 ROIs"),
    ],
)
def test_bad_inputs_raise(labels, rois, message, tmp_path):
    def load(_: str) -> np.ndarray:
        return np.zeros((len(labels), ROI, ROI), np.float32) if rois is None else rois

    with pytest.raises(ValueError, match=message):
        run_cross_validation(
            load, labels, tmp_path / "run", get_config("rcnn-1", **FAST),
            model_config=TINY_NET, cv_config=CrossValidationConfig(n_folds=2),
        )  # fmt: skip


# --- the report on a hand-made run folder (known numbers, a pending fold) ----------------------
def _fake_run(root, folds: dict[tuple[str, int], tuple[list, list, list, list]]) -> CvRunFiles:
    """A run folder with given (val y_true, val y_pred, test y_true, test y_pred) per fold."""
    files = CvRunFiles(root)
    root.mkdir(parents=True)
    settings = {
        "format": 1,
        "class_names": ["malignant", "benign", "normal"],
        "cv_config": {"representations": ["grayscale", "binary"], "n_folds": 2, "seed": 0},
        "train_config": dataclasses.asdict(get_config("rcnn-2")),
        "model_config": dataclasses.asdict(AlexNetConfig()),
        "dataset": {"rois": 8, "class_counts": {}, "patients": None, "digest": ""},
    }
    files.settings.write_text(json.dumps(settings))
    np.savez(files.split, test=np.arange(4), fold1_train=np.arange(2), fold1_val=np.arange(2))
    for (name, k), (val_true, val_pred, test_true, test_pred) in folds.items():
        files.fold_dir(name, k).mkdir(parents=True)
        for part, y_true, y_pred in (("val", val_true, val_pred), ("test", test_true, test_pred)):
            probs = np.eye(3, dtype=np.float32)[y_pred].reshape(-1, 3)
            np.savez(
                files.predictions(name, k, part),
                indices=np.arange(len(y_true)),
                y_true=np.array(y_true, np.int64),
                probs=probs,
            )
        record = {"best_epoch": 3, "epochs_trained": 5, "stopped_early": True}
        record.update(seconds_per_epoch=[2.0, 4.0, 3.0, 3.0, 3.0], rois={"train": 6})
        files.fold_record(name, k).write_text(json.dumps(record))
    return files


@pytest.mark.parametrize(
    ("folds", "expected_val", "expected_selected", "expected_micro", "expected_macro"),
    [
        (  # fold 2 validates better; its test: 3 of 4 right, benign never predicted
            {
                ("grayscale", 1): ([0, 1], [0, 0], [0, 0, 1, 2], [0, 0, 0, 2]),
                ("grayscale", 2): ([0, 1], [0, 1], [0, 0, 1, 2], [0, 0, 0, 2]),
            },
            [0.5, 1.0],
            2,
            0.75,
            (0.8 + 0.0 + 1.0) / 3,
        ),
        (  # a tie goes to fold 1; its test is all wrong
            {
                ("grayscale", 1): ([2, 2], [2, 2], [0, 1], [1, 0]),
                ("grayscale", 2): ([0, 1], [0, 1], [0, 1], [0, 1]),
            },
            [1.0, 1.0],
            1,
            0.0,
            0.0,
        ),
        (  # fold 2 still running: no selection yet
            {("grayscale", 1): ([0], [0], [1], [1])},
            [1.0, None],
            None,
            None,
            None,
        ),
    ],
)
def test_report_on_known_predictions(
    tmp_path, folds, expected_val, expected_selected, expected_micro, expected_macro
):
    files = _fake_run(tmp_path / "run", folds)
    report = build_report(files.out_dir)
    entry = report["representations"]["grayscale"]
    assert [f.get("val_accuracy") for f in entry["folds"]] == expected_val
    assert entry["selected_fold"] == expected_selected
    assert report["representations"]["binary"]["folds"][0]["status"] == "pending"
    assert entry["folds"][0]["median_seconds_per_epoch"] == 3.0
    assert entry["folds"][0]["training_seconds"] == 15.0
    if expected_selected is None:
        assert entry["selected_test"] is None
    else:
        assert entry["selected_test"]["micro"]["f1"] == pytest.approx(expected_micro)
        assert entry["selected_test"]["macro"]["f1"] == pytest.approx(expected_macro)
    written = write_report(files.out_dir)
    markdown = written.markdown.read_text()
    assert "pending" in markdown and "AlexNet4" in markdown  # ours and the paper's selections
    assert set(written.figures) == ({"grayscale"} if expected_selected else set())
    assert "Settings: the paper's `rcnn-2` unchanged." in markdown


def test_report_names_every_departure_from_the_paper_config(tmp_path):
    files = _fake_run(tmp_path / "run", {("grayscale", 1): ([0], [0], [1], [1])})
    settings = json.loads(files.settings.read_text())
    settings["train_config"].update(learning_rate=0.01, epochs=30)
    settings["model_config"]["width"] = 0.125
    files.settings.write_text(json.dumps(settings))
    markdown = write_report(files.out_dir).markdown.read_text()
    assert (
        "Departures from the paper's `rcnn-2`: learning rate 0.01 (paper 0.0001); max epochs "
        "30 (paper 100); AlexNet width 0.125 (paper 1.0)." in markdown
    )


def test_report_needs_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cv\.json"):
        build_report(tmp_path)
