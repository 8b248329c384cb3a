"""Which files a batch run scores: explicit files, folders (recursive) and glob patterns.

Rules, in order, for each input string:

1. A glob pattern (it contains ``*``, ``?`` or ``[``) is expanded with ``**`` meaning any depth;
   matched folders are scanned as in rule 4, matched archives opened as in rule 3, matched
   files kept when they look like images.
2. An existing file is kept as given, whatever its name: the user asked for it, and if it is not
   a mammogram the reader says why (the batch logs it as a failure).
3. An archive (a file named ``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2`` or
   ``.tar.xz``; :mod:`calcsdk.batch.archives`), given or found in a folder, stands for its image
   members, chosen as files are in a folder, each named ``ARCHIVE!/MEMBER``. An archive that
   cannot be listed whole is kept as an input too, so that the batch reports why; archives
   inside archives are not opened.
4. An existing folder is scanned recursively; hidden entries (names starting with ``.``) are
   skipped. A file is taken when its suffix is an image suffix (:data:`IMAGE_SUFFIXES`) or when
   it has no suffix and carries the DICOM magic ``DICM`` at byte 128 (PACS exports such as
   ``IM-0001``). A ``DICOMDIR`` (the index of a DICOM media export, no image) is skipped.
5. A path that does not exist is kept, so that the batch reports it as a failure (a typo must
   not pass silently); a glob that matches nothing is logged as a warning.

The result is de-duplicated by identity (:func:`~calcsdk.batch.archives.input_key`; first
spelling wins) and sorted by the spelling, so runs are reproducible. Paths under ``exclude``
(the run's own outputs, e.g. an overlay folder inside the input folder) are left out.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Iterator, Sequence

from calcsdk.batch.archives import (
    archive_members,
    input_key,
    is_archive_name,
    member_path,
    read_member,
    split_member_path,
)
from calcsdk.errors import ArchiveError

__all__ = [
    "IMAGE_SUFFIXES",
    "common_root",
    "discover_images",
    "is_image_candidate",
    "overlay_name",
]

logger = logging.getLogger(__name__)

#: File suffixes (lower case) taken from folders and globs.
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".dcm",
    ".dicom",
    ".png",
    ".tif",
    ".tiff",
    ".pgm",
    ".jpg",
    ".jpeg",
)
_GLOB_CHARS = frozenset("*?[")


def _has_dicom_magic(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _taken_by_name(name: str) -> bool | None:
    """True: an image suffix; False: never an image; None: only if it has the DICOM magic."""
    base = name.rsplit("/", 1)[-1].rsplit(os.sep, 1)[-1]
    if base.upper() == "DICOMDIR":
        return False
    suffix = os.path.splitext(base)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    return None if suffix == "" else False


def is_image_candidate(path: str) -> bool:
    """True for a file with an image suffix, or without suffix but with the DICOM magic
    (never for a ``DICOMDIR``)."""
    taken = _taken_by_name(path)
    return taken if taken is not None else _has_dicom_magic(path)


def _member_candidate(archive: str, member: str) -> bool:
    if any(part.startswith(".") or part == "__MACOSX" for part in member.split("/")):
        return False  # hidden files and the AppleDouble folder of zips made on macOS
    taken = _taken_by_name(member)
    if taken is not None:
        return taken
    try:
        return read_member(archive, member, head=132)[128:132] == b"DICM"
    except ArchiveError:
        return True  # unreadable: keep it, so that the batch reports why


def _archive_inputs(archive: str) -> Iterator[str]:
    try:
        listing = archive_members(archive)
    except ArchiveError as exc:
        logger.warning("%s", exc)
        yield archive  # the batch reads it and reports why it cannot be listed
        return
    members = [m for m in listing.members if _member_candidate(archive, m)]
    if not members and listing.error is None:
        logger.warning("%s: the archive holds no image file", archive)
    yield from (member_path(archive, member) for member in members)
    if listing.error is not None:
        logger.warning("%s: %s", archive, listing.error)
        yield archive


def _scan_folder(folder: str) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            if is_archive_name(name):
                yield from _archive_inputs(path)
            elif is_image_candidate(path):
                yield path


def _expand(item: str) -> Iterator[str]:
    if _GLOB_CHARS & set(item):
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            logger.warning("%s: the pattern matches no file", item)
        for match in matches:
            if os.path.isdir(match):
                yield from _scan_folder(match)
            elif os.path.isfile(match) and is_archive_name(match):
                yield from _archive_inputs(match)
            elif os.path.isfile(match) and is_image_candidate(match):
                yield match
    elif os.path.isdir(item):
        yield from _scan_folder(item)
    elif os.path.isfile(item) and is_archive_name(item):
        yield from _archive_inputs(item)
    else:
        yield item  # an existing file or member, or a missing path the batch reports


def _is_under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def discover_images(
    inputs: Iterable[str | os.PathLike], exclude: Iterable[str | os.PathLike] = ()
) -> list[str]:
    """The image files named by ``inputs`` (files, folders, globs; see the module docstring).

    Args:
        inputs: paths or glob patterns as the user typed them.
        exclude: files or folders whose content is never returned (the run's outputs).
    Returns:
        Paths (and ``ARCHIVE!/MEMBER`` names) as spelled by the expansion (relative stays
        relative), unique by :func:`~calcsdk.batch.archives.input_key`, sorted. May be empty.
    """
    excluded = [os.path.realpath(os.fspath(path)) for path in exclude]
    seen: dict[str, str] = {}
    for item in inputs:
        for path in _expand(os.fspath(item)):
            key = input_key(path)
            if key in seen or _is_under(key, excluded):
                continue
            seen[key] = path
    return sorted(seen.values())


def _file_of(path: str) -> str:
    """The file holding ``path``: its archive for an ``ARCHIVE!/MEMBER`` name, else itself."""
    parts = split_member_path(path)
    return path if parts is None else parts[0]


def overlay_name(path: str, root: str) -> str:
    """A flat, unique file name for ``path``'s overlay: its path relative to ``root`` with the
    separators replaced by ``__``, plus ``.png`` (``a/b/IM-1.dcm`` -> ``a__b__IM-1.dcm.png``;
    ``a/x.zip!/c/IM-1.dcm`` -> ``a__x.zip!__c__IM-1.dcm.png``)."""
    parts = split_member_path(path)
    file, member = (path, None) if parts is None else parts
    real = os.path.realpath(file)
    relative = os.path.relpath(real, os.path.realpath(root))
    if relative.startswith(os.pardir):
        relative = real.lstrip(os.sep)
    if member is not None:
        relative = member_path(relative, member)
    return relative.replace(os.sep, "__").replace("/", "__") + ".png"


def common_root(paths: Sequence[str]) -> str:
    """The deepest folder holding every path, or every member's archive (the current folder for
    an empty list)."""
    if not paths:
        return os.getcwd()
    parents = [os.path.dirname(os.path.realpath(_file_of(path))) for path in paths]
    return os.path.commonpath(parents)
