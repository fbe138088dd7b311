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
the cross product is at most r·|AB|). NumPy then merges the intervals of the flattened image into the runs of
their union (one sort) and writes the whole image in one pass as alternating runs of "known" and "hole"
(``np.repeat``; work ∝ intervals + pixels, however much they overlap; a few masks at a time so that it stays in
cache); boxes are plain slices. torch writes +1 at each interval's start and −1 after its end into a difference
array whose running sum counts the intervals covering each pixel (work ∝ pixels and no data-dependent sizes,
which suits a GPU). Either way a whole batch of masks is drawn at once.

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

# NumPy draws this many pixels' worth of masks at a time, so that its temporaries stay in cache;
# torch this many, so that a large GPU batch (e.g. 8192 masks at 512²) fits in memory.
_CHUNK_PIXELS = 1 << 20
TORCH_CHUNK_PIXELS = 1 << 26

# (outside a primitive, inside it): masks are float32 1 = known, hole indicators bool True = hole
_MASK_VALUES = (np.float32(1.0), np.float32(0.0))
_HOLE_VALUES = (np.False_, np.True_)

# A segment exactly parallel to an axis divides by this (pixel-scale) stand-in for its zero component, so the
# body's two constraints are always intervals in x. Only the divisors are nudged: the slopes s1 = dy/dx and
# s2 = dx/dy use the true components, so a vertical segment's body stays exactly [ax − r, ax + r] and a pixel
# centre exactly on its edge is painted (nudging dx itself tilted the edge by ~1e-12 px per row and dropped those).
_AXIS_NUDGE = 1e-12


def _capsule_constants_np(caps: np.ndarray) -> np.ndarray:
    """Per capsule (columns), what every one of its rows needs: rows [ax, ay, bx, by, r², s1, lo1, hi1, s2, half2].

    In X = x − ax and dya = row − ay, the rectangle body is the intersection of
    0 ≤ X·dx + dya·dy ≤ |AB|²   →   X ∈ −dya·s1 + [lo1, hi1],   s1 = dy/dx, {lo1, hi1} = {0, |AB|²/dx};
    |X·dy − dya·dx| ≤ r·|AB|   →   X ∈ dya·s2 ± half2,          s2 = dx/dy, half2 = r·|AB|/|dy|.
    """
    _, ax, ay, bx, by, r = caps.T
    dx, dy = bx - ax, by - ay
    length = np.hypot(dx, dy)
    divide_x = np.where(dx == 0, _AXIS_NUDGE, dx)
    divide_y = np.where(dy == 0, _AXIS_NUDGE, dy)
    end = length * length / divide_x
    half2 = np.where(dx == 0, r, r * length / np.abs(divide_y))  # r·|AB|/|dy| is r itself when dx = 0
    return np.stack([ax, ay, bx, by, r * r, dy / divide_x, np.minimum(end, 0), np.maximum(end, 0), dx / divide_y,
                     half2])


def _capsule_row_intervals_np(constants: np.ndarray, rows: np.ndarray):
    """Column interval [left, right] (real-valued) that each capsule cuts from its pixel row (empty: NaN or left > right).

    The union of the intervals cut from the two end discs (ax ± √(r² − dya²); NaN where the row misses the disc)
    and from the body (set to NaN where empty); ``fmin``/``fmax`` skip the NaNs.
    """
    ax, ay, bx, by, r2, s1, lo1, hi1, s2, half2 = constants
    dya = rows - ay
    dyb = rows - by
    with np.errstate(invalid="ignore"):
        ha, hb = np.sqrt(r2 - dya * dya), np.sqrt(r2 - dyb * dyb)
    shift1, centre2 = dya * s1, dya * s2
    body_left = np.maximum(lo1 - shift1, centre2 - half2)
    body_right = np.minimum(hi1 - shift1, centre2 + half2)
    body = body_left <= body_right
    body_left, body_right = np.where(body, body_left, np.nan), np.where(body, body_right, np.nan)
    left = np.fmin(np.fmin(ax - ha, bx - hb), body_left + ax)
    right = np.fmax(np.fmax(ax + ha, bx + hb), body_right + ax)
    return left, right


