"""Rasterising brush strokes and boxes into binary masks, for many masks at once, in NumPy or torch.

Every mask generator in :mod:`pconv_lessons.masks` reduces a mask to two kinds of primitive:

- a **capsule** — the set of points within distance ``r`` of the segment A→B (a thick line with round
  caps; a circle when A = B). A pixel belongs to it when its centre ``(col, row)`` satisfies

      dist(P, AB) ≤ r,   dist(P, AB) = |P − (A + t·(B − A))|,  t = clip((P − A)·(B − A) / |B − A|², 0, 1);

- a **box** — pixel centres with ``x0 ≤ col < x1`` and ``y0 ≤ row < y1``.

A brute-force rasteriser evaluates that distance at every pixel for every capsule (``capsule_distance_masks``,
the reference the tests use; on a GPU it is a fine way to draw a few strokes). The fast rasterisers here
work by **scan lines** instead: a capsule is convex, so each pixel row cuts it in one interval of
columns — the union of the intervals cut from its two end disks (``ax ± sqrt(r² − (y − ay)²)``) and
from its rectangle body (two linear inequalities in x: the projection onto AB lies in [0, |AB|²] and
the cross product is at most r·|AB|). Every pixel of every interval is then set in one scatter. The
work is proportional to the number of (primitive, row) pairs plus the number of covered pixels, for a
whole batch of masks at once, with no per-pixel pass over the empty parts.

Primitives come as flat arrays with the mask index in the first column:
capsules ``(K, 6) = [mask, ax, ay, bx, by, r]`` (``r < 0`` draws nothing) and boxes
``(B, 5) = [mask, x0, y0, x1, y1]``. ``grow`` (one value per mask) adds to every radius and moves every
box side outwards — a dilation of the strokes (an erosion when negative), which the bucket sampler uses.
The result is the hole indicator ``(n, H, W)``: True inside a primitive.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

def _linear_interval_np(alpha, low, high):
    """Solutions X of low ≤ alpha·X ≤ high as [left, right] (empty: left = +inf, right = −inf)."""
    safe = np.where(alpha == 0, 1.0, alpha)
    a, b = low / safe, high / safe
    left, right = np.minimum(a, b), np.maximum(a, b)
    flat_ok = (low <= 0) & (0 <= high)
    left = np.where(alpha == 0, np.where(flat_ok, -np.inf, np.inf), left)
    right = np.where(alpha == 0, np.where(flat_ok, np.inf, -np.inf), right)
    return left, right


def _capsule_row_intervals_np(caps: np.ndarray, rows: np.ndarray):
    """Column interval [left, right] (real-valued) that each capsule cuts from its pixel row."""
    ax, ay, bx, by, r = (caps[:, i] for i in range(1, 6))
    dx, dy = bx - ax, by - ay
    length = np.hypot(dx, dy)
    dya, dyb = rows - ay, rows - by
    ha = np.sqrt(np.maximum(r * r - dya * dya, 0.0))
    hb = np.sqrt(np.maximum(r * r - dyb * dyb, 0.0))
    in_a, in_b = r * r >= dya * dya, r * r >= dyb * dyb
    left = np.minimum(np.where(in_a, ax - ha, np.inf), np.where(in_b, bx - hb, np.inf))
    right = np.maximum(np.where(in_a, ax + ha, -np.inf), np.where(in_b, bx + hb, -np.inf))
    # Rectangle body, in X = x − ax: 0 ≤ X·dx + dya·dy ≤ |AB|² and |X·dy − dya·dx| ≤ r·|AB|.
    l1, r1 = _linear_interval_np(dx, -dya * dy, length * length - dya * dy)
    l2, r2 = _linear_interval_np(dy, dya * dx - r * length, dya * dx + r * length)
    body_l, body_r = np.maximum(l1, l2) + ax, np.minimum(r1, r2) + ax
    body = (length > 0) & (body_l <= body_r)
    left = np.where(body, np.minimum(left, body_l), left)
    right = np.where(body, np.maximum(right, body_r), right)
    return left, right


def _fill_spans_np(mask_index, rows, c0, c1, n: int, height: int, width: int) -> np.ndarray:
    """Hole indicator (n, H, W): every pixel of every column span [c0, c1] on (mask, row) set to True."""
    starts = (mask_index * height + rows) * width + c0
    lengths = c1 - c0 + 1
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    out = np.zeros(n * height * width, dtype=bool)
    out[np.arange(len(offsets)) + offsets] = True
    return out.reshape(n, height, width)


def _capsule_spans_np(caps: np.ndarray, height: int, width: int):
    ay, by, r = caps[:, 2], caps[:, 4], caps[:, 5]
    keep = r >= 0
    caps, ay, by, r = caps[keep], ay[keep], by[keep], r[keep]
    top = np.clip(np.ceil(np.minimum(ay, by) - r), 0, height).astype(np.int64)
    bottom = np.clip(np.floor(np.maximum(ay, by) + r), -1, height - 1).astype(np.int64)
    counts = np.maximum(bottom - top + 1, 0)
    owner = np.repeat(np.arange(len(caps)), counts)
    rows = top[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    pairs = caps[owner]
    left, right = _capsule_row_intervals_np(pairs, rows.astype(np.float64))
    c0 = np.clip(np.ceil(left), 0, width)
    c1 = np.clip(np.floor(right), -1, width - 1)
    ok = c0 <= c1
    return pairs[ok, 0].astype(np.int64), rows[ok], c0[ok].astype(np.int64), c1[ok].astype(np.int64)


def _box_spans_np(boxes: np.ndarray, height: int, width: int):
    c0 = np.clip(np.ceil(boxes[:, 1]), 0, width).astype(np.int64)
    c1 = np.clip(np.ceil(boxes[:, 3]) - 1, -1, width - 1).astype(np.int64)
    top = np.clip(np.ceil(boxes[:, 2]), 0, height).astype(np.int64)
    bottom = np.clip(np.ceil(boxes[:, 4]) - 1, -1, height - 1).astype(np.int64)
    counts = np.where(c0 <= c1, np.maximum(bottom - top + 1, 0), 0)
    owner = np.repeat(np.arange(len(boxes)), counts)
    rows = top[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return boxes[owner, 0].astype(np.int64), rows, c0[owner], c1[owner]


def _grown_np(caps: np.ndarray, boxes: np.ndarray, grow: np.ndarray | None):
    if grow is None:
        return caps, boxes
    caps, boxes = caps.copy(), boxes.copy()
    caps[:, 5] += grow[caps[:, 0].astype(np.int64)]
    box_grow = grow[boxes[:, 0].astype(np.int64)]
    boxes[:, 1:3] -= box_grow[:, None]
    boxes[:, 3:5] += box_grow[:, None]
    return caps, boxes


def rasterise_numpy(
    capsules: np.ndarray, boxes: np.ndarray, n: int, height: int, width: int, grow: np.ndarray | None = None
) -> np.ndarray:
    """Hole indicator (n, H, W) bool of capsules (K, 6) and boxes (B, 5), by scan-line spans in NumPy (float64)."""
    capsules = np.asarray(capsules, dtype=np.float64).reshape(-1, 6)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    capsules, boxes = _grown_np(capsules, boxes, grow)
    spans = [np.concatenate(parts) for parts in zip(_capsule_spans_np(capsules, height, width),
                                                    _box_spans_np(boxes, height, width))]
    return _fill_spans_np(*spans, n, height, width)


def _linear_interval_torch(alpha: Tensor, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """Torch twin of ``_linear_interval_np``."""
    zero = alpha == 0
    safe = torch.where(zero, torch.ones_like(alpha), alpha)
    a, b = low / safe, high / safe
    left, right = torch.minimum(a, b), torch.maximum(a, b)
    flat_ok = (low <= 0) & (high >= 0)
    inf = torch.full_like(alpha, math.inf)
    left = torch.where(zero, torch.where(flat_ok, -inf, inf), left)
    right = torch.where(zero, torch.where(flat_ok, inf, -inf), right)
    return left, right


def _capsule_row_intervals_torch(caps: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Torch twin of ``_capsule_row_intervals_np``."""
    ax, ay, bx, by, r = caps[:, 1], caps[:, 2], caps[:, 3], caps[:, 4], caps[:, 5]
    dx, dy = bx - ax, by - ay
    length = torch.hypot(dx, dy)
    dya, dyb = rows - ay, rows - by
    ha = torch.sqrt(torch.clamp(r * r - dya * dya, min=0.0))
    hb = torch.sqrt(torch.clamp(r * r - dyb * dyb, min=0.0))
    in_a, in_b = r * r >= dya * dya, r * r >= dyb * dyb
    inf = torch.full_like(ax, math.inf)
    left = torch.minimum(torch.where(in_a, ax - ha, inf), torch.where(in_b, bx - hb, inf))
    right = torch.maximum(torch.where(in_a, ax + ha, -inf), torch.where(in_b, bx + hb, -inf))
    l1, r1 = _linear_interval_torch(dx, -dya * dy, length * length - dya * dy)
    l2, r2 = _linear_interval_torch(dy, dya * dx - r * length, dya * dx + r * length)
    body_l, body_r = torch.maximum(l1, l2) + ax, torch.minimum(r1, r2) + ax
    body = (length > 0) & (body_l <= body_r)
    left = torch.where(body, torch.minimum(left, body_l), left)
    right = torch.where(body, torch.maximum(right, body_r), right)
    return left, right


