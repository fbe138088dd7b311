"""Training and test masks for inpainting: the mask families of PConv, DeepFill v2 and LaMa, hole-ratio buckets.

Convention: masks are float tensors (n, 1, H, W) with **1 = known pixel, 0 = hole**.

Every family draws a few random *primitives* — thick line segments with round caps ("capsules", a
circle being a capsule of length 0) and axis-aligned boxes — and rasterises them
(:mod:`pconv_lessons.raster`). The families, with their source parameters (pixel sizes quoted at the
source's training resolution and scaled with the image, see ``_scale``):

- ``"shapes"`` — PConv-Keras's random masks (the PConv paper's own masks came from occlusion
  estimates; this open reimplementation draws shapes): 1–20 lines between uniform points, 1–20 filled
  circles and 1–20 elliptical arcs, thickness and radius uniform in 3…⌊0.03·(H+W)⌋ pixels.
- ``"free_form"`` — DeepFill v2's brush strokes: 1–3 strokes of 4–11 vertices, turning angles
  2π/5 ± U(0, 2π/15) alternating in sign, step lengths N(r, r/2) clipped to [0, 2r] with
  r = √(H² + W²)/8, brush width U(12, 40) at 256², round caps at every vertex, random flips.
- ``"lama_thin"``, ``"lama_medium"``, ``"lama_thick"`` — LaMa's irregular strokes
  (advimman/lama ``configs/data_gen/random_*_{256,512}.yaml``): each stroke 1–5 segments from a uniform
  start, segment angle 0.01 + U{0…3} radians (mirrored for every other stroke), length 10 + U{0…L−1},
  width 5 + U{0…w−1}; stroke count, L and w per ``LAMA_PRESETS``.
- ``"box"`` — LaMa's rectangles: 1–3 boxes of sides U{30…149} at 256² (1–4, 30…299 at 512²), 10 pixels
  from the border.
- ``"mixed"`` — LaMa's training masks: ``lama_thick`` strokes or ``box`` with probability 1/2 each.

Two paths draw the same distribution. ``backend="numpy"`` draws each mask from its own NumPy stream
(``SeedSequence(seed, spawn_key=(index,))``), so mask *i* does not depend on how many masks are drawn
with it, and rasterises in NumPy. ``backend="torch"`` draws a whole batch at once with one
``torch.Generator`` on the target device and rasterises there — the fast path on a GPU. By default
a CPU device uses NumPy and a CUDA device uses torch.

``generate_in_bucket`` returns masks whose hole ratio lies in a chosen (lo, hi] bucket, e.g. one of
``PAPER_BUCKETS`` (the PConv paper's test buckets). It draws masks, keeps those already in the bucket
and moves the others in by dropping strokes or borrowing more strokes of the same family. Adding a
stroke never removes hole pixels, so the hole ratio is monotone in the number of strokes kept and a
bisection finds the bucket in a bounded number of steps — no rejection loop.

``MaskDataset`` (indexable) and ``MaskStream`` (endless, split across ``DataLoader`` workers) serve masks
to a training loop; ``mask_batches`` yields whole batches on a GPU. Measured hole-ratio bands per
family are in ``HOLE_RATIO_BANDS``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from pconv_lessons.checks import check_batch, check_mask_values, check_size
from pconv_lessons.raster import rasterise_numpy, rasterise_torch

KINDS: tuple[str, ...] = ("shapes", "free_form", "lama_thin", "lama_medium", "lama_thick", "box", "mixed")
BACKENDS: tuple[str, ...] = ("numpy", "torch")
PAPER_BUCKETS: tuple[tuple[float, float], ...] = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))


@dataclass(frozen=True)
class LamaStrokes:
    """One LaMa irregular-mask preset: strokes per mask, and the L (length) and w (width) of 10 + U{0…L−1}, 5 + U{0…w−1}."""

    min_strokes: int
    max_strokes: int
    max_width: int
    max_length: int
    max_angle: int = 4


@dataclass(frozen=True)
class LamaBoxes:
    """LaMa's rectangle masks: ``min_boxes``–``max_boxes`` boxes, sides U{min_size…max_size−1}, ``margin`` from the border."""

    margin: int
    min_size: int
    max_size: int
    min_boxes: int
    max_boxes: int


