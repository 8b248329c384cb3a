"""Foreground-biased epoch order for R-CNN fine-tuning (Girshick et al. 2014, section 2.3).

R-CNN fine-tunes on warped proposals where background outnumbers objects many times over, and
"biases the sampling towards positive windows because they are extremely rare compared to
background": each mini-batch of 128 holds 32 foreground and 96 background windows. Our R-CNN
samples are ~14 background to 1 malignant, and with uniform shuffling the fine-tuned AlexNet
called 71% of the malignant ground-truth crops it was trained on "normal" (BENCHMARKS.md,
"Foreground-biased fine-tuning").

:func:`epoch_order` makes one epoch's order with a fixed foreground share: foreground rows are
drawn with replacement (they are few), background rows without replacement while they last.
The epoch keeps the dataset's length, so "epochs" keep their meaning for the configs.
"""

from __future__ import annotations

import numpy as np


def epoch_order(
    labels: np.ndarray,
    foreground_fraction: float,
    background_class: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One epoch of row indices with ``foreground_fraction`` of them foreground.

    Args:
        labels: (N,) int class of each training row; ``background_class`` marks background,
            every other class is foreground.
        foreground_fraction: share of the epoch's N draws taken from the foreground rows, in
            (0, 1). R-CNN: 32 / 128 = 0.25.
        background_class: the background label (the ROI classifier's ``normal``, 2).
        rng: seeded generator; the same state gives the same order.
    Returns:
        (N,) int64 indices into ``labels``, shuffled. Foreground rows appear about
        ``foreground_fraction`` * N times in all (with repeats when they are fewer); background
        rows fill the rest, each at most once while enough exist. With no foreground or no
        background rows the order is a plain permutation.
    """
    if not 0.0 < foreground_fraction < 1.0:
        raise ValueError(f"foreground_fraction should be in (0, 1), got {foreground_fraction}")
    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    foreground = np.flatnonzero(labels != background_class)
    background = np.flatnonzero(labels == background_class)
    if len(foreground) == 0 or len(background) == 0:
        return rng.permutation(n).astype(np.int64)
    n_fg = round(foreground_fraction * n)
    n_fg = min(max(n_fg, 1), n - 1)
    fg = _draw(foreground, n_fg, rng)
    bg = _draw(background, n - n_fg, rng)
    return rng.permutation(np.concatenate([fg, bg])).astype(np.int64)


def _draw(rows: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` of ``rows``: whole shuffled passes over them, then a partial one (no repeats
    until every row has been drawn once)."""
    passes, rest = divmod(count, len(rows))
    parts = [rng.permutation(rows) for _ in range(passes)]
    parts.append(rng.permutation(rows)[:rest])
    return np.concatenate(parts)