def _expand_rows_torch(top: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """(owner, row) for every row of every primitive, given its first row and row count."""
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    rows = top[owner] + torch.arange(len(owner), device=counts.device) - starts[owner]
    return owner, rows


def _capsule_spans_torch(caps: Tensor, height: int, width: int):
    caps = caps[caps[:, 5] >= 0]
    ay, by, r = caps[:, 2], caps[:, 4], caps[:, 5]
    top = torch.clamp(torch.ceil(torch.minimum(ay, by) - r), 0, height).long()
    bottom = torch.clamp(torch.floor(torch.maximum(ay, by) + r), -1, height - 1).long()
    owner, rows = _expand_rows_torch(top, torch.clamp(bottom - top + 1, min=0))
    pairs = caps[owner]
    left, right = _capsule_row_intervals_torch(pairs, rows.to(caps.dtype))
    c0 = torch.clamp(torch.ceil(left), 0, width)
    c1 = torch.clamp(torch.floor(right), -1, width - 1)
    ok = c0 <= c1
    return pairs[ok, 0].long(), rows[ok], c0[ok].long(), c1[ok].long()


def _box_spans_torch(boxes: Tensor, height: int, width: int):
    c0 = torch.clamp(torch.ceil(boxes[:, 1]), 0, width).long()
    c1 = torch.clamp(torch.ceil(boxes[:, 3]) - 1, -1, width - 1).long()
    top = torch.clamp(torch.ceil(boxes[:, 2]), 0, height).long()
    bottom = torch.clamp(torch.ceil(boxes[:, 4]) - 1, -1, height - 1).long()
    counts = torch.where(c0 <= c1, torch.clamp(bottom - top + 1, min=0), torch.zeros_like(top))
    owner, rows = _expand_rows_torch(top, counts)
    return boxes[owner, 0].long(), rows, c0[owner], c1[owner]


def rasterise_torch(
    capsules: Tensor, boxes: Tensor, n: int, height: int, width: int, grow: Tensor | None = None
) -> Tensor:
    """Hole indicator (n, H, W) bool of capsules (K, 6) and boxes (B, 5), by scan-line spans in torch.

    Runs on the primitives' device (float32 on a GPU is exact enough: only pixel centres lying
    on a stroke's boundary, to within rounding, can differ from the float64 NumPy rasteriser).
    """
    if grow is not None:
        capsules, boxes = capsules.clone(), boxes.clone()
        capsules[:, 5] += grow[capsules[:, 0].long()]
        box_grow = grow[boxes[:, 0].long()][:, None]
        boxes[:, 1:3] -= box_grow
        boxes[:, 3:5] += box_grow
    spans = [torch.cat(parts) for parts in zip(_capsule_spans_torch(capsules, height, width),
                                                _box_spans_torch(boxes, height, width))]
    mask_index, rows, c0, c1 = spans
    starts = (mask_index * height + rows) * width + c0
    lengths = c1 - c0 + 1
    offsets = torch.repeat_interleave(starts - (torch.cumsum(lengths, 0) - lengths), lengths)
    out = torch.zeros(n * height * width, dtype=torch.bool, device=capsules.device)
    out[torch.arange(len(offsets), device=out.device) + offsets] = True
    return out.view(n, height, width)


def capsule_distance_masks(capsules: Tensor, n: int, height: int, width: int) -> Tensor:
    """Brute-force reference: hole indicator (n, H, W) from the distance of every pixel centre to every capsule.

    Costs K·H·W distance evaluations; use it to check the scan-line rasterisers on small cases.
    """
    capsules = capsules.double()
    rows = torch.arange(height, dtype=torch.float64).view(1, height, 1)
    cols = torch.arange(width, dtype=torch.float64).view(1, 1, width)
    out = torch.zeros((n, height, width), dtype=torch.bool)
    for mask_index, ax, ay, bx, by, r in capsules.tolist():
        if r < 0:
            continue
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = ((cols - ax) * dx + (rows - ay) * dy) / length2 if length2 > 0 else torch.zeros(1, 1, 1, dtype=torch.float64)
        t = t.clamp(0.0, 1.0)
        distance = torch.hypot(cols - (ax + t * dx), rows - (ay + t * dy))
        out[int(mask_index)] |= (distance <= r)[0]
    return out
