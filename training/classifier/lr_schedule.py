"""Learning-rate schedules of the ROI classifier, as a pure function of the optimizer step.

The paper trains with MATLAB's ``sgdm`` at a constant rate (``constant``, the default). Short
schedules, forced when 2 CPU cores stand in for the paper's GPU, gain from a cosine decay to
zero over the configured epochs (``cosine``), optionally after a linear warmup. The factor
depends only on the global step, so a resumed run continues the same curve exactly.
"""

from __future__ import annotations

import math

LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Multiplier of the base learning rate for optimizer step ``step``.

    Args:
        schedule: one of :data:`LR_SCHEDULES`.
        step: 0-based global step (``epoch * steps_per_epoch + step in epoch``).
        total_steps: steps in the whole schedule (``epochs * steps_per_epoch``), > 0.
        warmup_steps: the first steps rise linearly to the base rate: ``(step + 1) /
            warmup_steps``; 0 = no warmup.
    Returns:
        A factor in (0, 1]; ``constant`` gives 1 after warmup, ``cosine`` falls from 1 to
        ``0.5 * (1 + cos(pi * (T - 1) / T))`` (just above 0) at the last step.
    Raises:
        ValueError: unknown schedule, or step counts out of range.
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {LR_SCHEDULES}")
    if total_steps < 1 or step < 0 or warmup_steps < 0:
        raise ValueError(
            f"need total_steps >= 1, step >= 0, warmup_steps >= 0; got {total_steps}, {step}, "
            f"{warmup_steps}"
        )
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
