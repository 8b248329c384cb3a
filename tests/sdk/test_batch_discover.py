"""Which files ``calcsdk detect`` scores: folders, globs, explicit files, exclusions, names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from calcsdk.batch.discover import common_root, discover_images, is_image_candidate, overlay_name

TREE = {
    "a.png": b"x",
    "b.DCM": b"x",
    "sub/c.tif": b"x",
    "sub/d.tiff": b"x",
    "sub/deep/e.pgm": b"x",
    "sub/deep/f.jpeg": b"x",
    "IM-0001": b"\0" * 128 + b"DICM" + b"\0" * 8,  # suffix-less DICOM
    "README": b"no magic here",
    "notes.txt": b"text",
    ".hidden.png": b"x",
    ".cache/g.png": b"x",
    "out/overlay.png": b"x",
}


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch) -> Path:
    for name, data in TREE.items():
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("inputs", "exclude", "expected"),
    [
        (
            ["in"],
            ["in/out"],
            [
                "in/IM-0001",
                "in/a.png",
                "in/b.DCM",
                "in/sub/c.tif",
                "in/sub/d.tiff",
                "in/sub/deep/e.pgm",
                "in/sub/deep/f.jpeg",
            ],
        ),
        (
            ["in/sub"],
            [],
            ["in/sub/c.tif", "in/sub/d.tiff", "in/sub/deep/e.pgm", "in/sub/deep/f.jpeg"],
        ),
        (["in/**/*.p*"], ["in/out"], ["in/a.png", "in/sub/deep/e.pgm"]),
        (["in/*.png", "in/a.png", "./in/a.png"], [], ["in/a.png"]),  # duplicates removed
        (["in/notes.txt"], [], ["in/notes.txt"]),  # an explicit file is kept (the reader judges)
        (["in/missing.png"], [], ["in/missing.png"]),  # reported as a failure, not dropped
        (["in/nothing*.png"], [], []),  # a glob matching nothing
        ([], [], []),
    ],
)
def test_discover_images(tree, inputs, exclude, expected):
    assert discover_images(inputs, exclude=exclude) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.png", True), ("b.DCM", True), ("IM-0001", True), ("README", False), ("notes.txt", False)],
)
def test_is_image_candidate(tree, name, expected):
    assert is_image_candidate(os.path.join("in", name)) is expected


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("in/sub/c.tif", "in", "sub__c.tif.png"),
        ("in/a.png", "in", "a.png.png"),
        ("in/sub/deep/e.pgm", "in/sub", "deep__e.pgm.png"),
    ],
)
def test_overlay_name_is_flat_and_unique(tree, path, root, expected):
    assert overlay_name(path, root) == expected


def test_common_root(tree):
    assert common_root(["in/sub/c.tif", "in/sub/deep/e.pgm"]) == os.path.realpath("in/sub")
    assert common_root([]) == os.getcwd()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


ZIPPED = {
    "case/a.png": b"x",
    "case/IM-0002": b"\0" * 128 + b"DICM" + b"\0" * 8,  # suffix-less DICOM
    "case/DICOMDIR": b"\0" * 128 + b"DICM" + b"\0" * 8,  # the media index: no image
    "case/README": b"no magic",
    "__MACOSX/case/._a.png": b"x",  # AppleDouble of a zip made on macOS
    ".hidden/b.png": b"x",
    "nested.zip": b"PK\x05\x06" + b"\0" * 18,  # archives inside archives are not opened
}


def test_archives_stand_for_their_image_members(tree):
    _zip(tree / "in" / "sub" / "z.zip", ZIPPED)
    (tree / "in" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    expected = ["in/sub/z.zip!/case/IM-0002", "in/sub/z.zip!/case/a.png"]
    assert discover_images(["in/sub/z.zip"]) == expected  # given
    assert discover_images(["in/**/*.zip"]) == expected  # globbed
    found = discover_images(["in"], exclude=["in/out"])  # found in a folder
    assert [p for p in found if "z.zip" in p] == expected
    assert "in/DICOMDIR" not in found
    assert discover_images(["in/sub/z.zip", "./in/sub/z.zip!/case/a.png"]) == expected
    assert discover_images(["in/sub/z.zip!/case/README"]) == ["in/sub/z.zip!/case/README"]


def test_unreadable_archives_are_kept_as_inputs(tree, caplog):
    (tree / "in" / "bad.zip").write_bytes(b"garbage")
    (tree / "in" / "empty.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    assert discover_images(["in/bad.zip", "in/empty.zip"]) == ["in/bad.zip"]
    assert "not a readable zip" in caplog.text and "holds no image file" in caplog.text


def test_member_overlay_names_and_root(tree):
    _zip(tree / "in" / "sub" / "z.zip", ZIPPED)
    member = "in/sub/z.zip!/case/a.png"
    assert overlay_name(member, "in") == "sub__z.zip!__case__a.png.png"
    assert common_root([member, "in/sub/deep/e.pgm"]) == os.path.realpath("in/sub")
