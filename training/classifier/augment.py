"""Batch augmentation of mammogram ROIs for classifier training, in torch, seeded.

Suited to calcifications on mammograms: orientation carries no meaning inside an ROI (flips),
the breast is imaged at slightly varying angles (small rotations), and exposure, detector and
processing vary between machines (gamma and contrast jitter). No crops or scaling: a
calcification's size in pixels is a feature when ROIs come at a fixed pixel spacing.

All random numbers come from the ``generator`` argument (a CPU ``torch.Generator``), and the
same amount is drawn for every batch of a given size whatever the settings, so a seed fixes
the result on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from calcsdk.training.classifier.config import ClassifierTrainConfig


def _log_uniform(low: float, high: float, u: torch.Tensor) -> torch.Tensor:
    return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def augment_batch(
    x: torch.Tensor, config: ClassifierTrainConfig, generator: torch.Generator
) -> torch.Tensor:
    """Randomly flip, rotate and intensity-jitter a batch of ROIs (a new tensor).

    Args:
        x: float ``(N, C, H, W)`` ROIs, intensities in [0, 1], on any device.
        config: ``flip_probability``, ``max_rotation_degrees`` (rotation about the ROI centre,
            uniform in +-max, reflection at the borders), ``gamma_range`` (``x ** gamma``,
            log-uniform) and ``contrast_range`` (scale about each image's mean, log-uniform).
        generator: CPU generator; 5 random numbers per ROI are drawn from it.
    Returns:
        float ``(N, C, H, W)`` on ``x``'s device, clipped to [0, 1].
    """
    if x.dim() != 4 or not torch.is_floating_point(x):
        raise ValueError(
            f"x should be a floating (N, C, H, W) tensor, got {x.dtype} {tuple(x.shape)}"
        )
    n = x.shape[0]
    u = torch.rand(n, 5, generator=generator).to(device=x.device, dtype=x.dtype)
    if n == 0:
        return x.clone()
    as_image = (n, 1, 1, 1)

    # 1. Flips, left-right and up-down independently.
    flip_lr = (u[:, 0] < config.flip_probability).view(as_image)
    flip_ud = (u[:, 1] < config.flip_probability).view(as_image)
    x = torch.where(flip_lr, x.flip(-1), x)
    x = torch.where(flip_ud, x.flip(-2), x)

    # 2. Rotation about the centre; theta maps output to input normalised coordinates.
    if config.max_rotation_degrees > 0:
        angle = torch.deg2rad((2 * u[:, 2] - 1) * config.max_rotation_degrees)
        cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
        theta = torch.stack((cos, -sin, zero, sin, cos, zero), dim=1).view(n, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # 3. Gamma, then contrast about each image's mean.
    gamma = _log_uniform(*config.gamma_range, u[:, 3]).view(as_image)
    x = x.clamp(0.0, 1.0) ** gamma
    contrast = _log_uniform(*config.contrast_range, u[:, 4]).view(as_image)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    return x.clamp(0.0, 1.0)