# (preset, reference side) -> parameters, from advimman/lama configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml.
LAMA_PRESETS: dict[tuple[str, int], LamaStrokes] = {
    ("thin", 256): LamaStrokes(4, 50, max_width=10, max_length=40),
    ("thin", 512): LamaStrokes(4, 70, max_width=20, max_length=100),
    ("medium", 256): LamaStrokes(4, 5, max_width=50, max_length=100),
    ("medium", 512): LamaStrokes(4, 10, max_width=100, max_length=200),
    ("thick", 256): LamaStrokes(1, 5, max_width=100, max_length=200),
    ("thick", 512): LamaStrokes(1, 5, max_width=250, max_length=450),
}
# Big-LaMa's training boxes at 256², and the thick-512 evaluation boxes at 512².
LAMA_BOXES: dict[int, LamaBoxes] = {
    256: LamaBoxes(margin=10, min_size=30, max_size=150, min_boxes=1, max_boxes=3),
    512: LamaBoxes(margin=10, min_size=30, max_size=300, min_boxes=1, max_boxes=4),
}
MIXED_STROKE_SHARE = 0.5  # LaMa's training generator: irregular (thick) : box = 1 : 1

# Band for the MEAN hole ratio of a batch of ≥ 150 masks, (kind, side) -> (low, high): the mean measured
# over 2,000 masks at 256² / 600 at 512² (NumPy path, seeds 1000, 1001, …) ± 0.04 (over three standard errors
# of a 150-mask mean). Measured (mean, std, 5th–95th percentile) at 256²:
#   shapes 0.274, 0.093, 0.12–0.42     free_form 0.152, 0.080, 0.04–0.29
#   lama_thin 0.265, 0.120, 0.07–0.44  lama_medium 0.270, 0.076, 0.15–0.40  lama_thick 0.411, 0.197, 0.09–0.73
#   box 0.210, 0.100, 0.06–0.37        mixed 0.301, 0.185, 0.06–0.67
# and at 512² (600 masks, seeds 1000…1002):
#   shapes 0.253, 0.090   free_form 0.155, 0.080   lama_thin 0.274, 0.128   lama_medium 0.344, 0.110
#   lama_thick 0.481, 0.221   box 0.218, 0.118   mixed 0.338, 0.214
# LaMa's evaluation sets also drop masks with more than 50 % hole (34 % of lama_thick masks, 17 % of mixed at 256²);
# these generators keep them — use generate_in_bucket to control the hole ratio.
HOLE_RATIO_BANDS: dict[tuple[str, int], tuple[float, float]] = {
    ("shapes", 256): (0.234, 0.314),
    ("free_form", 256): (0.112, 0.192),
    ("lama_thin", 256): (0.225, 0.305),
    ("lama_medium", 256): (0.230, 0.310),
    ("lama_thick", 256): (0.371, 0.451),
    ("box", 256): (0.170, 0.250),
    ("mixed", 256): (0.261, 0.341),
    ("shapes", 512): (0.213, 0.293),
    ("free_form", 512): (0.115, 0.195),
    ("lama_thin", 512): (0.234, 0.314),
    ("lama_medium", 512): (0.304, 0.384),
    ("lama_thick", 512): (0.441, 0.521),
    ("box", 512): (0.178, 0.258),
    ("mixed", 512): (0.298, 0.378),
}

_TWO_PI = 2.0 * math.pi
_ARC_SEGMENTS = 16  # an elliptical arc is drawn as this many capsules
_FREE_FORM_MAX_VERTICES = 11
_LAMA_MAX_SEGMENTS = 5
_EXTRA_MASKS = 6  # masks whose strokes a too-sparse mask may borrow in generate_in_bucket


# --------------------------------------------------------------------------------------------- input checks


def _check_size(size: int | Sequence[int]) -> tuple[int, int]:
    return check_size(size, "size")  # an int (also NumPy or a 0-d tensor) or a pair (H, W); 32.0 is an error


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {list(KINDS)}")


def _check_count(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n (the number of masks) must be an int ≥ 0, got {n!r}")
    return int(n)


def _check_seed(seed: int | None) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy % (1 << 63))
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be None or an int ≥ 0, got {seed!r}")
    return int(seed)


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


