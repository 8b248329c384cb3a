"""Bit-for-bit reproducible OpenCV calls.

Measured here (OpenCV 5.0, 2 Zen4 cores): with Intel IPP enabled, some OpenCV filters return
results that depend on the memory alignment of their buffers, so the same image gave 99
EdgeBoxes proposals in one call and 101 in the next within one process. With IPP off, every
call was identical. ``cv2.ipp.setUseIPP`` is thread-local, so :func:`without_ipp` turns IPP off
for the calling thread for the duration of one call and restores it afterwards; it never
changes OpenCV's behaviour for the caller's own code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import cv2

F = TypeVar("F", bound=Callable)


def without_ipp(function: F) -> F:
    """Decorator: run ``function`` with OpenCV's IPP dispatch off in the calling thread."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        previous = cv2.ipp.useIPP()
        if previous:
            cv2.ipp.setUseIPP(False)
        try:
            return function(*args, **kwargs)
        finally:
            if previous:
                cv2.ipp.setUseIPP(True)

    return wrapper  # type: ignore[return-value]
