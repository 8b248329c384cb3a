"""Zip and tar archives of mammograms as batch inputs (``calcsdk detect exams.zip``).

A member is named ``ARCHIVE!/MEMBER``, e.g. ``exams/day1.zip!/case7/IM-0001.dcm``: the
archive's path as given, ``!/``, and the member's name inside it (``/``-separated). That name
is what the outputs' ``file`` column, the journal and the errors file show, and what
:func:`read_batch_input` reads. ``--resume`` knows a member by its archive's real path plus
the member name (:func:`input_key`).

Nothing is extracted next to the inputs:
- zip members and the members of a plain ``.tar`` are read in place, one at a time;
- a compressed tar (gzip, bzip2 or xz, told by its magic bytes) has no random access, so it
  is decompressed once per process into an anonymous temporary file under ``$TMPDIR``. That
  needs the archive's uncompressed size in free space, and is freed when the archive leaves
  the per-process cache of open archives (or the process ends).

Faults raise :class:`~calcsdk.errors.ArchiveError` naming the archive or the member:
- a corrupt or truncated archive;
- an encrypted member, or an unsupported zip compression;
- a member over :data:`MAX_MEMBER_BYTES`;
- a member whose data fail their checksum.
A truncated archive still lists the members before the damage, so a batch scores those and
reports the archive itself as a failure (:func:`archive_members` returns both).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import posixpath
import tarfile
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from calcsdk.errors import ArchiveError
from calcsdk.image import (
    DEFAULT_MAX_PIXELS,
    MAX_FILE_BYTES,
    read_mammogram,
    read_mammogram_bytes,
)

if TYPE_CHECKING:  # pragma: no cover
    from calcsdk.image import Mammogram

__all__ = [
    "ARCHIVE_SUFFIXES",
    "MAX_MEMBER_BYTES",
    "MEMBER_SEPARATOR",
    "ArchiveListing",
    "archive_members",
    "input_key",
    "is_archive_name",
    "member_path",
    "read_batch_input",
    "read_member",
    "split_member_path",
]

logger = logging.getLogger(__name__)

#: Archive file names taken as archives (lower case; matched on the name's end).
ARCHIVE_SUFFIXES: tuple[str, ...] = (
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)
MEMBER_SEPARATOR = "!/"
#: Largest member read, in bytes (uncompressed): the limit on a file read from disk.
MAX_MEMBER_BYTES = MAX_FILE_BYTES
_COMPRESSED_TAR_MAGIC = (
    (b"\x1f\x8b", "gzip", gzip.open),
    (b"BZh", "bzip2", bz2.open),
    (b"\xfd7zXZ\x00", "xz", lzma.open),
)
_STREAM_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError)


def is_archive_name(path: str | os.PathLike) -> bool:
    """True when the file name ends with one of :data:`ARCHIVE_SUFFIXES` (any case)."""
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIXES)


def member_path(archive: str, member: str) -> str:
    """The batch name of ``member`` of ``archive``: ``ARCHIVE!/MEMBER``."""
    return f"{archive}{MEMBER_SEPARATOR}{member}"


def split_member_path(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(archive, member)`` when ``path`` names a member of an existing archive file, else
    ``None``. The archive part must end with an archive suffix and be a file, so an ordinary
    path that happens to hold ``!/`` is never mistaken for one."""
    path = os.fspath(path)
    start = 0
    while (cut := path.find(MEMBER_SEPARATOR, start)) > 0:
        archive, member = path[:cut], path[cut + len(MEMBER_SEPARATOR) :]
        if member and is_archive_name(archive) and os.path.isfile(archive):
            return archive, member
        start = cut + 1
    return None


def input_key(path: str | os.PathLike) -> str:
    """The identity of a batch input across runs: a file's real path, or its archive's real
    path plus ``!/MEMBER`` (what the journal records as ``key``)."""
    parts = split_member_path(path)
    if parts is None:
        return os.path.realpath(path)
    return member_path(os.path.realpath(parts[0]), parts[1])