def _pick_backend(backend: str | None, device: torch.device) -> str:
    """NumPy on a CPU and torch elsewhere unless asked; NumPy masks are moved to ``device`` after drawing."""
    if backend is None:
        return "torch" if device.type != "cpu" else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {list(BACKENDS)} (or None for the device's default)")
    return backend


def _scale(height: int, width: int) -> tuple[int, float]:
    """The source parameter set to use (256 or 512) and the factor from its pixel sizes to this image.

    LaMa publishes parameters for 256² and 512²; images with a shorter side below 384 use the 256² set,
    larger ones the 512² set, and stroke lengths, widths and box sizes scale with the shorter side.
    At exactly 256² or 512² the factor is 1 and the source's parameters are used unchanged.
    """
    side = min(height, width)
    reference = 256 if side < 384 else 512
    return reference, side / reference


# --------------------------------------------------------------------------------------------- NumPy samplers
# Each returns capsules (k, 5) [ax, ay, bx, by, r] and boxes (b, 4) [x0, y0, x1, y1] for one mask.


def _chain_capsules_np(xs: np.ndarray, ys: np.ndarray, radius: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Capsules joining consecutive vertices (strokes, V+1) of each stroke, keeping segments marked valid (strokes, V)."""
    caps = np.stack([xs[:, :-1], ys[:, :-1], xs[:, 1:], ys[:, 1:], np.broadcast_to(radius, valid.shape)], axis=-1)
    return caps[valid]


def _shapes_np(rng: np.random.Generator, height: int, width: int):
    thick = max(3, int((height + width) * 0.03))
    n_lines, n_circles, n_arcs = rng.integers(1, 21, 3)
    lines = np.column_stack([
        rng.integers(1, width + 1, n_lines), rng.integers(1, height + 1, n_lines),
        rng.integers(1, width + 1, n_lines), rng.integers(1, height + 1, n_lines),
        rng.integers(3, thick + 1, n_lines) / 2.0,
    ])
    cx, cy = rng.integers(1, width + 1, n_circles), rng.integers(1, height + 1, n_circles)
    circles = np.column_stack([cx, cy, cx, cy, rng.integers(3, thick + 1, n_circles)])
    centre_x, centre_y = rng.integers(1, width + 1, n_arcs), rng.integers(1, height + 1, n_arcs)
    axis_x, axis_y = rng.integers(1, width + 1, n_arcs), rng.integers(1, height + 1, n_arcs)
    rotation, start, end = np.radians(rng.integers(3, 181, (3, n_arcs)))
    radius = rng.integers(3, thick + 1, n_arcs) / 2.0
    xs, ys = _arc_points(np.minimum(start, end), np.maximum(start, end), centre_x, centre_y, axis_x, axis_y, rotation)
    arcs = _chain_capsules_np(xs, ys, radius[:, None], np.ones((n_arcs, _ARC_SEGMENTS), dtype=bool))
    return np.concatenate([lines, circles, arcs]), np.zeros((0, 4))


def _arc_points(first, last, centre_x, centre_y, axis_x, axis_y, rotation):
    """Vertices (arcs, _ARC_SEGMENTS + 1) along elliptical arcs from angle ``first`` to ``last`` (NumPy or torch)."""
    steps = np.linspace(0.0, 1.0, _ARC_SEGMENTS + 1) if isinstance(first, np.ndarray) else torch.linspace(
        0.0, 1.0, _ARC_SEGMENTS + 1, device=first.device, dtype=first.dtype)
    xp = np if isinstance(first, np.ndarray) else torch
    theta = first[:, None] + (last - first)[:, None] * steps
    local_x, local_y = axis_x[:, None] * xp.cos(theta), axis_y[:, None] * xp.sin(theta)
    cos_r, sin_r = xp.cos(rotation)[:, None], xp.sin(rotation)[:, None]
    return centre_x[:, None] + local_x * cos_r - local_y * sin_r, centre_y[:, None] + local_x * sin_r + local_y * cos_r


def _free_form_np(rng: np.random.Generator, height: int, width: int):
    step_mean = math.hypot(height, width) / 8.0
    strokes = int(rng.integers(1, 4))
    vertices = rng.integers(4, 12, strokes)
    low = 2 * math.pi / 5 - rng.uniform(0, 2 * math.pi / 15, strokes)
    high = 2 * math.pi / 5 + rng.uniform(0, 2 * math.pi / 15, strokes)
    angle = rng.uniform(low[:, None], high[:, None], (strokes, _FREE_FORM_MAX_VERTICES))
    angle[:, ::2] = _TWO_PI - angle[:, ::2]
    step = np.clip(rng.normal(step_mean, step_mean / 2, (strokes, _FREE_FORM_MAX_VERTICES)), 0, 2 * step_mean)
    brush = np.floor(rng.uniform(12, 40, strokes)) * min(height, width) / 256.0
    xs = np.empty((strokes, _FREE_FORM_MAX_VERTICES + 1))
    ys = np.empty_like(xs)
    xs[:, 0], ys[:, 0] = rng.integers(0, width, strokes), rng.integers(0, height, strokes)
    for j in range(_FREE_FORM_MAX_VERTICES):
        xs[:, j + 1] = np.trunc(np.clip(xs[:, j] + step[:, j] * np.cos(angle[:, j]), 0, width))
        ys[:, j + 1] = np.trunc(np.clip(ys[:, j] + step[:, j] * np.sin(angle[:, j]), 0, height))
    flip_x, flip_y = rng.normal(size=2) > 0
    if flip_x:
        xs = width - 1 - xs
    if flip_y:
        ys = height - 1 - ys
    valid = np.arange(_FREE_FORM_MAX_VERTICES)[None, :] < vertices[:, None]
    return _chain_capsules_np(xs, ys, brush[:, None] / 2.0, valid), np.zeros((0, 4))


@dataclass(frozen=True)
class _StrokeDraws:
    """LaMa strokes of one mask before their geometry, one row per stroke:
    [x0, y0, segments, angle × 5, length × 5, radius × 5]. Their vertices are computed for many masks at once."""

    table: np.ndarray


def _lama_strokes_np(rng: np.random.Generator, height: int, width: int, preset: str) -> _StrokeDraws:
    reference, scale = _scale(height, width)
    p = LAMA_PRESETS[(preset, reference)]
    m = _LAMA_MAX_SEGMENTS
    strokes = int(rng.integers(p.min_strokes, p.max_strokes + 1))
    highs = np.array([width, height, m] + [p.max_angle] * m + [p.max_length] * m + [p.max_width] * m)
    table = rng.integers(0, highs, (strokes, len(highs))).astype(np.float64)  # every column uniform on 0…high−1
    table[:, 2] += 1  # 1…5 segments
    angle = table[:, 3:3 + m] + 0.01
    angle[::2] = _TWO_PI - angle[::2]  # every other stroke mirrored
    table[:, 3:3 + m] = angle
    table[:, 3 + m:3 + 2 * m] = (10 + table[:, 3 + m:3 + 2 * m]) * scale
    table[:, 3 + 2 * m:] = (5 + table[:, 3 + 2 * m:]) * scale / 2.0
    return _StrokeDraws(table)


def _lama_capsules_np(table: np.ndarray, owner: np.ndarray, height: int, width: int) -> np.ndarray:
    """Capsules (K, 6) of the strokes in ``table`` (rows of ``_StrokeDraws``), first column = ``owner``."""
    m = _LAMA_MAX_SEGMENTS
    angle, length, radius = table[:, 3:3 + m], table[:, 3 + m:3 + 2 * m], table[:, 3 + 2 * m:]
    step_x, step_y = length * np.sin(angle), length * np.cos(angle)
    xs = np.empty((len(table), m + 1))
    ys = np.empty_like(xs)
    xs[:, 0], ys[:, 0] = table[:, 0], table[:, 1]
    for j in range(m):
        xs[:, j + 1] = np.clip(np.trunc(xs[:, j] + step_x[:, j]), 0, width)
        ys[:, j + 1] = np.clip(np.trunc(ys[:, j] + step_y[:, j]), 0, height)
    valid = np.arange(m)[None, :] < table[:, 2:3]
    owners = np.broadcast_to(owner[:, None], valid.shape)[valid]
    return np.column_stack([owners, _chain_capsules_np(xs, ys, radius, valid)])


def _boxes_np(rng: np.random.Generator, height: int, width: int):
    reference, scale = _scale(height, width)
    p = LAMA_BOXES[reference]
    count = int(rng.integers(p.min_boxes, p.max_boxes + 1))
    largest = min(p.max_size, round(height / scale) - 2 * p.margin, round(width / scale) - 2 * p.margin)
    margin = p.margin * scale
    box_w = rng.integers(p.min_size, largest, count) * scale
    box_h = rng.integers(p.min_size, largest, count) * scale
    x0 = margin + rng.integers(0, np.floor(width - 2 * margin - box_w).astype(np.int64) + 1)
    y0 = margin + rng.integers(0, np.floor(height - 2 * margin - box_h).astype(np.int64) + 1)
    return np.zeros((0, 5)), np.column_stack([x0, y0, x0 + box_w, y0 + box_h])


def _mixed_np(rng: np.random.Generator, height: int, width: int):
    if rng.random() < MIXED_STROKE_SHARE:
        return _lama_strokes_np(rng, height, width, "thick")
    return _boxes_np(rng, height, width)


_NUMPY_SAMPLERS = {
    "shapes": _shapes_np,
    "free_form": _free_form_np,
    "lama_thin": lambda rng, h, w: _lama_strokes_np(rng, h, w, "thin"),
    "lama_medium": lambda rng, h, w: _lama_strokes_np(rng, h, w, "medium"),
    "lama_thick": lambda rng, h, w: _lama_strokes_np(rng, h, w, "thick"),
    "box": _boxes_np,
    "mixed": _mixed_np,
}


def mask_rng(seed: int, index: int) -> np.random.Generator:
    """The NumPy random stream of mask ``index`` under base ``seed`` (independent streams for every index)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(index,))))


