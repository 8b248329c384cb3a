"""Progress display of a batch run, for the command line only.

A tqdm bar when tqdm is installed (it comes with the ``[train]`` extra, not with the runtime)
and the stream is a terminal; without tqdm on a terminal, one plain line every
``interval_s`` seconds; nothing when the stream is not a terminal or when disabled (``--quiet``).
"""

from __future__ import annotations

import time
from typing import IO, Any

__all__ = ["Progress", "make_progress"]


class Progress:
    """No-op progress (the base of the others)."""

    def update(self, failed: bool = False) -> None:
        """One more file done (``failed`` when it could not be scored)."""

    def close(self) -> None:
        """Finish the display."""


class _TqdmProgress(Progress):
    def __init__(self, total: int, stream: IO[str]):
        from tqdm import tqdm

        self._failed = 0
        self._bar = tqdm(total=total, file=stream, unit="img", dynamic_ncols=True, leave=False)

    def update(self, failed: bool = False) -> None:
        if failed:
            self._failed += 1
            self._bar.set_postfix(failed=self._failed, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


class _LineProgress(Progress):
    def __init__(self, total: int, stream: IO[str], interval_s: float):
        self._total, self._stream, self._interval = total, stream, interval_s
        self._done = self._failed = 0
        self._start = self._last = time.monotonic()

    def update(self, failed: bool = False) -> None:
        self._done += 1
        self._failed += int(failed)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            rate = self._done / max(now - self._start, 1e-9)
            self._stream.write(
                f"{self._done}/{self._total} images ({self._failed} failed, {rate:.2f}/s)\n"
            )
            self._stream.flush()


def make_progress(
    total: int, stream: IO[str], *, enabled: bool = True, interval_s: float = 10.0
) -> Progress:
    """The best progress display for ``stream`` (see the module docstring)."""
    isatty: Any = getattr(stream, "isatty", None)
    if not enabled or total == 0 or not (callable(isatty) and isatty()):
        return Progress()
    try:
        return _TqdmProgress(total, stream)
    except ImportError:
        return _LineProgress(total, stream, interval_s)