@dataclass(frozen=True)
class ArchiveListing:
    """The regular-file members of an archive, in archive order (a repeated name counts once).

    ``error`` is ``None`` for a sound archive, or why the listing stopped early (the members
    before the damage are still listed).
    """

    members: tuple[str, ...]
    error: str | None = None


def _plain_name(name: str) -> str:
    """A member name without the leading ``./`` of archives made with ``tar -cf x.tar .``."""
    while name.startswith("./"):
        name = name[2:]
    return name


def _safe_name(name: str) -> bool:
    """A member name usable in ``ARCHIVE!/MEMBER``: relative, normalised, no ``..``."""
    return (
        bool(name)
        and not name.startswith("/")
        and posixpath.normpath(name) == name
        and ".." not in name.split("/")
    )


class _Zip:
    def __init__(self, path: str):
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"not a readable zip archive ({exc})", path) from None
        self._path, self._lock = path, threading.Lock()
        self.error = None
        self._infos = {  # a repeated name: the last one wins, as in zipfile
            _plain_name(info.filename): info for info in self._zip.infolist() if not info.is_dir()
        }

    def names(self) -> list[str]:
        return list(self._infos)

    def read(self, name: str, limit: int, head: bool) -> bytes:
        source = member_path(self._path, name)
        info = self._infos.get(name)
        if info is None:
            raise ArchiveError("no such member in the archive", source)
        if info.flag_bits & 0x1:
            raise ArchiveError("encrypted member (calcsdk takes no passwords)", source)
        if not head and info.file_size > limit:
            raise ArchiveError(f"member of {info.file_size} bytes, over {limit}", source)
        with self._lock:
            try:
                with self._zip.open(info) as handle:
                    data = handle.read(limit + (0 if head else 1))
            except NotImplementedError as exc:
                raise ArchiveError(f"unsupported zip compression ({exc})", source) from None
            except (zipfile.BadZipFile, *_STREAM_ERRORS) as exc:
                raise ArchiveError(f"corrupt member data ({exc})", source) from None
        if not head and len(data) > limit:
            raise ArchiveError(f"member over {limit} bytes uncompressed", source)
        return data


class _Tar:
    """A plain tar read through ``file`` (the archive, or an anonymous temporary file holding
    a compressed one's content), indexed once: member name -> (data offset, size)."""

    def __init__(self, label: str, file, error: str | None = None):
        self._label, self._file, self.error = label, file, error
        self._lock = threading.Lock()
        self._index: dict[str, tuple[int, int]] = {}
        end = os.fstat(file.fileno()).st_size
        file.seek(0)
        try:
            with tarfile.open(fileobj=file, mode="r:") as tar:
                while (info := tar.next()) is not None:
                    if not info.isreg() or info.issparse():
                        continue
                    if info.offset_data + info.size > end:
                        self.error = self.error or f"truncated inside member {info.name!r}"
                        break
                    name = _plain_name(info.name)
                    self._index.pop(name, None)  # a repeated name: the last one wins
                    self._index[name] = (info.offset_data, info.size)
        except (tarfile.TarError, *_STREAM_ERRORS) as exc:
            if not self._index and self.error is None:
                raise ArchiveError(f"not a readable tar archive ({exc})", label) from None
            self.error = self.error or f"unreadable after {len(self._index)} members ({exc})"
        if not self._index and self.error is not None:
            raise ArchiveError(self.error, label)  # nothing sound to list

    def names(self) -> list[str]:
        return list(self._index)

    def read(self, name: str, limit: int, head: bool) -> bytes:
        source = member_path(self._label, name)
        if name not in self._index:
            raise ArchiveError("no such member in the archive", source)
        offset, size = self._index[name]
        if not head and size > limit:
            raise ArchiveError(f"member of {size} bytes, over {limit}", source)
        try:
            with self._lock:
                self._file.seek(offset)
                return self._file.read(min(size, limit))
        except OSError as exc:
            raise ArchiveError(f"cannot read the member ({exc.strerror or exc})", source) from None