def _primitives_numpy(kind: str, indices: Sequence[int], height: int, width: int, seed: int):
    """Flat capsules (K, 6) and boxes (B, 5), first column = position in ``indices``."""
    sampler = _NUMPY_SAMPLERS[kind]
    capsules, boxes, stroke_tables, stroke_owners = [np.zeros((0, 6))], [np.zeros((0, 5))], [], []
    for position, index in enumerate(indices):
        drawn = sampler(mask_rng(seed, int(index)), height, width)
        if isinstance(drawn, _StrokeDraws):
            stroke_tables.append(drawn.table)
            stroke_owners.append(np.full(len(drawn.table), position))
            continue
        caps, bxs = drawn
        capsules.append(np.column_stack([np.full(len(caps), position), caps]) if len(caps) else np.zeros((0, 6)))
        boxes.append(np.column_stack([np.full(len(bxs), position), bxs]) if len(bxs) else np.zeros((0, 5)))
    if stroke_tables:
        capsules.append(_lama_capsules_np(np.concatenate(stroke_tables), np.concatenate(stroke_owners), height, width))
    return np.concatenate(capsules), np.concatenate(boxes)


# --------------------------------------------------------------------------------------------- torch samplers
# Each draws a whole batch: returns flat capsules (K, 6) and boxes (B, 5) with the mask index first.


