"""Model bundles: a directory (or one ``.zip`` / ``.tar.gz`` archive of it) holding
``manifest.json`` plus the model files it lists.

Loading verifies, and refuses with a :class:`~calcsdk.errors.BundleError` naming the bundle:
an unreadable or malformed manifest, an unknown schema version, a missing listed file, an extra
file the manifest does not list, and any sha256 mismatch. A bundle is never "mostly loaded".

The manifest (schema version 1) is documented in ``docs/bundle.md``; its keys:

``schema_version`` (int), ``name``, ``version``, ``pipeline`` (``"rcnn"`` | ``"yolov4"``),
``class_names`` (detector classes, e.g. ``["malignant", "benign"]``), ``preprocess`` (working
pixel spacing in mm, normalisation, ROI representation, crop size...), ``proposals`` (EdgeBoxes
parameters; R-CNN only), ``thresholds`` (confidence, NMS IoU, max detections), ``models``
(role -> ``{"file", "inputs", "outputs", "precision", "opset"}``), ``files`` (file -> sha256),
``provenance`` (training data, config, commit, date, reduced-width notes) and ``metrics``
(figures measured at export).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import weakref
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calcsdk.errors import BundleError

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
PIPELINES = ("rcnn", "yolov4")
_REQUIRED_KEYS = ("schema_version", "name", "version", "pipeline", "class_names", "models", "files")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class ModelSpec:
    """One model file of a bundle: its role (``"fc7"``, ``"head"``, ``"yolov4"``...), file name,
    the tensor names of its inputs and outputs, and its numeric precision (``"fp32"``/``"int8"``)."""

    role: str
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    precision: str = "fp32"
    opset: int | None = None


@dataclass(frozen=True)
class Bundle:
    """A verified model bundle. ``root`` is a directory holding exactly the manifest's files
    (a private temporary copy when the bundle came as an archive)."""

    source: str
    root: Path
    manifest: Mapping[str, Any]
    models: Mapping[str, ModelSpec] = field(default_factory=dict)

    @property
    def pipeline(self) -> str:
        return str(self.manifest["pipeline"])

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["class_names"])

    @property
    def version(self) -> str:
        return f"{self.manifest['name']}@{self.manifest['version']}"

    def section(self, key: str) -> Mapping[str, Any]:
        """A manifest section (``"preprocess"``, ``"proposals"``, ``"thresholds"``...), or {}."""
        value = self.manifest.get(key, {})
        if not isinstance(value, Mapping):
            raise BundleError(f"manifest key {key!r} must be an object", self.source)
        return value

    def model_path(self, role: str, precision: str = "fp32") -> Path:
        """Path of the model file serving ``role`` at ``precision``; raises if the bundle has none."""
        key = role if precision == "fp32" else f"{role}@{precision}"
        spec = self.models.get(key)
        if spec is None:
            have = sorted(self.models)
            raise BundleError(f"no model {key!r} in this bundle (it has {have})", self.source)
        return self.root / spec.file

    def precisions(self, role: str) -> tuple[str, ...]:
        return tuple(s.precision for k, s in self.models.items() if k.split("@")[0] == role)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_bundle(source: str | os.PathLike) -> Bundle:
    """Open and verify a bundle directory or archive. Raises :class:`BundleError` on any fault."""
    path = Path(source)
    if not path.exists():
        raise BundleError("bundle not found", path)
    if path.is_dir():
        return _verify(str(path), path)
    if not str(path).endswith(_ARCHIVE_SUFFIXES):
        raise BundleError(f"not a bundle: expected a directory or one of {_ARCHIVE_SUFFIXES}", path)
    tmp = Path(tempfile.mkdtemp(prefix="calcsdk-bundle-"))
    try:
        _extract(path, tmp)
        root = _single_root(tmp)
        bundle = _verify(str(path), root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    weakref.finalize(bundle, shutil.rmtree, tmp, True)
    return bundle


def write_bundle(
    root: str | os.PathLike, manifest: Mapping[str, Any], files: Mapping[str, str | os.PathLike]
) -> Path:
    """Create a bundle directory: copy ``files`` (name -> source path), hash them, write the
    manifest with ``schema_version`` and ``files`` filled in. Returns the directory."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, src in files.items():
        if "/" in name or "\\" in name or name in ("", ".", "..", MANIFEST):
            raise ValueError(f"bundle file names must be plain names, got {name!r}")
        dst = root / name
        if Path(src).resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        hashes[name] = sha256_file(dst)
    full = {**manifest, "schema_version": SCHEMA_VERSION, "files": dict(sorted(hashes.items()))}
    (root / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    _verify(str(root), root)
    return root


def _verify(source: str, root: Path) -> Bundle:
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"no {MANIFEST} in the bundle", source)
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{MANIFEST} is not valid JSON: {exc}", source) from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{MANIFEST} must hold a JSON object", source)
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise BundleError(
            f"unknown bundle schema version {version!r}; this calcsdk reads "
            f"{list(SUPPORTED_SCHEMA_VERSIONS)}",
            source,
        )
    missing_keys = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing_keys:
        raise BundleError(f"{MANIFEST} lacks required keys {missing_keys}", source)
    if manifest["pipeline"] not in PIPELINES:
        raise BundleError(
            f"unknown pipeline {manifest['pipeline']!r}; expected one of {PIPELINES}", source
        )
    files = manifest["files"]
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise BundleError("'files' must map file names to sha256 hex digests", source)
    present = {p.name for p in root.iterdir()} - {MANIFEST}
    missing = sorted(set(files) - present)
    if missing:
        raise BundleError(f"missing file(s) listed in the manifest: {missing}", source)
    extra = sorted(present - set(files))
    if extra:
        raise BundleError(f"unknown file(s) not listed in the manifest: {extra}", source)
    for name, expected in files.items():
        actual = sha256_file(root / name)
        if actual != expected.lower():
            raise BundleError(
                f"sha256 mismatch for {name}: manifest says {expected[:12]}..., file is "
                f"{actual[:12]}... (tampered or corrupted)",
                source,
            )
    return Bundle(
        source=source, root=root, manifest=manifest, models=_model_specs(source, manifest)
    )


