"""LaMa's masks as LaMa's own generator draws them (advimman/lama, ``saicinpainting/training/data/masks.py``).

Kinds and the LaMa configuration each one follows (``LAMA_PRESETS`` holds them with LaMa's own names):

- ``"lama_thin"``, ``"lama_medium"``, ``"lama_thick"`` — the evaluation presets
  ``configs/data_gen/random_{thin,medium,thick}_{256,512}.yaml``;
- ``"mixed"`` — Big LaMa's training masks, ``configs/training/data/abl-04-256-mh-dist.yaml``;
- ``"box"`` — the boxes of that training mix alone.

What LaMa's code does, and these generators with it:

- ``MixedMaskGenerator`` picks **one** generator per mask, with probability proportional to its ``*_proba``.
  The medium and thick presets have ``irregular_proba: 1, box_proba: 0.3``, so a mask is all boxes with
  probability 0.3/1.3 ≈ 0.23 and all strokes otherwise; the training mix abl-04 has 1 : 1; thin has no boxes.
- Strokes (``make_random_irregular_mask``): its wrapper ``RandomIrregularMaskGenerator`` passes
  ``max_times + 1`` as ``max_times``, and ``randint(min_times, max_times + 1)`` then draws
  **min_times … max_times + 1** strokes. A stroke starts at a uniform pixel and has 1–5 segments; each
  segment has angle 0.01 + U{0…max_angle−1} radians (2·3.1415926 − angle on every even-numbered stroke),
  length 10 + U{0…max_len−1} and width 5 + U{0…max_width−1}; its end is
  ``clip(int(start + length·(sin, cos)(angle)), 0, (W, H))``.
- ``cv2.line`` of thickness t is wider than t: it fills a polygon of half-width t/2 (t/2 + ½ for odd t)
  *including its edges*, plus end discs of radius round(t/2). Measured against cv2 4.14 on 300 LaMa-like
  segments per width, its area is 1.40× the nominal capsule of radius t/2 at t = 5, 1.08× at t = 10 and
  1.003× at t = 104. These generators draw a capsule of radius ⌈t/2⌉ + ``CV2_EXTRA_RADIUS`` (0.35 px), whose
  area matched cv2's within 1.1 % for every t measured (5…14, 20, 30, 54, 104; IoU ≥ 0.95).
- Boxes (``make_random_rectangle_mask``): min_times … max_times boxes, sides U{bbox_min_size … bbox_max_size}
  (at most the side minus two margins, minus one), top-left corner uniform with ``margin`` kept to the border.

Not reproduced: LaMa's evaluation *data sets* also drop masks with more than 50 % hole (``max_tamper_area``)
and crop each mask to a square around its holes; these generators return the generator's masks as drawn.
Other sizes use the presets of the nearer resolution (256² below a shorter side of 384, else 512²; the
training mix exists at 256² only) with lengths, widths, box sides and margins scaled by the shorter side.

Measured side by side with LaMa's own code (cv2 4.14) at 256², mean hole ratio (LaMa's code / this module):
see ``tests/data/lama_mask_reference.json`` and ``benchmarks/README.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pconv_lessons.masks._common import TorchDraw, chain_capsules_torch

LAMA_TWO_PI = 2 * 3.1415926  # LaMa mirrors angles about this value, not 2π
CV2_EXTRA_RADIUS = 0.35  # cv2.line(thickness=t) ≈ a capsule of radius ⌈t/2⌉ + 0.35 (see the module docstring)
MAX_SEGMENTS = 5  # 1 + randint(5) segments per stroke


@dataclass(frozen=True)
class Irregular:
    """LaMa's ``irregular_kwargs``: a mask has min_times … max_times + 1 strokes (see the module docstring)."""

    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int = 4


@dataclass(frozen=True)
class Boxes:
    """LaMa's ``box_kwargs``: min_times … max_times boxes of sides bbox_min_size … bbox_max_size, ``margin`` inside."""

    margin: int
    bbox_min_size: int
    bbox_max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class LamaMix:
    """A ``MixedMaskGenerator`` configuration: strokes with weight ``irregular_proba``, boxes with ``box_proba``."""

    irregular: Irregular
    boxes: Boxes | None = None
    irregular_proba: float = 1.0
    box_proba: float = 0.0

    @property
    def box_share(self) -> float:
        """Probability that a mask is drawn by the box generator."""
        return self.box_proba / (self.irregular_proba + self.box_proba)


