"""Several processes, one training run: PyTorch's DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node=N -m pconv_lessons.train …`` starts N processes and sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; ``Distributed.from_environment`` joins them into one process group (NCCL on CUDA, gloo on the CPU)
and gives each process its own GPU (``cuda:LOCAL_RANK``). ``--batch-size`` is per process, as in torchvision's
reference scripts: a step sees ``WORLD_SIZE × batch size`` samples, rank r taking the r-th slice of each step's
block of the (seed, index) sample stream, so the ranks see disjoint samples and resume stays exact.
DDP averages the gradients over the ranks, so a step equals one of a single process with the global batch
(batch norm statistics are per process, as in torchvision's scripts without ``--sync-bn``).
Rank 0 alone writes checkpoints, logs and samples.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: ``rank`` of ``world_size`` (1 = plain single-process training)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device) -> Distributed:
        """Join the process group ``torchrun`` describes in the environment; single-process without it."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world_size, local_rank)

    def device(self, device: torch.device) -> torch.device:
        """This process's device: ``cuda:LOCAL_RANK`` for a CUDA run under torchrun, else ``device``."""
        if self.enabled and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in DistributedDataParallel when several processes train it; else ``module`` itself."""
        if not self.enabled or not any(p.requires_grad for p in module.parameters()):
            return module
        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def mean(self, values: Tensor) -> Tensor:
        """The mean of ``values`` over the ranks (one all-reduce); ``values`` itself in a single process."""
        if not self.enabled:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values / self.world_size

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is true on one of them (a stop request, the time budget)."""
        if not self.enabled:
            return flag
        value = torch.tensor([float(flag)], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def share(self, message: str | None) -> str | None:
        """Rank 0's ``message`` on every rank (rank 0's checks of the run folder reach the others)."""
        if not self.enabled:
            return message
        box = [message]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