def _union_runs_np(starts: np.ndarray, lengths: np.ndarray, pixels: int, width: int) -> np.ndarray:
    """Run lengths outside, inside, outside, …, outside of the union of flat spans [start, start + length) in 0…pixels.

    Spans overlap (neighbouring segments of a stroke share their caps, strokes cross). Sorted by start (one sort of
    start·(W + 1) + length, as length ≤ W), a span opens a new run of the union when it starts after every earlier
    span has ended (the running maximum of their ends); the run closes at that maximum just before the next opening.
    """
    key = np.sort(starts * (width + 1) + lengths)
    starts, lengths = np.divmod(key, width + 1)
    ends = np.maximum.accumulate(starts + lengths)
    opens = np.empty(len(key), dtype=bool)
    opens[:1] = True
    np.greater(starts[1:], ends[:-1], out=opens[1:])
    closes = np.empty_like(opens)
    closes[:-1], closes[-1:] = opens[1:], True
    bounds = np.empty(2 * int(opens.sum()) + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, pixels
    bounds[1:-1:2], bounds[2:-1:2] = starts[opens], ends[closes]
    return np.diff(bounds)


def _paint_spans_np(starts, lengths, n: int, height: int, width: int, outside, inside) -> np.ndarray:
    """(n, H, W) array that is ``inside`` on every flat span [start, start + length) and ``outside`` elsewhere.

    Written in one pass as runs of the two values (``np.repeat``): work ∝ number of spans + pixels, whatever the
    overlap between spans.
    """
    runs = _union_runs_np(starts, lengths, n * height * width, width)
    values = np.empty(len(runs), dtype=outside.dtype)
    values[0::2], values[1::2] = outside, inside
    return np.repeat(values, runs).reshape(n, height, width)


def _capsule_spans_np(caps: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat start (mask·H·W + row·W + first column) and length of every non-empty row span of every capsule."""
    if (caps[:, 5] < 0).any():
        caps = caps[caps[:, 5] >= 0]
    ay, by, r = caps[:, 2], caps[:, 4], caps[:, 5]
    top = np.maximum(np.ceil(np.minimum(ay, by) - r), 0)
    counts = np.maximum(np.minimum(np.floor(np.maximum(ay, by) + r), height - 1) - top + 1, 0).astype(np.int64)
    # per capsule: its geometry, and what turns a running row number into (row, flat offset of the row)
    first_row = np.cumsum(counts) - counts
    per_capsule = np.concatenate([_capsule_constants_np(caps), [first_row - top, caps[:, 0] * height]])
    per_row = np.repeat(per_capsule, counts, axis=1)
    rows = np.arange(per_row.shape[1], dtype=np.float64) - per_row[10]
    left, right = _capsule_row_intervals_np(per_row[:10], rows)
    c0 = np.maximum(np.ceil(left), 0)  # np.maximum/np.minimum keep the NaN of an empty row (np.clip costs more)
    lengths = np.minimum(np.floor(right), width - 1) - c0 + 1
    ok = lengths > 0  # False where NaN
    starts = (per_row[11] + rows) * width + c0
    return starts[ok].astype(np.int64), lengths[ok].astype(np.int64)


def _fill_boxes_np(boxes: np.ndarray, out: np.ndarray, value) -> None:
    """Write ``value`` into the pixels of every box [mask, x0, y0, x1, y1] (centres x0 ≤ col < x1, y0 ≤ row < y1)."""
    for mask, x0, y0, x1, y1 in boxes.tolist():  # a slice per box: a few boxes per mask
        c0, r0, c1, r1 = math.ceil(x0), math.ceil(y0), math.ceil(x1), math.ceil(y1)
        if c1 > 0 and r1 > 0:  # slices stop at the far edges by themselves; only the near ones need clipping
            out[int(mask), (r0 if r0 > 0 else 0):r1, (c0 if c0 > 0 else 0):c1] = value


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
    capsules: np.ndarray,
    boxes: np.ndarray,
    n: int,
    height: int,
    width: int,
    grow: np.ndarray | None = None,
    as_masks: bool = False,
) -> np.ndarray:
    """Hole indicator (n, H, W) bool of capsules (K, 6) and boxes (B, 5), by scan-line spans in NumPy (float64).

    With ``as_masks=True`` the result is float32 masks instead, 1 = known and 0 = hole (written directly,
    which saves two passes over the pixels).
    """
    capsules = np.asarray(capsules, dtype=np.float64).reshape(-1, 6)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    capsules, boxes = _grown_np(capsules, boxes, grow)
    outside, inside = _MASK_VALUES if as_masks else _HOLE_VALUES
    per_chunk = max(1, _CHUNK_PIXELS // (height * width))
    chunks = []
    for first in range(0, n if len(capsules) else 0, per_chunk):
        last = min(n, first + per_chunk)
        caps = capsules if n <= per_chunk else capsules[(capsules[:, 0] >= first) & (capsules[:, 0] < last)]
        starts, lengths = _capsule_spans_np(caps, height, width)
        chunks.append(_paint_spans_np(starts - first * height * width, lengths, last - first, height, width, outside,
                                      inside))
    if not chunks:
        out = np.empty((n, height, width), dtype=outside.dtype)
        out.fill(outside)
    else:
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    _fill_boxes_np(boxes, out, inside)
    return out


def _linear_interval_torch(alpha: Tensor, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """Solutions X of low ≤ alpha·X ≤ high as [left, right] (empty: left = +inf, right = −inf)."""
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
    """Column interval [left, right] that each capsule (one row of ``caps`` per pixel row) cuts from its row.

    The same union of end-disc and body intervals as ``_capsule_row_intervals_np``, written with the body's
    two linear inequalities solved per pair (and axis-parallel segments handled exactly).
    """
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


def _fill_torch(capsules: Tensor, boxes: Tensor, n: int, height: int, width: int) -> Tensor:
    """Hole indicator (n, H, W) of primitives whose mask indices lie in 0…n−1."""
    spans = [torch.cat(parts) for parts in zip(_capsule_spans_torch(capsules, height, width),
                                                _box_spans_torch(boxes, height, width))]
    mask_index, rows, c0, c1 = spans
    # Difference array over the flattened batch: +1 where a span starts, −1 just after it ends (the
    # first pixel of the next row when a span reaches the right border, which is where a running sum
    # over the flattened array needs it). Its cumulative sum counts the spans covering each pixel.
    starts = (mask_index * height + rows) * width + c0
    diff = torch.zeros(n * height * width + 1, dtype=torch.int32, device=capsules.device)
    ones = torch.ones_like(starts, dtype=torch.int32)
    diff.scatter_add_(0, starts, ones)
    diff.scatter_add_(0, starts + (c1 - c0 + 1), -ones)
    return (torch.cumsum(diff[:-1], 0, dtype=torch.int32) > 0).view(n, height, width)


def rasterise_torch(
    capsules: Tensor, boxes: Tensor, n: int, height: int, width: int, grow: Tensor | None = None
) -> Tensor:
    """Hole indicator (n, H, W) bool of capsules (K, 6) and boxes (B, 5), by scan-line spans in torch.

    Runs on the primitives' device (float32 on a GPU is exact enough: only pixel centres lying
    on a stroke's boundary, to within rounding, can differ from the float64 NumPy rasteriser).
    Large batches are drawn ``TORCH_CHUNK_PIXELS`` pixels' worth of masks at a time to bound memory.
    """
    if grow is not None:
        capsules, boxes = capsules.clone(), boxes.clone()
        capsules[:, 5] += grow[capsules[:, 0].long()]
        box_grow = grow[boxes[:, 0].long()][:, None]
        boxes[:, 1:3] -= box_grow
        boxes[:, 3:5] += box_grow
    per_chunk = max(1, TORCH_CHUNK_PIXELS // (height * width))
    if n <= per_chunk:
        return _fill_torch(capsules, boxes, n, height, width)
    out = torch.empty((n, height, width), dtype=torch.bool, device=capsules.device)
    for first in range(0, n, per_chunk):
        last = min(n, first + per_chunk)
        caps = capsules[(capsules[:, 0] >= first) & (capsules[:, 0] < last)].clone()
        bxs = boxes[(boxes[:, 0] >= first) & (boxes[:, 0] < last)].clone()
        caps[:, 0] -= first
        bxs[:, 0] -= first
        out[first:last] = _fill_torch(caps, bxs, last - first, height, width)
    return out


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
