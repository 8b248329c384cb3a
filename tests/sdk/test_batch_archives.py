"""Zip and tar archives as batch inputs: member names, listing, reading, and every fault an
operator's archive can carry (corrupt, truncated, encrypted, too large, bad checksum)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from calcsdk.batch import archives
from calcsdk.batch.archives import (
    archive_members,
    input_key,
    member_path,
    read_batch_input,
    read_member,
    split_member_path,
)
from calcsdk.errors import ArchiveError, CorruptImageError
from calcsdk.image import write_png

PIXELS = (np.arange(48 * 40, dtype=np.uint16).reshape(48, 40) * 7) % 4096


def png_bytes(tmp_path: Path, seed: int = 0) -> bytes:
    path = tmp_path / f"src{seed}.png"
    write_png(path, (PIXELS + seed).astype(np.uint16), (0.1, 0.1))
    return path.read_bytes()


def make_tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture()
def members(tmp_path) -> dict[str, bytes]:
    return {"case1/a.png": png_bytes(tmp_path, 0), "case2/b.png": png_bytes(tmp_path, 1)}


ARCHIVE_KINDS = {
    "a.zip": lambda p, m: make_zip(p, m),
    "a.tar": lambda p, m: make_tar(p, m),
    "a.tar.gz": lambda p, m: make_tar(p, m, "w:gz"),
    "a.tgz": lambda p, m: make_tar(p, m, "w:gz"),
    "a.tar.bz2": lambda p, m: make_tar(p, m, "w:bz2"),
    "a.tar.xz": lambda p, m: make_tar(p, m, "w:xz"),
}


@pytest.mark.parametrize("name", sorted(ARCHIVE_KINDS))
def test_every_kind_lists_and_reads_its_members(tmp_path, members, name):
    archive = str(ARCHIVE_KINDS[name](tmp_path / name, members))
    listing = archive_members(archive)
    assert listing.members == tuple(members) and listing.error is None
    for member, data in members.items():
        assert read_member(archive, member) == data
        assert read_member(archive, member, head=8) == data[:8]
        image = read_batch_input(member_path(archive, member))
        assert image.source == f"{archive}!/{member}"
        assert image.shape == PIXELS.shape and image.spacing_mm == pytest.approx((0.1, 0.1))
        np.testing.assert_array_equal(image.pixels, PIXELS + (member == "case2/b.png"))


def test_member_names_and_keys(tmp_path, members):
    archive = str(make_zip(tmp_path / "x.zip", members))
    assert split_member_path(f"{archive}!/case1/a.png") == (archive, "case1/a.png")
    assert split_member_path(f"{archive}!/") is None  # no member
    assert split_member_path(str(tmp_path / "other.zip!/a.png")) is None  # no such archive
    odd = tmp_path / "wow!" / "a.png"  # an ordinary path holding "!/"
    odd.parent.mkdir()
    assert split_member_path(str(odd)) is None
    assert input_key(str(odd)) == os.path.realpath(odd)
    os.symlink(archive, tmp_path / "link.zip")
    assert input_key(str(tmp_path / "link.zip!/case1/a.png")) == input_key(
        f"{archive}!/case1/a.png"
    )


def test_directories_links_and_unsafe_names_are_not_members(tmp_path, members):
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w") as tar:
        folder = tarfile.TarInfo("folder")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        link = tarfile.TarInfo("link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "case1/a.png"
        tar.addfile(link)
        for name in ("../evil.png", "/abs.png", "a//b.png", "case1/a.png"):
            info = tarfile.TarInfo(name)
            info.size = len(members["case1/a.png"])
            tar.addfile(info, io.BytesIO(members["case1/a.png"]))
    assert archive_members(str(path)).members == ("case1/a.png",)


def test_dot_slash_names_of_tar_dot_are_plain_members(tmp_path, members):
    dotted = {f"./{name}": data for name, data in members.items()}
    for archive in (
        make_tar(tmp_path / "dot.tgz", dotted, "w:gz"),
        make_zip(tmp_path / "dot.zip", dotted),
    ):
        assert archive_members(str(archive)).members == tuple(members)
        assert read_member(str(archive), "case1/a.png") == members["case1/a.png"]


def test_corrupt_archives_name_the_file(tmp_path):
    for name in ("junk.zip", "junk.tar", "junk.tar.gz"):
        path = tmp_path / name
        path.write_bytes(b"\x1f\x8b" + b"not an archive at all" * 40 if name.endswith("gz")
                         else b"not an archive at all" * 40)  # fmt: skip
        with pytest.raises(ArchiveError, match=r"junk\.(zip|tar)") as info:
            archive_members(str(path))
        assert "archive" in info.value.reason or "stream" in info.value.reason
    with pytest.raises(ArchiveError, match="not a readable zip"):
        read_batch_input(str(tmp_path / "junk.zip"))


def test_truncated_tar_gz_keeps_the_members_before_the_damage(tmp_path, members):
    big = {f"m{i}.png": png_bytes(tmp_path, i) + os.urandom(20_000) for i in range(4)}
    whole = make_tar(tmp_path / "whole.tar.gz", big, "w:gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) * 3 // 5])
    listing = archive_members(str(cut))
    assert 1 <= len(listing.members) < 4
    assert listing.members == tuple(big)[: len(listing.members)]
    assert "truncated" in listing.error
    for member in listing.members:
        assert read_member(str(cut), member) == big[member]
    with pytest.raises(ArchiveError, match="truncated"):
        read_batch_input(str(cut))  # the archive itself stands for its lost tail


def _set_encrypted_flag(data: bytes) -> bytes:
    out = bytearray(data)
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        out[at + flag_offset] |= 0x1
    return bytes(out)


def test_member_faults(tmp_path, members, monkeypatch):
    data = members["case1/a.png"]
    encrypted = tmp_path / "enc.zip"
    encrypted.write_bytes(
        _set_encrypted_flag(make_zip(tmp_path / "e.zip", {"a.png": data}).read_bytes())
    )
    with pytest.raises(ArchiveError, match="encrypted") as info:
        read_member(str(encrypted), "a.png")
    assert info.value.source == f"{encrypted}!/a.png"

    deflate64 = bytearray(make_zip(tmp_path / "d64.zip", {"a.png": data}).read_bytes())
    for signature, method_offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        deflate64[deflate64.find(signature) + method_offset] = 9  # Deflate64: zipfile has none
    (tmp_path / "d64.zip").write_bytes(bytes(deflate64))
    with pytest.raises(ArchiveError, match="unsupported zip compression"):
        read_member(str(tmp_path / "d64.zip"), "a.png")

    stored = make_zip(tmp_path / "crc.zip", {"a.png": data}, zipfile.ZIP_STORED)
    raw = bytearray(stored.read_bytes())
    raw[raw.find(data[:16]) + 100] ^= 0xFF  # one byte of the member's data
    stored.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="corrupt member data"):
        read_member(str(stored), "a.png")

    zipped = str(make_zip(tmp_path / "big.zip", {"a.png": data}))
    tarred = str(make_tar(tmp_path / "big.tar", {"a.png": data}))
    monkeypatch.setattr(archives, "MAX_MEMBER_BYTES", len(data) - 1)
    for archive in (zipped, tarred):
        with pytest.raises(ArchiveError, match="over"):
            read_member(archive, "a.png")
        assert read_member(archive, "a.png", head=4) == data[:4]  # a head read is not limited
        with pytest.raises(ArchiveError, match="no such member"):
            read_member(archive, "b.png")


def test_a_bad_member_is_an_image_error_naming_the_member(tmp_path, members):
    archive = str(make_zip(tmp_path / "m.zip", {"bad.png": members["case1/a.png"][:50]}))
    with pytest.raises(CorruptImageError) as info:
        read_batch_input(member_path(archive, "bad.png"))
    assert info.value.source == f"{archive}!/bad.png"


def test_a_rewritten_archive_is_read_again(tmp_path, members):
    path = tmp_path / "r.tar"
    make_tar(path, {"a.png": members["case1/a.png"]})
    assert archive_members(str(path)).members == ("a.png",)
    make_tar(path, {"a.png": members["case2/b.png"], "c.png": members["case1/a.png"]})
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    assert archive_members(str(path)).members == ("a.png", "c.png")
    assert read_member(str(path), "a.png") == members["case2/b.png"]


def test_gzip_named_tgz_and_plain_tar_named_tgz(tmp_path, members):
    plain = make_tar(tmp_path / "plain.tgz", members)  # told by magic, not by name
    assert archive_members(str(plain)).members == tuple(members)
    single = tmp_path / "single.tar.gz"  # gzip of something that is not a tar
    single.write_bytes(gzip.compress(b"hello" * 100))
    with pytest.raises(ArchiveError, match="not a readable tar"):
        archive_members(str(single))
