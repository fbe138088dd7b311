"""Masks inside a hole-ratio bucket: ``generate_in_bucket`` and the PConv paper's ``PAPER_BUCKETS``.

``generate_in_bucket`` returns masks whose hole ratio lies in a chosen (lo, hi] bucket. It draws masks, keeps
those already in the bucket and moves the others in by dropping strokes or borrowing more strokes of the same
family. Adding a stroke never removes hole pixels, so the hole ratio is monotone in the number of strokes kept
and a bisection finds the bucket in a bounded number of steps — no rejection loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pconv_lessons import validation
from pconv_lessons.masks._common import check_count, check_seed, check_size, pick_backend
from pconv_lessons.masks.draw import check_kind, draw_primitives, holes_of, to_masks

PAPER_BUCKETS: tuple[tuple[float, float], ...] = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
_EXTRA_MASKS = 6  # masks whose strokes a too-sparse mask may borrow


def _check_bucket(bucket: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in bucket)
    except (TypeError, ValueError):
        raise ValueError(f"bucket must be a pair (lo, hi), e.g. one of {list(PAPER_BUCKETS)}, got {bucket!r}") from None
    if not (0.0 <= low < high <= 1.0):
        raise ValueError(
            f"bucket (lo, hi] must lie inside (0, 1) with 0 ≤ lo < hi ≤ 1, e.g. one of {list(PAPER_BUCKETS)}; got {bucket!r}"
        )
    return low, high


def _check_bucket_reachable(low: float, high: float, height: int, width: int) -> None:
    """Some whole number k of hole pixels must satisfy low < k / (H·W) ≤ high."""
    pixels = height * width
    smallest = math.floor(low * pixels) + 1
    if not (smallest <= high * pixels + 1e-9 * pixels):
        raise ValueError(
            f"no {height}×{width} mask has a hole ratio in ({low}, {high}]: with {pixels} pixels the ratios are "
            f"multiples of 1/{pixels}; choose a wider bucket or a larger size"
        )


def _select(primitives, keep: np.ndarray, n: int):
    """The primitives of masks ``keep`` (indices into 0…n−1), renumbered 0…len(keep)−1."""
    capsules, boxes = primitives
    renumber = np.full(n, -1, dtype=np.int64)
    renumber[keep] = np.arange(len(keep))
    if isinstance(capsules, Tensor):
        renumber_t = torch.as_tensor(renumber, device=capsules.device)
        out = []
        for rows in (capsules, boxes):
            new_index = renumber_t[rows[:, 0].long()]
            picked = rows[new_index >= 0].clone()
            picked[:, 0] = new_index[new_index >= 0].to(rows.dtype)
            out.append(picked)
        return tuple(out)
    out = []
    for rows in (capsules, boxes):
        new_index = renumber[rows[:, 0].astype(np.int64)]
        picked = rows[new_index >= 0].copy()
        picked[:, 0] = new_index[new_index >= 0]
        out.append(picked)
    return tuple(out)


def _hole_fraction(holes) -> np.ndarray:
    """Exact hole fraction per mask of a hole indicator (n, H, W), as float64 NumPy."""
    counts = holes.reshape(len(holes), -1).sum(1)
    pixels = holes.shape[1] * holes.shape[2]
    return (counts.cpu().numpy() if isinstance(counts, Tensor) else counts) / pixels


def _rows(holes, index: np.ndarray):
    """NumPy integer index usable on ``holes`` (a NumPy array, or a tensor on any device)."""
    return torch.as_tensor(index, device=holes.device) if isinstance(holes, Tensor) else index


def _owner(rows):
    return rows[:, 0].long() if isinstance(rows, Tensor) else rows[:, 0].astype(np.int64)


def _rank_within_mask(owner):
    """Position of every primitive among those of its mask, in the given order (NumPy or torch, int64)."""
    if isinstance(owner, Tensor):
        sorted_owner, order = torch.sort(owner, stable=True)
        position = torch.arange(len(owner), device=owner.device) - torch.searchsorted(sorted_owner, sorted_owner)
        rank = torch.empty_like(position)
        rank[order] = position
        return rank
    order = np.argsort(owner, kind="stable")
    sorted_owner = owner[order]
    rank = np.empty(len(owner), dtype=np.int64)
    rank[order] = np.arange(len(owner)) - np.searchsorted(sorted_owner, sorted_owner)
    return rank


def _combine(own, extra, extras_per_mask: int):
    """A mask's own primitives followed by those of its ``extras_per_mask`` extra masks, each ranked within its mask."""
    cat = torch.cat if isinstance(own[0], Tensor) else np.concatenate
    extra = tuple(rows.clone() if isinstance(rows, Tensor) else rows.copy() for rows in extra)
    for rows in extra:
        rows[:, 0] = rows[:, 0] // extras_per_mask
    capsules, boxes = cat([own[0], extra[0]]), cat([own[1], extra[1]])
    owners = cat([_owner(own[0]), _owner(own[1]), _owner(extra[0]), _owner(extra[1])])
    rank = _rank_within_mask(owners)
    a, b, c = len(own[0]), len(own[1]), len(extra[0])
    return capsules, boxes, cat([rank[:a], rank[a + b:a + b + c]]), cat([rank[a:a + b], rank[a + b + c:]])


