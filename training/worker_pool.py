"""Worker processes for the CPU-bound data steps of training (synthesis, R-CNN samples).

:func:`spawn_pool` is the one way these steps start processes:

* ``spawn``, not ``fork``: the parent may hold torch's and OpenCV's thread pools;
* one OpenCV thread per worker, so N workers use N cores;
* on Linux each worker asks the kernel for SIGTERM when its parent dies, so killing a
  ``calcsdk train``/``synth`` process (``kill PID``, a batch scheduler's timeout) does not leave
  its workers behind, idle or still writing into the run's cache.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent_pid: int) -> None:
    """Linux only (a no-op elsewhere): SIGTERM this process when ``parent_pid`` exits."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not fatal: the worker then only outlives a parent that was killed
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _init_worker(parent_pid: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    _die_with_parent(parent_pid)


def spawn_pool(workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes, set up as the module says.
    Use it as a context manager."""
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(),)
    )


def parallel_map(function: Callable, arguments: Sequence[tuple], workers: int) -> Iterator:
    """``function(*a)`` for each ``a`` of ``arguments``, in order, on ``workers`` processes
    of :func:`spawn_pool`."""
    with spawn_pool(workers) as pool:
        yield from pool.map(function, *zip(*arguments), chunksize=1)
