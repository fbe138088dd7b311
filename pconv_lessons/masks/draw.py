"""Drawing masks of any family: ``generate``, the hole ratio, and the lessons' fixed example mask.

Two paths draw the same distribution. ``backend="numpy"`` draws each mask from its own NumPy stream
(``mask_rng(seed, index)``), so mask *i* does not depend on how many masks are drawn with it, and
rasterises in NumPy. ``backend="torch"`` draws a whole batch at once with one ``torch.Generator`` on the
target device and rasterises there — the fast path on a GPU. By default a CPU device uses NumPy and a
CUDA device uses torch. Each family's module (``shapes``, ``free_form``, ``lama``) holds its two samplers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pconv_lessons.validation import check_batch, check_mask_values
from pconv_lessons.masks._common import TorchDraw, check_count, check_seed, check_size, mask_rng, pick_backend
from pconv_lessons.masks.free_form import free_form_np, free_form_torch
from pconv_lessons.masks.lama import StrokeDraws, lama_np, lama_torch, stroke_capsules_np
from pconv_lessons.masks.shapes import shapes_np, shapes_torch
from pconv_lessons.raster import rasterise_numpy, rasterise_torch

KINDS: tuple[str, ...] = ("shapes", "free_form", "lama_thin", "lama_medium", "lama_thick", "box", "mixed")
_LAMA_KINDS = ("lama_thin", "lama_medium", "lama_thick", "box", "mixed")
_NUMPY_SAMPLERS = {"shapes": shapes_np, "free_form": free_form_np}
_TORCH_SAMPLERS = {"shapes": shapes_torch, "free_form": free_form_torch}


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {list(KINDS)}")


_THREAD = threading.local()


def _bit_generator() -> np.random.PCG64DXSM:
    """This thread's bit generator, rewound by ``mask_rng`` for every mask (making one per mask would cost ~9 µs)."""
    if not hasattr(_THREAD, "bit_generator"):
        _THREAD.bit_generator = np.random.PCG64DXSM()
    return _THREAD.bit_generator


def _with_owner(rows: np.ndarray, position: int) -> np.ndarray:
    out = np.empty((len(rows), rows.shape[1] + 1))
    out[:, 0], out[:, 1:] = position, rows
    return out


def _joined(parts: list[np.ndarray], columns: int) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros((0, columns))


def primitives_numpy(kind: str, indices: Sequence[int], height: int, width: int, seed: int):
    """Flat capsules (K, 6) and boxes (B, 5) of masks ``indices`` of ``seed``, first column = position in ``indices``."""
    capsules, boxes, stroke_tables, stroke_owners = [], [], [], []
    bit_generator = _bit_generator()
    for position, index in enumerate(indices):
        rng = mask_rng(seed, int(index), bit_generator)
        drawn = lama_np(rng, height, width, kind) if kind in _LAMA_KINDS else _NUMPY_SAMPLERS[kind](rng, height, width)
        if isinstance(drawn, StrokeDraws):
            stroke_tables.append(drawn.table)
            stroke_owners.append(np.full(len(drawn.table), position))
            continue
        caps, bxs = drawn
        if len(caps):
            capsules.append(_with_owner(caps, position))
        if len(bxs):
            boxes.append(_with_owner(bxs, position))
    if stroke_tables:
        capsules.append(stroke_capsules_np(np.concatenate(stroke_tables), np.concatenate(stroke_owners), height, width))
    return _joined(capsules, 6), _joined(boxes, 5)


def mask_numpy(kind: str, index: int, height: int, width: int, seed: int) -> np.ndarray:
    """Mask ``index`` of ``seed`` alone, float32 (1, H, W), 1 = known: the one ``generate``'s NumPy path draws."""
    capsules, boxes = primitives_numpy(kind, (index,), height, width, seed)
    return rasterise_numpy(capsules, boxes, 1, height, width, as_masks=True)