def _prefix(combined, amount):
    """Each mask drawn with its first ⌊amount⌋ primitives in full and the next one scaled by amount − ⌊amount⌋
    (capsule radius, box size about its centre); the hole ratio never decreases as ``amount`` grows."""
    capsules, boxes, capsule_rank, box_rank = combined
    xp = torch if isinstance(capsules, Tensor) else np
    out = []
    for rows, rank, is_box in ((capsules, capsule_rank, False), (boxes, box_rank, True)):
        reach = amount[_owner(rows)]
        whole = xp.floor(reach)
        factor = xp.where(rank < whole, 1.0, xp.where(rank == whole, reach - whole, -1.0))
        rows = rows.clone() if xp is torch else rows.copy()
        if is_box:
            centre, half = (rows[:, 1:3] + rows[:, 3:5]) / 2, (rows[:, 3:5] - rows[:, 1:3]) / 2
            half = half * xp.where(factor > 0, factor, 0.0)[:, None]
            rows[:, 1:3], rows[:, 3:5] = centre - half, centre + half
            rows[:, 3:5] = xp.where((factor > 0)[:, None], rows[:, 3:5], rows[:, 1:3])
        else:
            rows[:, 5] = xp.where(factor > 0, rows[:, 5] * factor, -1.0)
        out.append(rows)
    return tuple(out)


def _bisect_into_bucket(render, holes, done, lower, upper, low, high, steps: int) -> None:
    """Bisection per pending mask on a parameter whose hole ratio never decreases; updates ``holes`` and ``done``.

    ``render(masks, values)`` draws masks (indices) at parameter values; ``lower`` gives a ratio ≤ low,
    ``upper`` one above ``high`` (or the largest the method can reach).
    """
    for _ in range(steps):
        pending = np.flatnonzero(~done)
        if len(pending) == 0:
            return
        middle = (lower[pending] + upper[pending]) / 2
        trial = render(pending, middle)
        ratio = _hole_fraction(trial)
        inside = (ratio > low) & (ratio <= high)
        holes[_rows(holes, pending[inside])] = trial[_rows(trial, np.flatnonzero(inside))]
        done[pending[inside]] = True
        lower[pending[ratio <= low]] = middle[ratio <= low]
        upper[pending[ratio > high]] = middle[ratio > high]