def _model_specs(source: str, manifest: Mapping[str, Any]) -> dict[str, ModelSpec]:
    models = manifest["models"]
    if not isinstance(models, dict) or not models:
        raise BundleError("'models' must be a non-empty object", source)
    specs = {}
    for key, m in models.items():
        try:
            spec = ModelSpec(
                role=key.split("@")[0],
                file=m["file"],
                inputs=tuple(m["inputs"]),
                outputs=tuple(m["outputs"]),
                precision=m.get("precision", "fp32"),
                opset=m.get("opset"),
            )
        except (KeyError, TypeError) as exc:
            raise BundleError(f"model entry {key!r} is malformed: {exc!r}", source) from None
        if spec.file not in manifest["files"]:
            raise BundleError(f"model {key!r} names {spec.file!r}, which is not in 'files'", source)
        specs[key] = spec
    return specs


def _extract(archive: Path, dest: Path) -> None:
    """Extract safely: regular files only, no absolute paths, no '..', no links."""
    try:
        if str(archive).endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    target = _safe_target(archive, dest, info.filename)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    if member.isdir():
                        continue
                    if not member.isfile():
                        raise BundleError(f"archive member {member.name!r} is not a file", archive)
                    target = _safe_target(archive, dest, member.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"cannot read the archive: {exc}", archive) from None


def _safe_target(archive: Path, dest: Path, name: str) -> Path:
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise BundleError(f"archive member {name!r} escapes the bundle", archive)
    return dest.joinpath(*parts)


def _single_root(tmp: Path) -> Path:
    """An archive holds the bundle either at its top level or inside one folder."""
    if (tmp / MANIFEST).exists():
        return tmp
    entries = list(tmp.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return tmp
