"""What every mask family shares: input checks, the per-mask NumPy random stream, the size rule, batched torch draws.

Primitives (see :mod:`pconv_lessons.raster`): capsules ``[ax, ay, bx, by, r]`` — thick segments with round
caps — and boxes ``[x0, y0, x1, y1]``; flat arrays carry the mask index in front.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pconv_lessons import validation

TWO_PI = 2.0 * math.pi
BACKENDS: tuple[str, ...] = ("numpy", "torch")


def check_size(size: int | Sequence[int]) -> tuple[int, int]:
    return validation.check_size(size, "size")  # an int (also NumPy or a 0-d tensor) or a pair (H, W); 32.0 is an error


def check_count(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n (the number of masks) must be an int ≥ 0, got {n!r}")
    return int(n)


TORCH_SEEDS = 1 << 64  # torch.Generator.manual_seed takes a 64-bit seed


def check_seed(seed: int | None, backend: str = "numpy") -> int:
    """``seed`` as an int ≥ 0 (None: a fresh random one); below 2⁶⁴ for ``backend="torch"``."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (1 << 63))
    _check_stream_number(seed, "seed", "None or ")
    if backend == "torch" and seed >= TORCH_SEEDS:
        raise ValueError(f"seed must be below 2**64 with backend='torch' (torch.Generator takes a 64-bit seed), "
                         f"got {seed}; use backend='numpy' for larger seeds")
    return int(seed)


def pick_backend(backend: str | None, device: torch.device) -> str:
    """NumPy on a CPU and torch elsewhere unless asked; NumPy masks are moved to ``device`` after drawing."""
    if backend is None:
        return "torch" if device.type != "cpu" else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)} (or None for the device's default)")
    return backend


def _check_stream_number(value: object, name: str, alternative: str = "") -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be {alternative}an int ≥ 0, got {value!r}")


# Mask i's stream starts i·JUMP draws into the seed's stream (mod 2¹²⁸): NumPy's own jump (golden ratio · 2¹²⁸, what
# ``PCG64.jumped`` uses). A power-of-two stride would leave the states of neighbouring masks equal in their low bits.
STREAM_JUMP = 0x9E3779B97F4A7C15F39CC0605CEDC835


@functools.lru_cache(maxsize=64)
def _seed_state(seed: int) -> dict:
    return np.random.PCG64DXSM(seed).state


def mask_rng(seed: int, index: int, bit_generator: np.random.PCG64DXSM | None = None) -> np.random.Generator:
    """The NumPy random stream of mask ``index`` ≥ 0 under base ``seed``.

    PCG64DXSM seeded with ``seed`` and advanced by index · ``STREAM_JUMP`` draws: the starts of the first N
    indices lie at least ~2¹²⁸ / N draws apart on one stream (a mask draws a few hundred), so masks never share
    random numbers. Setting a state and advancing costs ~2 µs, a new bit generator ~9 µs (as much as drawing a
    mask of boxes): pass ``bit_generator`` to rewind and reuse one (whatever it was drawing before is lost).
    """
    _check_stream_number(seed, "seed")
    _check_stream_number(index, "index")
    bit_generator = np.random.PCG64DXSM() if bit_generator is None else bit_generator
    bit_generator.state = _seed_state(int(seed))
    bit_generator.advance(index * STREAM_JUMP % (1 << 128))
    return np.random.Generator(bit_generator)


def chain_capsules_np(xs: np.ndarray, ys: np.ndarray, radius: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Capsules joining consecutive vertices (strokes, V+1) of each stroke, keeping segments marked valid (strokes, V)."""
    caps = np.stack([xs[:, :-1], ys[:, :-1], xs[:, 1:], ys[:, 1:], np.broadcast_to(radius, valid.shape)], axis=-1)
    return caps[valid]


def no_primitives_np() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 5)), np.zeros((0, 4))


class TorchDraw:
    """Random draws for a batch of n masks from one generator, on one device (float32 coordinates)."""

    def __init__(self, n: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.generator, self.device = n, generator, device

    def uniform(self, *shape: int, low=0.0, high=1.0) -> Tensor:
        u = torch.rand((self.n, *shape), generator=self.generator, device=self.device)
        return low + (high - low) * u

    def integers(self, low, high, *shape: int) -> Tensor:
        """Integers in [low, high) (bounds may be tensors broadcasting to (n, *shape)), as float32."""
        return torch.clamp(torch.floor(self.uniform(*shape, low=low, high=high)), max=high - 1)

    def normal(self, *shape: int, mean=0.0, std=1.0) -> Tensor:
        return mean + std * torch.randn((self.n, *shape), generator=self.generator, device=self.device)

    def flat(self, primitives: Tensor, valid: Tensor) -> Tensor:
        """(n, ..., P) primitives → (K, P + 1) rows of the valid ones, mask index first."""
        index = torch.arange(self.n, device=self.device, dtype=primitives.dtype)
        index = index.view(-1, *([1] * (primitives.dim() - 1))).expand(*primitives.shape[:-1], 1)
        return torch.cat([index, primitives], dim=-1)[valid]

    def no_boxes(self) -> Tensor:
        return torch.zeros((0, 5), device=self.device)

    def no_capsules(self) -> Tensor:
        return torch.zeros((0, 6), device=self.device)


def chain_capsules_torch(xs: Tensor, ys: Tensor, radius: Tensor) -> Tensor:
    """(n, S, V+1) vertices and (n, S, V) radii → (n, S, V, 5) capsules."""
    return torch.stack([xs[..., :-1], ys[..., :-1], xs[..., 1:], ys[..., 1:], radius.expand(xs[..., 1:].shape)], dim=-1)