_lock = threading.Lock()
_open: dict[tuple[str, int, int], _Zip | _Tar] = {}
_MAX_OPEN = 16  # archives kept open per process; an evicted one closes when no read holds it


def _decompressed_tar(path: str, kind: str, opener) -> tuple[BinaryIO, str | None]:
    """``path`` decompressed into an anonymous temporary file (freed when it is closed or
    collected), and the stream's error when it was truncated or corrupt."""
    spool = tempfile.TemporaryFile(prefix="calcsdk-archive-", suffix=".tar")
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read1(1 << 16):  # read1: a truncated stream keeps its start
                spool.write(chunk)
    except OSError as exc:
        if exc.errno is not None:  # the disk, not the stream: nothing sound to list
            spool.close()
            raise ArchiveError(f"cannot decompress ({exc.strerror or exc})", path) from None
        return spool, f"truncated or corrupt {kind} stream ({exc})"
    except _STREAM_ERRORS as exc:
        return spool, f"truncated or corrupt {kind} stream ({exc})"
    return spool, None


def _open_archive(path: str) -> _Zip | _Tar:
    if path.lower().endswith(".zip"):
        return _Zip(path)
    with open(path, "rb") as handle:
        magic = handle.read(6)
    for prefix, kind, opener in _COMPRESSED_TAR_MAGIC:
        if magic.startswith(prefix):
            return _Tar(path, *_decompressed_tar(path, kind, opener))
    return _Tar(path, open(path, "rb"))


def _archive(path: str) -> _Zip | _Tar:
    """The opened archive at ``path``, cached per process by (real path, mtime, size)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ArchiveError(f"cannot open the archive ({exc.strerror or exc})", path) from None
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        if key not in _open:
            if len(_open) >= _MAX_OPEN:
                del _open[next(iter(_open))]
            _open[key] = _open_archive(path)
        return _open[key]


def archive_members(archive: str) -> ArchiveListing:
    """The regular-file members of ``archive`` with names usable in ``ARCHIVE!/MEMBER``.

    A leading ``./`` is dropped from names (``tar -cf x.tar .``). Members named with ``..``,
    an absolute path or an unnormalised path are left out with a warning (they are not
    mammograms of an ordinary export). Directories and links are never members.
    Raises:
        ArchiveError: the archive cannot be opened at all.
    """
    opened = _archive(archive)
    names = []
    for name in opened.names():
        if _safe_name(name):
            names.append(name)
        else:
            logger.warning("%s: member name %r left out (not a plain relative path)", archive, name)
    return ArchiveListing(tuple(names), opened.error)


def read_member(archive: str, member: str, *, head: int | None = None) -> bytes:
    """The bytes of ``member`` of ``archive``: whole (at most :data:`MAX_MEMBER_BYTES`, checked
    against its checksum for zip), or only its first ``head`` bytes.

    Raises:
        ArchiveError: naming ``ARCHIVE!/MEMBER``.
    """
    limit = MAX_MEMBER_BYTES if head is None else head
    return _archive(archive).read(member, limit, head is not None)


def read_batch_input(path: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Mammogram:
    """Read one batch input: a file (:func:`~calcsdk.image.read_mammogram`), an archive
    member named ``ARCHIVE!/MEMBER``, or an archive itself, which is an error that says why its
    listing failed (a batch lists an archive as an input only when its listing failed).

    Raises:
        ImageError subclasses, :class:`~calcsdk.errors.ArchiveError` among them.
    """
    parts = split_member_path(path)
    if parts is not None:
        data = read_member(*parts)
        return read_mammogram_bytes(data, path, max_pixels=max_pixels)
    if is_archive_name(path) and os.path.isfile(path):
        error = archive_members(path).error
        raise ArchiveError(error or "an archive, not an image: its members are the inputs", path)
    return read_mammogram(path, max_pixels=max_pixels)
