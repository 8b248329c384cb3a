"""The little that DistributedDataParallel training needs: process group, device, reductions.

One process per device, started by ``torchrun`` (``python -m torch.distributed.run``), which
sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. Without those variables everything here is a
single-process no-op, so the same training code runs either way.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` and the device it trains on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_process_group: bool  # initialised here, so torn down here

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and logs."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name} should be an integer, got {value!r}"
        ) from None


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """``None`` -> ``cuda:<local_rank>`` when CUDA is present, else ``cpu``.

    A requested CUDA device that is not present raises ``ValueError``; it is never replaced.
    """
    if device is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(resolved)!r} requested, but CUDA is not available here")
        if resolved.index is None:
            resolved = torch.device(f"cuda:{local_rank}")
    return resolved


def setup_distributed(device: str | torch.device | None = None) -> DistributedContext:
    """Read torchrun's environment and join (or create) the process group when WORLD_SIZE > 1.

    The backend is ``nccl`` when training on CUDA and ``gloo`` on CPU.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        owns = True
        logger.info(
            "rank %d/%d joined the %s process group on %s", rank, world_size, backend, resolved
        )
    return DistributedContext(rank, world_size, local_rank, resolved, owns)


def teardown_distributed(context: DistributedContext) -> None:
    """Destroy the process group if :func:`setup_distributed` created it.

    All ranks meet at a barrier first: a rank that tears gloo down while its peer is still in a
    collective (or still connected to the store rank 0 hosts) was seen to abort here with
    "terminate called without an active exception" under load.

    Garbage is collected before and after the destruction. A DistributedDataParallel wrapper
    sits in reference cycles, and its reducer holds the process group. Left to the final
    collection at interpreter exit, the group's gloo worker threads were still running while
    Python shut down. One of them was unwound mid-call and aborted the process, about one
    exit in 25 on 2 cores. A core dump showed ``ProcessGroupGloo::runLoop`` alive in
    ``Py_FinalizeEx``.
    """
    if context.owns_process_group and dist.is_initialized():
        if context.is_distributed:
            dist.barrier()
        gc.collect()
        dist.destroy_process_group()
        gc.collect()


def barrier(context: DistributedContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if context.is_distributed:
        dist.barrier()


def sum_over_ranks(values: list[float], context: DistributedContext) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64; identity in a single process)."""
    if not context.is_distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def parameter_digest(model: nn.Module) -> str:
    """sha256 over every parameter's bytes, in ``named_parameters`` order."""
    digest = hashlib.sha256()
    for name, parameter in model.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def gather_parameter_digests(model: nn.Module, context: DistributedContext) -> list[str]:
    """Every rank's :func:`parameter_digest`, indexed by rank (one entry in a single process)."""
    mine = parameter_digest(model)
    if not context.is_distributed:
        return [mine]
    digests: list[str | None] = [None] * context.world_size
    dist.all_gather_object(digests, mine)
    return [str(d) for d in digests]
