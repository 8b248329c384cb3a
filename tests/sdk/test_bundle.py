"""Bundle verification: every integrity fault is its own clear BundleError."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from calcsdk.bundle import MANIFEST, load_bundle, sha256_file, write_bundle
from calcsdk.errors import BundleError, CalcSdkError


@pytest.fixture()
def bundle_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "fc7.onnx").write_bytes(b"model-one")
    (src / "head.onnx").write_bytes(b"model-two")
    manifest = {
        "name": "tiny",
        "version": "0.0.1",
        "pipeline": "rcnn",
        "class_names": ["malignant", "benign"],
        "models": {
            "fc7": {"file": "fc7.onnx", "inputs": ["crops"], "outputs": ["fc7"]},
            "head": {"file": "head.onnx", "inputs": ["fc7"], "outputs": ["scores"]},
        },
    }
    return write_bundle(
        tmp_path / "bundle",
        manifest,
        {"fc7.onnx": src / "fc7.onnx", "head.onnx": src / "head.onnx"},
    )


def _edit_manifest(root: Path, **changes) -> None:
    manifest = json.loads((root / MANIFEST).read_text())
    manifest.update(changes)
    (root / MANIFEST).write_text(json.dumps(manifest))


def test_round_trip(bundle_dir: Path):
    bundle = load_bundle(bundle_dir)
    assert bundle.pipeline == "rcnn"
    assert bundle.class_names == ("malignant", "benign")
    assert bundle.model_path("fc7").read_bytes() == b"model-one"
    assert bundle.manifest["files"]["head.onnx"] == sha256_file(bundle_dir / "head.onnx")
    assert bundle.precisions("fc7") == ("fp32",)
    assert bundle.version == "tiny@0.0.1"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "fc7.onnx").write_bytes(b"model-0ne"), "sha256 mismatch for fc7.onnx"),
        (
            lambda r: (r / "head.onnx").unlink(),
            "missing file(s) listed in the manifest: ['head.onnx']",
        ),
        (
            lambda r: (r / "evil.py").write_text("x"),
            "unknown file(s) not listed in the manifest: ['evil.py']",
        ),
        (lambda r: _edit_manifest(r, schema_version=99), "unknown bundle schema version 99"),
        (lambda r: _edit_manifest(r, schema_version=None), "unknown bundle schema version None"),
        (lambda r: _edit_manifest(r, pipeline="ssd"), "unknown pipeline 'ssd'"),
        (lambda r: (r / MANIFEST).write_text("{not json"), "manifest.json is not valid JSON"),
        (lambda r: (r / MANIFEST).unlink(), "no manifest.json in the bundle"),
        (lambda r: _edit_manifest(r, models={}), "'models' must be a non-empty object"),
        (
            lambda r: _edit_manifest(
                r, models={"fc7": {"file": "x.onnx", "inputs": [], "outputs": []}}
            ),
            "names 'x.onnx', which is not in 'files'",
        ),
    ],
    ids=[
        "tampered",
        "missing",
        "extra",
        "future-version",
        "no-version",
        "pipeline",
        "json",
        "no-manifest",
        "no-models",
        "foreign-model",
    ],
)
def test_faults_are_named(bundle_dir: Path, damage, message):
    damage(bundle_dir)
    with pytest.raises(BundleError) as info:
        load_bundle(bundle_dir)
    assert message in str(info.value)
    assert str(bundle_dir) in str(info.value)  # names the bundle
    assert isinstance(info.value, CalcSdkError)


def test_not_found_and_not_a_bundle(tmp_path: Path):
    with pytest.raises(BundleError, match="bundle not found"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match="not a bundle"):
        load_bundle(tmp_path / "model.onnx")


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
@pytest.mark.parametrize("nested", [False, True])
def test_archives(bundle_dir: Path, tmp_path: Path, suffix: str, nested: bool):
    archive = tmp_path / f"b{suffix}"
    names = sorted(p.name for p in bundle_dir.iterdir())
    prefix = "tiny/" if nested else ""
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for n in names:
                zf.write(bundle_dir / n, prefix + n)
    else:
        with tarfile.open(archive, "w:gz") as tf:
            for n in names:
                tf.add(bundle_dir / n, prefix + n)
    bundle = load_bundle(archive)
    assert bundle.source == str(archive)
    assert bundle.model_path("head").read_bytes() == b"model-two"


def test_archive_tampered_and_traversal(bundle_dir: Path, tmp_path: Path):
    (bundle_dir / "fc7.onnx").write_bytes(b"evil")
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in bundle_dir.iterdir():
            zf.write(p, p.name)
    with pytest.raises(BundleError, match="sha256 mismatch"):
        load_bundle(archive)
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../escape.onnx", b"x")
    with pytest.raises(BundleError, match="escapes the bundle"):
        load_bundle(bad)
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(BundleError, match="cannot read the archive"):
        load_bundle(corrupt)


def test_unknown_model_role(bundle_dir: Path):
    bundle = load_bundle(bundle_dir)
    with pytest.raises(BundleError, match=r"no model 'fc7@int8'"):
        bundle.model_path("fc7", "int8")
