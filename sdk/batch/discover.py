"""Which files a batch run scores: explicit files, folders (recursive) and glob patterns.

Rules, in order, for each input string:

1. A glob pattern (it contains ``*``, ``?`` or ``[``) is expanded with ``**`` meaning any depth;
   matched folders are scanned as in rule 3, matched files are kept when they look like images.
2. An existing file is kept as given, whatever its name: the user asked for it, and if it is not
   a mammogram the reader says why (the batch logs it as a failure).
3. An existing folder is scanned recursively; hidden entries (names starting with ``.``) are
   skipped. A file is taken when its suffix is an image suffix (:data:`IMAGE_SUFFIXES`) or when
   it has no suffix and carries the DICOM magic ``DICM`` at byte 128 (PACS exports such as
   ``IM-0001``).
4. A path that does not exist is kept, so that the batch reports it as a failure (a typo must
   not pass silently); a glob that matches nothing is logged as a warning.

The result is de-duplicated by real path (first spelling wins) and sorted by the spelling, so
runs are reproducible. Paths under ``exclude`` (the run's own outputs, e.g. an overlay folder
inside the input folder) are left out.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable, Iterator, Sequence

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


def is_image_candidate(path: str) -> bool:
    """True for a file with an image suffix, or without suffix but with the DICOM magic."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    return suffix == "" and _has_dicom_magic(path)


def _scan_folder(folder: str) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.startswith(".") and os.path.isfile(path) and is_image_candidate(path):
                yield path


def _expand(item: str) -> Iterator[str]:
    if _GLOB_CHARS & set(item):
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            logger.warning("%s: the pattern matches no file", item)
        for match in matches:
            if os.path.isdir(match):
                yield from _scan_folder(match)
            elif os.path.isfile(match) and is_image_candidate(match):
                yield match
    elif os.path.isdir(item):
        yield from _scan_folder(item)
    else:
        yield item  # an existing file, or a missing path the batch reports as a failure


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
        Paths as spelled by the expansion (relative stays relative), unique by real path,
        sorted. May be empty.
    """
    excluded = [os.path.realpath(os.fspath(path)) for path in exclude]
    seen: dict[str, str] = {}
    for item in inputs:
        for path in _expand(os.fspath(item)):
            real = os.path.realpath(path)
            if real in seen or _is_under(real, excluded):
                continue
            seen[real] = path
    return sorted(seen.values())


def overlay_name(path: str, root: str) -> str:
    """A flat, unique file name for ``path``'s overlay: its path relative to ``root`` with the
    separators replaced by ``__``, plus ``.png`` (``a/b/IM-1.dcm`` -> ``a__b__IM-1.dcm.png``)."""
    relative = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    if relative.startswith(os.pardir):
        relative = os.path.realpath(path).lstrip(os.sep)
    return relative.replace(os.sep, "__") + ".png"


def common_root(paths: Sequence[str]) -> str:
    """The deepest folder holding every path (the current folder for an empty list)."""
    if not paths:
        return os.getcwd()
    parents = [os.path.dirname(os.path.realpath(path)) for path in paths]
    return os.path.commonpath(parents)