def _fit_into_bucket(own, extra, extras_per_mask, count, height, width, low, high, steps: int = 40):
    """Holes of ``count`` masks brought into (low, high]; returns (holes, which made it).

    First by the number of strokes: a mask keeps a prefix of its own primitives followed by those of its extra
    masks (``_prefix``). A mask that stays too sparse even with all of them is then grown as a whole.
    """
    holes = holes_of(own, count, height, width)
    ratio = _hole_fraction(holes)
    done = (ratio > low) & (ratio <= high)
    if done.all():
        return holes, done
    combined = _combine(own, extra, extras_per_mask)
    capsules = combined[0]
    as_array = (lambda v: torch.as_tensor(v, dtype=capsules.dtype, device=capsules.device)) if isinstance(
        capsules, Tensor) else (lambda v: v)
    available = np.bincount(np.concatenate([
        _as_numpy(_owner(combined[0])), _as_numpy(_owner(combined[1]))]), minlength=count).astype(float)
    own_count = np.bincount(np.concatenate([_as_numpy(_owner(own[0])), _as_numpy(_owner(own[1]))]), minlength=count)

    def by_prefix(masks, values):
        amount = np.zeros(count)
        amount[masks] = values
        return holes_of(_select(_prefix(combined, as_array(amount)), masks, count), len(masks), height, width)

    upper = np.where(ratio <= low, available, own_count.astype(float))
    _bisect_into_bucket(by_prefix, holes, done, np.zeros(count), upper, low, high, steps)

    everything = (combined[0], combined[1])

    def by_growth(masks, values):
        return holes_of(_select(everything, masks, count), len(masks), height, width, as_array(values))

    lower = np.zeros(count)
    upper = np.full(count, math.hypot(height, width))
    _bisect_into_bucket(by_growth, holes, done, lower, upper, low, high, steps)
    return holes, done


def _as_numpy(values) -> np.ndarray:
    return values.cpu().numpy() if isinstance(values, Tensor) else values


def generate_in_bucket(
    kind: str,
    n: int,
    size: int | Sequence[int],
    bucket: Sequence[float],
    seed: int | None = None,
    device: str | torch.device = "cpu",
    backend: str | None = None,
    max_rounds: int = 4,
) -> Tensor:
    """``n`` masks of family ``kind`` whose hole ratio lies in ``bucket`` = (lo, hi], e.g. one of ``PAPER_BUCKETS``.

    Masks are drawn as by ``generate``; those already inside the bucket are kept. A mask with too much hole
    keeps only its first strokes (boxes), a mask with too little borrows the strokes of up to
    ``_EXTRA_MASKS`` further masks of the family; the number kept — the last one drawn partly, thinner — is
    found by bisection (at most 40 steps), so the masks keep the family's stroke widths and look. A mask
    still too sparse with all of them is grown as a whole (every radius and box side moved out by one
    amount, again by bisection). Masks that still miss (on tiny images one step can add many pixels) are
    redrawn, at most ``max_rounds`` rounds in all; then a RuntimeError says how many are missing. A bucket
    that no mask of this size can reach (too few pixels) raises ValueError at once.
    """
    check_kind(kind)
    n = check_count(n)
    height, width = check_size(size)
    low, high = _check_bucket(bucket)
    _check_bucket_reachable(low, high, height, width)
    max_rounds = validation.check_int(max_rounds, "max_rounds", minimum=1)
    device = torch.device(device)
    backend = pick_backend(backend, device)
    seed = check_seed(seed, backend)
    found = []
    missing, first = n, 0
    for _ in range(max_rounds):
        if missing == 0:
            break
        own = draw_primitives(kind, missing, height, width, seed, device, backend, first)
        extra_seed = int(np.random.SeedSequence(seed, spawn_key=(first, _EXTRA_MASKS)).generate_state(1)[0])
        extra = draw_primitives(kind, missing * _EXTRA_MASKS, height, width, extra_seed, device, backend)
        holes, done = _fit_into_bucket(own, extra, _EXTRA_MASKS, missing, height, width, low, high)
        found.append(holes[_rows(holes, np.flatnonzero(done))])
        first += missing
        missing -= int(done.sum())
    if missing:
        raise RuntimeError(
            f"{missing} of {n} {kind!r} masks of size {height}×{width} could not be brought into ({low}, {high}] "
            f"in {max_rounds} rounds; try a wider bucket or a larger size"
        )
    if not found:
        return to_masks(np.zeros((0, height, width), dtype=bool), device)
    return to_masks(torch.cat(found) if isinstance(found[0], Tensor) else np.concatenate(found), device)


