"""ROI classifier inputs and inference: validate ROIs and labels, predict probabilities + fc7."""

from __future__ import annotations

import numpy as np
import torch

from calcsdk.training.models.alexnet import INPUT_SIZE, AlexNet


def as_roi_tensor(x: np.ndarray | torch.Tensor, in_channels: int, name: str = "x") -> torch.Tensor:
    """Validate ROIs; return ``(N, in_channels, 227, 227)`` (shares memory when it can).

    Accepts floats in [0, 1] shaped ``(N, 227, 227)`` (one channel) or
    ``(N, in_channels, 227, 227)``: warped 227x227 crops, pixel frame of the crop. float16
    stays float16 (a paper-scale R-CNN's ~90k crops take 9 GB so, 18 GB as float32); every
    other float becomes float32. Consumers cast each batch with :func:`as_batch`.

    Raises:
        ValueError: not floating point, another shape, or values that are not finite in [0, 1].
    """
    x = torch.as_tensor(x)
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} should be floating point in [0, 1], got dtype {x.dtype}")
    if x.dim() == 3 and in_channels == 1:
        x = x.unsqueeze(1)
    if x.dim() != 4 or tuple(x.shape[1:]) != (in_channels, INPUT_SIZE, INPUT_SIZE):
        accepted = f"(N, {in_channels}, {INPUT_SIZE}, {INPUT_SIZE})"
        if in_channels == 1:
            accepted += f" or (N, {INPUT_SIZE}, {INPUT_SIZE})"
        raise ValueError(f"{name} should have shape {accepted}, got {tuple(x.shape)}")
    if x.dtype != torch.float16:
        x = x.to(torch.float32)
    for start in range(0, len(x), 4096):  # in chunks: no full-size temporaries
        chunk = x[start : start + 4096]
        if not (torch.isfinite(chunk).all() and chunk.min() >= 0 and chunk.max() <= 1):
            raise ValueError(f"{name} should hold finite intensities in [0, 1]")
    return x


def as_batch(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of :func:`as_roi_tensor` ROIs as float32 on ``device`` (the networks' input)."""
    return x.to(device=device, dtype=torch.float32)


def as_label_tensor(
    y: np.ndarray | torch.Tensor, count: int, num_classes: int, name: str = "y"
) -> torch.Tensor:
    """Validate class labels; return int64 ``(count,)``.

    Raises:
        ValueError: not integer, another shape, or labels outside ``[0, num_classes)``.
    """
    y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"{name} should hold integer labels, got dtype {y.dtype}")
    if y.dim() != 1 or len(y) != count:
        raise ValueError(f"{name} should have shape ({count},), got {tuple(y.shape)}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{name} should hold labels in [0, {num_classes}), got {int(y.min())}..{int(y.max())}"
        )
    return y.to(torch.int64)


def predict(
    model: AlexNet, x: np.ndarray | torch.Tensor, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and fc7 features of ROIs, in eval mode, on the model's device.

    Args:
        model: a trained :class:`AlexNet` (its train/eval mode is restored afterwards).
        x: float ROIs in [0, 1], ``(N, 227, 227)`` or ``(N, in_channels, 227, 227)``.
        batch_size: ROIs per forward pass.
    Returns:
        ``probs`` float32 ``(N, num_classes)`` (softmax; rows sum to 1; malignant, benign,
        normal) and ``fc7`` float32 ``(N, fc7_dim)`` (after fc7's ReLU: the SVM's input).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size should be >= 1, got {batch_size}")
    x = as_roi_tensor(x, model.config.in_channels)
    device = next(model.parameters()).device
    probs = [torch.zeros(0, model.config.num_classes)]
    features = [torch.zeros(0, model.fc7_dim)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits, fc7 = model.logits_and_fc7(as_batch(x[start : start + batch_size], device))
                probs.append(torch.softmax(logits, dim=1).cpu())
                features.append(fc7.cpu())
    finally:
        model.train(was_training)
    return torch.cat(probs).numpy(), torch.cat(features).numpy()
