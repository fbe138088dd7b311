"""Masks for a training loop: ``MaskDataset`` (indexable), ``MaskStream`` (endless, split across ``DataLoader``
workers) and ``mask_batches`` (whole batches drawn on a GPU).

Item i is always mask i of ``generate(kind, ·, size, seed)`` on the NumPy path — whatever the number of workers,
the shuffling or a resumption.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from pconv_lessons.masks._common import check_count, check_seed, check_size
from pconv_lessons.masks.draw import check_kind, generate, mask_numpy, masks_of, primitives_numpy

_CPU = torch.device("cpu")


class MaskDataset(Dataset):
    """``length`` masks of one family; item i is mask i of ``generate(kind, length, size, seed)`` (NumPy path), (1, H, W).

    Each item depends only on (kind, size, seed, index), so any number of ``DataLoader`` workers, any
    shuffling and any resumption give the same mask for the same index, and different indices never
    share a random stream.
    """

    def __init__(self, kind: str, size: int | Sequence[int], length: int, seed: int = 0) -> None:
        check_kind(kind)
        self.kind, self.size, self.length = kind, check_size(size), check_count(length)
        self.seed = check_seed(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        if not -self.length <= index < self.length:
            raise IndexError(f"mask index {index} out of range for a data set of {self.length} masks")
        height, width = self.size
        return torch.from_numpy(mask_numpy(self.kind, index % self.length, height, width, self.seed))


class MaskStream(IterableDataset):
    """An endless stream of masks (1, H, W) of one family for a ``DataLoader``; safe with any number of workers.

    Worker w of W yields the masks with indices start + w, start + w + W, start + w + 2W, … of the NumPy
    path under ``seed``: workers never repeat each other's masks, and a given (seed, start, worker count)
    always yields the same sequence. Masks are drawn ``chunk`` at a time for speed.
    """

    def __init__(self, kind: str, size: int | Sequence[int], seed: int = 0, start: int = 0, chunk: int = 64) -> None:
        check_kind(kind)
        self.kind, self.size, self.seed = kind, check_size(size), check_seed(seed)
        self.start, self.chunk = check_count(start), max(1, check_count(chunk))

    def __iter__(self) -> Iterator[Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        height, width = self.size
        index = self.start + worker
        while True:
            indices = index + workers * np.arange(self.chunk)
            primitives = primitives_numpy(self.kind, indices, height, width, self.seed)
            yield from masks_of(primitives, self.chunk, height, width, _CPU)
            index += workers * self.chunk


def mask_batches(
    kind: str,
    batch_size: int,
    size: int | Sequence[int],
    seed: int = 0,
    device: str | torch.device = "cpu",
    start: int = 0,
    backend: str | None = None,
) -> Iterator[Tensor]:
    """Endless batches (batch_size, 1, H, W) drawn directly on ``device``; batch k has its own seed (seed, k).

    For a training loop without ``DataLoader`` workers (e.g. generating masks on the GPU). ``start``
    skips to batch ``start``, so a resumed run continues with the masks it would have seen.
    """
    check_kind(kind)
    batch_size = check_count(batch_size)
    seed = check_seed(seed)
    step = check_count(start)
    while True:
        batch_seed = int(np.random.SeedSequence(seed, spawn_key=(step,)).generate_state(1)[0])
        yield generate(kind, batch_size, size, seed=batch_seed, device=device, backend=backend)
        step += 1