class _TorchDraw:
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


def _chain_capsules_torch(xs: Tensor, ys: Tensor, radius: Tensor) -> Tensor:
    """(n, S, V+1) vertices and (n, S, V) radii → (n, S, V, 5) capsules."""
    return torch.stack([xs[..., :-1], ys[..., :-1], xs[..., 1:], ys[..., 1:], radius.expand(xs[..., 1:].shape)], dim=-1)


def _shapes_torch(draw: _TorchDraw, height: int, width: int):
    thick = max(3, int((height + width) * 0.03))
    counts = draw.integers(1, 21, 3)
    slots = torch.arange(20, device=draw.device)
    valid = slots[None, None, :] < counts[:, :, None]  # (n, 3 families, 20)
    lines = torch.stack([
        draw.integers(1, width + 1, 20), draw.integers(1, height + 1, 20),
        draw.integers(1, width + 1, 20), draw.integers(1, height + 1, 20),
        draw.integers(3, thick + 1, 20) / 2.0,
    ], dim=-1)
    cx, cy = draw.integers(1, width + 1, 20), draw.integers(1, height + 1, 20)
    circles = torch.stack([cx, cy, cx, cy, draw.integers(3, thick + 1, 20)], dim=-1)
    centre_x, centre_y = draw.integers(1, width + 1, 20), draw.integers(1, height + 1, 20)
    axis_x, axis_y = draw.integers(1, width + 1, 20), draw.integers(1, height + 1, 20)
    rotation, start, end = torch.deg2rad(draw.integers(3, 181, 3, 20)).unbind(1)
    radius = draw.integers(3, thick + 1, 20) / 2.0
    xs, ys = _arc_points(*(t.reshape(-1) for t in (torch.minimum(start, end), torch.maximum(start, end),
                                                    centre_x, centre_y, axis_x, axis_y, rotation)))
    arcs = _chain_capsules_torch(xs.view(draw.n, 20, -1), ys.view(draw.n, 20, -1), radius[..., None])
    arc_valid = valid[:, 2, :, None].expand(arcs.shape[:-1])
    capsules = torch.cat([draw.flat(lines, valid[:, 0]), draw.flat(circles, valid[:, 1]), draw.flat(arcs, arc_valid)])
    return capsules, draw.no_boxes()