def primitives_torch(kind: str, n: int, height: int, width: int, seed: int, device: torch.device):
    """Flat capsules (K, 6) and boxes (B, 5) of a batch of n masks drawn on ``device`` from one generator."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    draw = TorchDraw(n, generator, device)
    if kind in _LAMA_KINDS:
        return lama_torch(draw, height, width, kind)
    return _TORCH_SAMPLERS[kind](draw, height, width)


def holes_of(primitives, n: int, height: int, width: int, grow=None):
    """Hole indicator (n, H, W): a NumPy array for NumPy primitives, a tensor on their device for torch ones."""
    capsules, boxes = primitives
    if isinstance(capsules, np.ndarray):
        return rasterise_numpy(capsules, boxes, n, height, width, grow)
    return rasterise_torch(capsules, boxes, n, height, width, grow)


def to_masks(holes, device: torch.device) -> Tensor:
    """Hole indicator (n, H, W) → float masks (n, 1, H, W), 1 = known, on ``device``."""
    if isinstance(holes, Tensor) and holes.device.type == "cpu":
        holes = holes.numpy()
    if isinstance(holes, np.ndarray):  # NumPy's bool → float32 is many times faster than torch's on a CPU
        return torch.from_numpy(np.logical_not(holes).view(np.uint8).astype(np.float32)[:, None]).to(device)
    return torch.logical_not(holes).to(device=device, dtype=torch.float32).unsqueeze(1)


def masks_of(primitives, n: int, height: int, width: int, device: torch.device) -> Tensor:
    """Float masks (n, 1, H, W) on ``device`` from primitives (NumPy ones are drawn straight as masks)."""
    capsules, boxes = primitives
    if isinstance(capsules, np.ndarray):
        masks = rasterise_numpy(capsules, boxes, n, height, width, as_masks=True)
        return torch.from_numpy(masks[:, None]).to(device)
    return to_masks(holes_of(primitives, n, height, width), device)


def draw_primitives(kind: str, n: int, height: int, width: int, seed: int, device: torch.device, backend: str, first: int = 0):
    """Primitives of n masks: NumPy masks first … first + n − 1 of ``seed``, or one torch batch seeded by ``seed``."""
    if backend == "numpy":
        return primitives_numpy(kind, range(first, first + n), height, width, seed)
    batch_seed = seed if first == 0 else int(np.random.SeedSequence(seed, spawn_key=(first,)).generate_state(1)[0])
    return primitives_torch(kind, n, height, width, batch_seed, device)


def generate(
    kind: str,
    n: int,
    size: int | Sequence[int],
    seed: int | None = None,
    device: str | torch.device = "cpu",
    backend: str | None = None,
) -> Tensor:
    """``n`` masks of family ``kind`` (one of ``KINDS``), float (n, 1, H, W), 1 = known and 0 = hole.

    ``size`` is an int (square) or (H, W). The same ``seed`` gives the same masks. With
    ``backend="numpy"`` (the default on a CPU device) mask i depends only on (kind, size, seed, i);
    with ``backend="torch"`` (the default on a GPU) the batch is drawn at once on ``device``.
    """
    check_kind(kind)
    n = check_count(n)
    height, width = check_size(size)
    device = torch.device(device)
    backend = pick_backend(backend, device)
    seed = check_seed(seed, backend)
    primitives = draw_primitives(kind, n, height, width, seed, device, backend)
    return masks_of(primitives, n, height, width, device)


def example_mask(size: int) -> Tensor:
    """The lessons' fixed example mask (1, 1, size, size): a rectangle, a disk and a thick stroke as holes.

    Not random: lessons 04 and 05 use it so that every figure shows the same holes. Drawn on a 128-pixel
    design scaled to ``size``.
    """
    from skimage import draw

    height, width = check_size(size)
    if height != width:
        raise ValueError(f"example_mask is square: give one int size, got {size!r}")
    hole = np.zeros((height, height), dtype=bool)
    s = height / 128
    hole[int(20 * s):int(52 * s), int(70 * s):int(110 * s)] = True
    rows, cols = draw.disk((int(95 * s), int(35 * s)), int(16 * s), shape=hole.shape)
    hole[rows, cols] = True
    for t in np.linspace(0, 1, 60):
        rows, cols = draw.disk((int((70 + 40 * t) * s), int((60 + 50 * t) * s)), int(5 * s), shape=hole.shape)
        hole[rows, cols] = True
    return torch.from_numpy(~hole).float()[None, None]


def hole_ratio(masks: Tensor) -> Tensor:
    """Fraction of hole pixels (mask value 0) per mask: (n, 1, H, W) → float64 (n,). Soft masks count 1 − value.

    Computed in float64 so that a ratio on a bucket edge (e.g. exactly 0.1) is classified exactly.
    """
    check_batch(masks, "masks")
    if masks.shape[1] != 1:
        raise ValueError(f"masks must have 1 channel (1 = known pixel, 0 = hole), got shape {tuple(masks.shape)}")
    check_mask_values(masks)
    return (1.0 - masks).sum(dim=(1, 2, 3), dtype=torch.float64) / (masks.shape[-2] * masks.shape[-1])


