"""Training's worker processes: spawned, one OpenCV thread each, gone when their parent is."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from calcsdk.training.worker_pool import parallel_map

PARENT = """
import os, time
from calcsdk.training.worker_pool import spawn_pool
if __name__ == "__main__":
    pool = spawn_pool(1)
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(120)
"""


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (nobody may reap an orphan here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _cv2_threads(_: int) -> int:
    import cv2

    return cv2.getNumThreads()


def test_parallel_map_keeps_order_with_one_opencv_thread_per_worker():
    assert list(parallel_map(pow, [(2, 3), (3, 2), (5, 1)], workers=2)) == [8, 9, 5]
    assert set(parallel_map(_cv2_threads, [(0,), (1,)], workers=2)) == {1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _running(worker)
    finally:
        parent.kill()  # SIGKILL: the parent gets no chance to shut its pool down
        parent.wait()
    deadline = time.monotonic() + 20
    while _running(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(worker)