def _free_form_torch(draw: _TorchDraw, height: int, width: int):
    step_mean = math.hypot(height, width) / 8.0
    v = _FREE_FORM_MAX_VERTICES
    strokes = draw.integers(1, 4)
    vertices = draw.integers(4, 12, 3)
    low = 2 * math.pi / 5 - draw.uniform(3, high=2 * math.pi / 15)
    high = 2 * math.pi / 5 + draw.uniform(3, high=2 * math.pi / 15)
    angle = low[..., None] + (high - low)[..., None] * draw.uniform(3, v)
    sign_flip = (torch.arange(v, device=draw.device) % 2 == 0)
    angle = torch.where(sign_flip, _TWO_PI - angle, angle)
    step = draw.normal(3, v, mean=step_mean, std=step_mean / 2).clamp(0, 2 * step_mean)
    brush = torch.floor(draw.uniform(3, low=12, high=40)) * min(height, width) / 256.0
    x, y = draw.integers(0, width, 3), draw.integers(0, height, 3)
    xs, ys = [x], [y]
    for j in range(v):
        x = torch.trunc((x + step[..., j] * torch.cos(angle[..., j])).clamp(0, width))
        y = torch.trunc((y + step[..., j] * torch.sin(angle[..., j])).clamp(0, height))
        xs.append(x)
        ys.append(y)
    xs, ys = torch.stack(xs, -1), torch.stack(ys, -1)
    flips = draw.normal(2) > 0
    xs = torch.where(flips[:, 0, None, None], width - 1 - xs, xs)
    ys = torch.where(flips[:, 1, None, None], height - 1 - ys, ys)
    capsules = _chain_capsules_torch(xs, ys, brush[..., None] / 2.0)
    stroke_valid = torch.arange(3, device=draw.device)[None, :] < strokes[:, None]
    valid = stroke_valid[..., None] & (torch.arange(v, device=draw.device) < vertices[..., None])
    return draw.flat(capsules, valid), draw.no_boxes()


def _lama_strokes_torch(draw: _TorchDraw, height: int, width: int, preset: str, chosen: Tensor | None = None):
    reference, scale = _scale(height, width)
    p = LAMA_PRESETS[(preset, reference)]
    s, m = p.max_strokes, _LAMA_MAX_SEGMENTS
    strokes = draw.integers(p.min_strokes, p.max_strokes + 1)
    segments = 1 + draw.integers(0, m, s)
    angle = 0.01 + draw.integers(0, p.max_angle, s, m)
    mirrored = (torch.arange(s, device=draw.device) % 2 == 0)[:, None]
    angle = torch.where(mirrored, _TWO_PI - angle, angle)
    length = (10 + draw.integers(0, p.max_length, s, m)) * scale
    radius = (5 + draw.integers(0, p.max_width, s, m)) * scale / 2.0
    x, y = draw.integers(0, width, s), draw.integers(0, height, s)
    xs, ys = [x], [y]
    for j in range(m):
        x = torch.trunc(x + length[..., j] * torch.sin(angle[..., j])).clamp(0, width)
        y = torch.trunc(y + length[..., j] * torch.cos(angle[..., j])).clamp(0, height)
        xs.append(x)
        ys.append(y)
    capsules = _chain_capsules_torch(torch.stack(xs, -1), torch.stack(ys, -1), radius)
    stroke_valid = torch.arange(s, device=draw.device)[None, :] < strokes[:, None]
    valid = stroke_valid[..., None] & (torch.arange(m, device=draw.device) < segments[..., None])
    if chosen is not None:
        valid = valid & chosen[:, None, None]
    return draw.flat(capsules, valid), draw.no_boxes()


