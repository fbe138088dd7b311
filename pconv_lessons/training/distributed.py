"""Several processes, one training run: PyTorch's DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node=N -m pconv_lessons.train …`` starts N processes and sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; ``Distributed.from_environment`` joins them into one process group (NCCL on CUDA, gloo on the CPU)
and gives each process its own GPU (``cuda:LOCAL_RANK``). ``--batch-size`` is per process, as in torchvision's
reference scripts: a step sees ``WORLD_SIZE × batch size`` samples, rank r taking the r-th slice of each step's
block of the (seed, index) sample stream, so the ranks see disjoint samples and resume stays exact.
DDP averages the gradients over the ranks, so a step equals one of a single process with the global batch
(batch norm statistics are per process, as in torchvision's scripts without ``--sync-bn``).
Rank 0 alone writes checkpoints, logs and samples.

A rank that stops answering (frozen by SIGSTOP, swapped out, its machine gone) would leave the others waiting in a
collective for ever: the process group gets a timeout (``--ddp-timeout``, ``DEFAULT_DDP_TIMEOUT``; longer than
any checkpoint, sample or evaluation rank 0 does while the others wait), and every rank keeps a heartbeat in the
rendezvous store (a counter it bumps each ``HEARTBEAT_SECONDS`` from a thread). When a collective times out on the
gloo backend, ``unresponsive`` reads the counters twice and names the ranks whose heartbeat stopped, as a
``TimeoutError``. (On NCCL, torch's watchdog ends the process at the same timeout with its own message.)
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from pconv_lessons.training.config import DEFAULT_DDP_TIMEOUT


HEARTBEAT_SECONDS = 1.0


class Heartbeat:
    """A thread bumping ``alive/RANK`` in ``store`` every ``interval`` seconds; ``silent_ranks`` finds who stopped."""

    def __init__(self, store: dist.Store, rank: int, world_size: int, interval: float = HEARTBEAT_SECONDS) -> None:
        self.store, self.rank, self.world_size, self.interval = store, rank, world_size, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"pconv-heartbeat-{rank}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self.store.add(f"alive/{self.rank}", 1)
            except Exception:  # the store is gone (rank 0's process ended): nothing left to tell
                return
            self._stop.wait(self.interval)

    def counts(self) -> list[int]:
        return [self.store.add(f"alive/{rank}", 0) for rank in range(self.world_size)]

    def silent_ranks(self) -> list[int]:
        """The ranks whose heartbeat does not move over three intervals (this one excluded)."""
        before = self.counts()
        time.sleep(3 * self.interval)
        after = self.counts()
        return [rank for rank in range(self.world_size) if rank != self.rank and after[rank] == before[rank]]

    def stop(self) -> None:
        self._stop.set()


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: ``rank`` of ``world_size`` (1 = plain single-process training)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout_minutes: float = DEFAULT_DDP_TIMEOUT
    heartbeat: Heartbeat | None = field(default=None, compare=False, repr=False)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device,
                         timeout_minutes: float = DEFAULT_DDP_TIMEOUT) -> Distributed:
        """Join the process group ``torchrun`` describes in the environment; single-process without it.

        Collectives give up after ``timeout_minutes``; the rendezvous store carries the ranks' heartbeats.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        timeout = timedelta(minutes=timeout_minutes)
        store, rank, world_size = next(dist.rendezvous("env://", rank, world_size, timeout=timeout))
        store.set_timeout(timeout)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.PrefixStore("default_pg", store),
                                    rank=rank, world_size=world_size, timeout=timeout)
        heartbeat = Heartbeat(dist.PrefixStore("pconv_lessons", store), rank, world_size)
        return cls(rank, world_size, local_rank, timeout_minutes, heartbeat)

    @staticmethod
    def is_timeout(error: BaseException) -> bool:
        """Whether ``error`` is a collective (or the store) giving up on the other ranks."""
        return isinstance(error, (RuntimeError, TimeoutError)) and "timed out" in str(error).lower()

    def unresponsive(self, error: BaseException, step: int) -> TimeoutError:
        """The error to raise when a collective timed out: which rank(s) stopped answering, and what to do."""
        silent = self.heartbeat.silent_ranks() if self.heartbeat is not None else []
        who = (f"rank{'s' if len(silent) > 1 else ''} {', '.join(map(str, silent))} of {self.world_size} stopped "
               f"answering (no heartbeat)" if silent else
               f"another rank of {self.world_size} did not reach the same collective (its heartbeat still runs: "
               f"stuck, or training a different step)")
        return TimeoutError(
            f"rank {self.rank} waited --ddp-timeout {self.timeout_minutes:g} min at step {step}: {who}. A frozen "
            f"(SIGSTOP), swapped-out or crashed process, or a lost machine; resume from the last checkpoint "
            f"with --resume. ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        )

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
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
