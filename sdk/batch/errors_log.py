"""The errors file of a batch run: one JSON line per file that could not be scored.

Each line is ``{"file": <path as listed>, "error": <exception class>, "message": <reason>}``,
written and fsynced as soon as the failure happens, so the file is complete up to a kill.
A new run (``--resume`` included) starts the file afresh: resumed runs retry every file that
failed before, so the file lists exactly the files still not scored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from calcsdk.batch.durable import DurableLog, read_json_lines
from calcsdk.errors import CalcSdkError

__all__ = ["ErrorsLog", "FileFailure", "failure_from_exception", "read_errors"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileFailure:
    """Why one file was not scored."""

    file: str
    error: str  # exception class name, e.g. "CorruptImageError"
    message: str  # the reason, without the file name

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "error": self.error, "message": self.message}


def failure_from_exception(file: str, exc: BaseException) -> FileFailure:
    """A :class:`FileFailure` for ``exc`` raised while scoring ``file``.

    For calcsdk errors the message is the reason alone (the file is its own column); for other
    exceptions ``str(exc)`` (or the class name when that is empty).
    """
    message = exc.reason if isinstance(exc, CalcSdkError) else str(exc)
    return FileFailure(str(file), type(exc).__name__, message or type(exc).__name__)


class ErrorsLog:
    """Collects failures; with a ``path`` each one is appended durably to that file.

    ``path=None`` keeps failures in memory only (output to stdout).
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else os.fspath(path)
        self.failures: list[FileFailure] = []
        self._log = None if path is None else DurableLog(path, truncate=True)

    def record(self, failure: FileFailure) -> None:
        self.failures.append(failure)
        logger.info("%s: skipped (%s: %s)", failure.file, failure.error, failure.message)
        if self._log is not None:
            self._log.append(failure.to_dict())

    def __len__(self) -> int:
        return len(self.failures)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def read_errors(path: str | os.PathLike) -> list[FileFailure]:
    """The failures listed in an errors file (a torn last line is ignored)."""
    return [
        FileFailure(str(r.get("file")), str(r.get("error")), str(r.get("message")))
        for r in read_json_lines(path)
    ]