def _boxes_torch(draw: _TorchDraw, height: int, width: int, chosen: Tensor | None = None):
    reference, scale = _scale(height, width)
    p = LAMA_BOXES[reference]
    count = draw.integers(p.min_boxes, p.max_boxes + 1)
    largest = min(p.max_size, round(height / scale) - 2 * p.margin, round(width / scale) - 2 * p.margin)
    margin = p.margin * scale
    box_w = draw.integers(p.min_size, largest, p.max_boxes) * scale
    box_h = draw.integers(p.min_size, largest, p.max_boxes) * scale
    x0 = margin + draw.integers(0, torch.floor(width - 2 * margin - box_w) + 1, p.max_boxes)
    y0 = margin + draw.integers(0, torch.floor(height - 2 * margin - box_h) + 1, p.max_boxes)
    boxes = torch.stack([x0, y0, x0 + box_w, y0 + box_h], dim=-1)
    valid = torch.arange(p.max_boxes, device=draw.device)[None, :] < count[:, None]
    if chosen is not None:
        valid = valid & chosen[:, None]
    return draw.no_capsules(), draw.flat(boxes, valid)


def _mixed_torch(draw: _TorchDraw, height: int, width: int):
    strokes = draw.uniform() < MIXED_STROKE_SHARE
    capsules, _ = _lama_strokes_torch(draw, height, width, "thick", chosen=strokes)
    _, boxes = _boxes_torch(draw, height, width, chosen=~strokes)
    return capsules, boxes


_TORCH_SAMPLERS = {
    "shapes": _shapes_torch,
    "free_form": _free_form_torch,
    "lama_thin": lambda draw, h, w: _lama_strokes_torch(draw, h, w, "thin"),
    "lama_medium": lambda draw, h, w: _lama_strokes_torch(draw, h, w, "medium"),
    "lama_thick": lambda draw, h, w: _lama_strokes_torch(draw, h, w, "thick"),
    "box": _boxes_torch,
    "mixed": _mixed_torch,
}


def _primitives_torch(kind: str, n: int, height: int, width: int, seed: int, device: torch.device):
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return _TORCH_SAMPLERS[kind](_TorchDraw(n, generator, device), height, width)


# --------------------------------------------------------------------------------------------- public API


def _holes(primitives, n: int, height: int, width: int, grow=None):
    """Hole indicator (n, H, W): a NumPy array for NumPy primitives, a tensor on their device for torch ones."""
    capsules, boxes = primitives
    if isinstance(capsules, np.ndarray):
        return rasterise_numpy(capsules, boxes, n, height, width, grow)
    return rasterise_torch(capsules, boxes, n, height, width, grow)


def _to_masks(holes, device: torch.device) -> Tensor:
    """Hole indicator (n, H, W) → float masks (n, 1, H, W), 1 = known, on ``device``."""
    if isinstance(holes, Tensor) and holes.device.type == "cpu":
        holes = holes.numpy()
    if isinstance(holes, np.ndarray):  # NumPy's bool → float32 is many times faster than torch's on a CPU
        return torch.from_numpy(np.logical_not(holes).view(np.uint8).astype(np.float32)[:, None]).to(device)
    return torch.logical_not(holes).to(device=device, dtype=torch.float32).unsqueeze(1)


def _masks_of(primitives, n: int, height: int, width: int, device: torch.device) -> Tensor:
    """Float masks (n, 1, H, W) on ``device`` from primitives (NumPy ones are drawn straight as masks)."""
    capsules, boxes = primitives
    if isinstance(capsules, np.ndarray):
        masks = rasterise_numpy(capsules, boxes, n, height, width, as_masks=True)
        return torch.from_numpy(masks[:, None]).to(device)
    return _to_masks(_holes(primitives, n, height, width), device)


def _draw(kind: str, n: int, height: int, width: int, seed: int, device: torch.device, backend: str, first: int = 0):
    """Primitives of n masks: NumPy masks first … first + n − 1 of ``seed``, or one torch batch seeded by ``seed``."""
    if backend == "numpy":
        return _primitives_numpy(kind, range(first, first + n), height, width, seed)
    batch_seed = seed if first == 0 else int(np.random.SeedSequence(seed, spawn_key=(first,)).generate_state(1)[0])
    return _primitives_torch(kind, n, height, width, batch_seed, device)


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
    _check_kind(kind)
    n = _check_count(n)
    height, width = _check_size(size)
    seed = _check_seed(seed)
    device = torch.device(device)
    backend = _pick_backend(backend, device)
    primitives = _draw(kind, n, height, width, seed, device, backend)
    return _masks_of(primitives, n, height, width, device)