_THICK_256 = Irregular(min_times=1, max_times=5, max_width=100, max_len=200)
# (preset, resolution) -> configuration, copied from advimman/lama configs/data_gen/random_*_{256,512}.yaml and
# configs/training/data/abl-04-256-mh-dist.yaml (``mask_gen_kwargs``).
LAMA_PRESETS: dict[tuple[str, int], LamaMix] = {
    ("thin", 256): LamaMix(Irregular(min_times=4, max_times=50, max_width=10, max_len=40)),
    ("thin", 512): LamaMix(Irregular(min_times=4, max_times=70, max_width=20, max_len=100)),
    ("medium", 256): LamaMix(Irregular(min_times=4, max_times=5, max_width=50, max_len=100),
                             Boxes(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5), box_proba=0.3),
    ("medium", 512): LamaMix(Irregular(min_times=4, max_times=10, max_width=100, max_len=200),
                             Boxes(margin=0, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=5), box_proba=0.3),
    ("thick", 256): LamaMix(_THICK_256, Boxes(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
                            box_proba=0.3),
    ("thick", 512): LamaMix(Irregular(min_times=1, max_times=5, max_width=250, max_len=450),
                            Boxes(margin=10, bbox_min_size=30, bbox_max_size=300, min_times=1, max_times=4), box_proba=0.3),
    ("abl-04", 256): LamaMix(_THICK_256, Boxes(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=4),
                             box_proba=1.0),
}
KIND_PRESETS: dict[str, str] = {"lama_thin": "thin", "lama_medium": "medium", "lama_thick": "thick",
                                "mixed": "abl-04", "box": "abl-04"}


def preset_for(preset: str, height: int, width: int) -> tuple[LamaMix, float]:
    """The configuration for an image of this size and the factor from its pixel sizes to the image.

    The nearer published resolution (256 below a shorter side of 384, else 512, where it exists); the factor is
    shorter side / resolution, exactly 1 at the published sizes.
    """
    side = min(height, width)
    reference = 512 if side >= 384 and (preset, 512) in LAMA_PRESETS else 256
    return LAMA_PRESETS[(preset, reference)], side / reference


# --------------------------------------------------------------------------------------------- NumPy, one mask


@dataclass(frozen=True)
class StrokeDraws:
    """LaMa strokes of one mask before their geometry, one row per stroke:
    [x0, y0, segments, angle × 5, length × 5, radius × 5]. Their vertices are computed for many masks at once."""

    table: np.ndarray


def lama_np(rng: np.random.Generator, height: int, width: int, kind: str):
    """One mask of ``kind`` ("lama_thin", …, "mixed", "box"): ``StrokeDraws``, or (no capsules, boxes (b, 4))."""
    mix, scale = preset_for(KIND_PRESETS[kind], height, width)
    if kind == "box" or (mix.boxes is not None and rng.random() < mix.box_share):
        return _boxes_np(rng, height, width, mix.boxes, scale)
    return _strokes_np(rng, height, width, mix.irregular, scale)


def _strokes_np(rng: np.random.Generator, height: int, width: int, p: Irregular, scale: float) -> StrokeDraws:
    m = MAX_SEGMENTS
    strokes = int(rng.integers(p.min_times, p.max_times + 2))
    highs = np.array([width, height, m] + [p.max_angle] * m + [p.max_len] * m + [p.max_width] * m, dtype=np.float64)
    table = np.floor(rng.random((strokes, len(highs))) * highs)  # every column uniform on 0…high−1
    table[:, 2] += 1  # 1…5 segments
    angle = table[:, 3:3 + m] + 0.01
    angle[::2] = LAMA_TWO_PI - angle[::2]  # every even-numbered stroke mirrored
    table[:, 3:3 + m] = angle
    table[:, 3 + m:3 + 2 * m] = (10 + table[:, 3 + m:3 + 2 * m]) * scale
    table[:, 3 + 2 * m:] = cv2_radius(5 + table[:, 3 + 2 * m:], scale)
    return StrokeDraws(table)


def cv2_radius(thickness, scale: float = 1.0):
    """Radius of the capsule that covers what ``cv2.line(..., thickness)`` covers (thickness in the preset's pixels)."""
    return (thickness + thickness % 2) / 2 * scale + CV2_EXTRA_RADIUS


def stroke_capsules_np(table: np.ndarray, owner: np.ndarray, height: int, width: int) -> np.ndarray:
    """Capsules (K, 6) of the strokes in ``table`` (rows of ``StrokeDraws``), first column = ``owner``."""
    m = MAX_SEGMENTS
    angle, length, radius = table[:, 3:3 + m], table[:, 3 + m:3 + 2 * m], table[:, 3 + 2 * m:]
    step = np.stack([length * np.sin(angle), length * np.cos(angle)])  # (x, y) × strokes × segments
    vertices = np.empty((2, len(table), m + 1))
    vertices[:, :, 0] = table[:, :2].T
    border = np.array([[width], [height]], dtype=np.float64)
    for j in range(m):  # each vertex is clipped before the next step, as LaMa's loop does
        np.minimum(np.maximum(np.trunc(vertices[:, :, j] + step[:, :, j]), 0), border, out=vertices[:, :, j + 1])
    xs, ys = vertices
    valid = np.arange(m)[None, :] < table[:, 2:3]
    caps = np.stack([np.broadcast_to(owner[:, None], valid.shape), xs[:, :-1], ys[:, :-1], xs[:, 1:], ys[:, 1:],
                     radius], axis=-1)
    return caps[valid]


def _boxes_np(rng: np.random.Generator, height: int, width: int, p: Boxes, scale: float):
    largest = _largest_side(p, height, width, scale)
    margin = p.margin * scale
    u = rng.random(1 + 4 * p.max_times).tolist()  # every integer U{lo…hi−1} below is lo + ⌊u·(hi − lo)⌋
    boxes = []
    for k in range(p.min_times + int(u[0] * (p.max_times + 1 - p.min_times))):
        u_w, u_h, u_x, u_y = u[1 + 4 * k:5 + 4 * k]
        box_w = (p.bbox_min_size + int(u_w * (largest - p.bbox_min_size))) * scale
        box_h = (p.bbox_min_size + int(u_h * (largest - p.bbox_min_size))) * scale
        x0 = margin + int(u_x * (math.floor(width - 2 * margin - box_w) + 1))
        y0 = margin + int(u_y * (math.floor(height - 2 * margin - box_h) + 1))
        boxes.append((x0, y0, x0 + box_w, y0 + box_h))
    return np.zeros((0, 5)), np.array(boxes, dtype=np.float64)


def _largest_side(p: Boxes, height: int, width: int, scale: float) -> int:
    """Exclusive upper bound of a box side in preset pixels: bbox_max_size + 1, or less on a small image."""
    return min(p.bbox_max_size + 1, round(height / scale) - 2 * p.margin, round(width / scale) - 2 * p.margin)


# --------------------------------------------------------------------------------------------- torch, a batch


def lama_torch(draw: TorchDraw, height: int, width: int, kind: str):
    """A batch of ``kind`` masks: flat capsules (K, 6) and boxes (B, 5), mask index first."""
    mix, scale = preset_for(KIND_PRESETS[kind], height, width)
    if kind == "box":
        return draw.no_capsules(), _boxes_torch(draw, height, width, mix.boxes, scale, None)
    if mix.boxes is None:
        return _strokes_torch(draw, height, width, mix.irregular, scale, None), draw.no_boxes()
    boxed = draw.uniform() < mix.box_share
    return (_strokes_torch(draw, height, width, mix.irregular, scale, ~boxed),
            _boxes_torch(draw, height, width, mix.boxes, scale, boxed))


def _strokes_torch(draw: TorchDraw, height: int, width: int, p: Irregular, scale: float, chosen: Tensor | None):
    s, m = p.max_times + 1, MAX_SEGMENTS
    strokes = draw.integers(p.min_times, p.max_times + 2)
    segments = 1 + draw.integers(0, m, s)
    angle = 0.01 + draw.integers(0, p.max_angle, s, m)
    mirrored = (torch.arange(s, device=draw.device) % 2 == 0)[:, None]
    angle = torch.where(mirrored, LAMA_TWO_PI - angle, angle)
    length = (10 + draw.integers(0, p.max_len, s, m)) * scale
    radius = cv2_radius(5 + draw.integers(0, p.max_width, s, m), scale)
    x, y = draw.integers(0, width, s), draw.integers(0, height, s)
    xs, ys = [x], [y]
    for j in range(m):
        x = torch.trunc(x + length[..., j] * torch.sin(angle[..., j])).clamp(0, width)
        y = torch.trunc(y + length[..., j] * torch.cos(angle[..., j])).clamp(0, height)
        xs.append(x)
        ys.append(y)
    capsules = chain_capsules_torch(torch.stack(xs, -1), torch.stack(ys, -1), radius)
    stroke_valid = torch.arange(s, device=draw.device)[None, :] < strokes[:, None]
    valid = stroke_valid[..., None] & (torch.arange(m, device=draw.device) < segments[..., None])
    if chosen is not None:
        valid = valid & chosen[:, None, None]
    return draw.flat(capsules, valid)


def _boxes_torch(draw: TorchDraw, height: int, width: int, p: Boxes, scale: float, chosen: Tensor | None):
    count = draw.integers(p.min_times, p.max_times + 1)
    largest = _largest_side(p, height, width, scale)
    margin = p.margin * scale
    box_w = draw.integers(p.bbox_min_size, largest, p.max_times) * scale
    box_h = draw.integers(p.bbox_min_size, largest, p.max_times) * scale
    x0 = margin + draw.integers(0, torch.floor(width - 2 * margin - box_w) + 1, p.max_times)
    y0 = margin + draw.integers(0, torch.floor(height - 2 * margin - box_h) + 1, p.max_times)
    boxes = torch.stack([x0, y0, x0 + box_w, y0 + box_h], dim=-1)
    valid = torch.arange(p.max_times, device=draw.device)[None, :] < count[:, None]
    if chosen is not None:
        valid = valid & chosen[:, None]
    return draw.flat(boxes, valid)
