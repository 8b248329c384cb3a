"""Exponential moving average of a model's weights (as Scaled-YOLOv4 / YOLOv5 ``ModelEMA``).

After each optimizer step ``ema = d * ema + (1 - d) * weights`` for every floating parameter
and buffer (BatchNorm running statistics included), with ``d = decay * (1 - exp(-updates /
ramp))``: the average follows the fast-changing early weights closely, then settles to
``decay``. Integer buffers (``num_batches_tracked``) are copied. The EMA model is what
validation, checkpoints' ``ema`` entry and the export use.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """EMA of ``model``'s state; ``ema.module`` is a frozen eval-mode copy.

    Args:
        model: the trained model (unwrapped).
        decay: the asymptotic decay in [0, 1).
        ramp: updates over which the decay ramps up (2000 as YOLOv5).
        updates: updates already done (when resuming).
    """

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, ramp: float = 2000.0, updates: int = 0
    ):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay should be in [0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.decay = decay
        self.ramp = ramp
        self.updates = updates

    def current_decay(self) -> float:
        return self.decay * (1.0 - math.exp(-self.updates / self.ramp))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (call after optimizer.step)."""
        self.updates += 1
        d = self.current_decay()
        source = model.state_dict()
        for name, value in self.module.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach(), alpha=1.0 - d)
            else:
                value.copy_(source[name])

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