def example_mask(size: int) -> Tensor:
    """The lessons' fixed example mask (1, 1, size, size): a rectangle, a disk and a thick stroke as holes.

    Not random: lessons 04 and 05 use it so that every figure shows the same holes. Drawn on a 128-pixel
    design scaled to ``size``.
    """
    from skimage import draw

    height, width = _check_size(size)
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
    holes = _holes(own, count, height, width)
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
        return _holes(_select(_prefix(combined, as_array(amount)), masks, count), len(masks), height, width)

    upper = np.where(ratio <= low, available, own_count.astype(float))
    _bisect_into_bucket(by_prefix, holes, done, np.zeros(count), upper, low, high, steps)

    everything = (combined[0], combined[1])

    def by_growth(masks, values):
        return _holes(_select(everything, masks, count), len(masks), height, width, as_array(values))

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
    _check_kind(kind)
    n = _check_count(n)
    height, width = _check_size(size)
    low, high = _check_bucket(bucket)
    _check_bucket_reachable(low, high, height, width)
    seed = _check_seed(seed)
    device = torch.device(device)
    backend = _pick_backend(backend, device)
    found = []
    missing, first = n, 0
    for _ in range(max_rounds):
        if missing == 0:
            break
        own = _draw(kind, missing, height, width, seed, device, backend, first)
        extra_seed = int(np.random.SeedSequence(seed, spawn_key=(first, _EXTRA_MASKS)).generate_state(1)[0])
        extra = _draw(kind, missing * _EXTRA_MASKS, height, width, extra_seed, device, backend)
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
        return _to_masks(np.zeros((0, height, width), dtype=bool), device)
    return _to_masks(torch.cat(found) if isinstance(found[0], Tensor) else np.concatenate(found), device)


# --------------------------------------------------------------------------------------------- data loading


class MaskDataset(Dataset):
    """``length`` masks of one family; item i is mask i of ``generate(kind, length, size, seed)`` (NumPy path), (1, H, W).

    Each item depends only on (kind, size, seed, index), so any number of ``DataLoader`` workers, any
    shuffling and any resumption give the same mask for the same index, and different indices never
    share a random stream.
    """

    def __init__(self, kind: str, size: int | Sequence[int], length: int, seed: int = 0) -> None:
        _check_kind(kind)
        self.kind, self.size, self.length = kind, _check_size(size), _check_count(length)
        self.seed = _check_seed(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        if not -self.length <= index < self.length:
            raise IndexError(f"mask index {index} out of range for a data set of {self.length} masks")
        index %= self.length
        height, width = self.size
        primitives = _primitives_numpy(self.kind, [index], height, width, self.seed)
        return _masks_of(primitives, 1, height, width, torch.device("cpu"))[0]


class MaskStream(IterableDataset):
    """An endless stream of masks (1, H, W) of one family for a ``DataLoader``; safe with any number of workers.

    Worker w of W yields the masks with indices start + w, start + w + W, start + w + 2W, … of the NumPy
    path under ``seed``: workers never repeat each other's masks, and a given (seed, start, worker count)
    always yields the same sequence. Masks are drawn ``chunk`` at a time for speed.
    """

    def __init__(self, kind: str, size: int | Sequence[int], seed: int = 0, start: int = 0, chunk: int = 64) -> None:
        _check_kind(kind)
        self.kind, self.size, self.seed = kind, _check_size(size), _check_seed(seed)
        self.start, self.chunk = _check_count(start), max(1, _check_count(chunk))

    def __iter__(self) -> Iterator[Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        height, width = self.size
        index = self.start + worker
        while True:
            indices = index + workers * np.arange(self.chunk)
            primitives = _primitives_numpy(self.kind, indices, height, width, self.seed)
            yield from _masks_of(primitives, self.chunk, height, width, torch.device("cpu"))
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
    _check_kind(kind)
    batch_size = _check_count(batch_size)
    seed = _check_seed(seed)
    step = _check_count(start)
    while True:
        batch_seed = int(np.random.SeedSequence(seed, spawn_key=(step,)).generate_state(1)[0])
        yield generate(kind, batch_size, size, seed=batch_seed, device=device, backend=backend)
        step += 1
