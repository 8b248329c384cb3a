"""Crash-safe file primitives for batch outputs.

* :class:`DurableLog` appends JSON lines and ``fsync``\\ s after each one, so a line that was
  reported written survives a kill or a power cut. A kill *during* a write can leave a torn last
  line; :func:`read_json_lines` drops it (and can cut it off the file) when the log is reopened.
* :func:`atomic_write` writes a whole file through a temporary file in the same folder, then
  ``os.replace`` (atomic on POSIX and Windows): readers see the old file or the new one, never a
  mix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

from calcsdk.errors import CalcSdkError

__all__ = ["DurableLog", "atomic_write", "atomic_write_bytes", "read_json_lines"]

logger = logging.getLogger(__name__)


def _fsync_folder(folder: str) -> None:
    """Persist a rename in ``folder`` (POSIX; a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_replace(path: str | os.PathLike, mode: str, write: Callable[[IO], None]) -> None:
    """Write a temporary file beside ``path`` (opened with ``mode``), flush and fsync it, rename
    it over ``path`` and fsync the folder; on any error ``path`` is untouched and the temporary
    file removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=folder)
    try:
        text = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
        with os.fdopen(fd, mode, **text) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[str]], None]) -> None:
    """Create or replace the text file ``path`` with what ``write(handle)`` writes, atomically.

    The content goes to a temporary file beside ``path``, is flushed and fsynced, then renamed
    over ``path``. If ``write`` raises, ``path`` is left untouched and the temporary file removed.
    """
    _atomic_replace(path, "w", write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Create or replace the binary file ``path`` with ``data``, atomically (as
    :func:`atomic_write`)."""
    _atomic_replace(path, "wb", lambda handle: handle.write(data))


def read_json_lines(path: str | os.PathLike, *, repair: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, in order.

    A last line without its newline is a write torn by a kill: it is ignored and, with
    ``repair=True``, cut off the file. Any other undecodable line raises :class:`CalcSdkError`
    naming the file and the line.
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        logger.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - complete)
        if repair:
            with open(path, "r+b") as handle:
                handle.truncate(complete)
                handle.flush()
                os.fsync(handle.fileno())
    records = []
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise CalcSdkError(f"line {number} is not JSON ({exc})", path) from None
        if not isinstance(record, dict):
            raise CalcSdkError(f"line {number} is not a JSON object", path)
        records.append(record)
    return records


class DurableLog:
    """An append-only JSON-lines file; each :meth:`append` is on disk when it returns.

    Args:
        path: the file.
        truncate: start empty (``True``) or append to what is there (``False``).
    """

    def __init__(self, path: str | os.PathLike, *, truncate: bool):
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        self._handle: IO[str] | None = open(
            self.path, "w" if truncate else "a", encoding="utf-8", newline="\n"
        )
        if truncate:
            _fsync_folder(folder)

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line, flush and fsync."""
        if self._handle is None:
            raise CalcSdkError("the log is closed", self.path)
        self._handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> DurableLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
