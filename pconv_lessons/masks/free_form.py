"""DeepFill v2's free-form brush strokes (``"free_form"``), from its ``random_ff_mask`` recipe.

1–3 strokes of 4–11 segments; each segment's direction an absolute heading (not a turn) drawn in
2π/5 ∓ U(0, 2π/15), reflected to 2π minus the draw on even segments; step lengths N(r, r/2) clipped to [0, 2r]
with r = √(H² + W²)/8 (DeepFill v2: ⌊r/2⌋); brush width U(12, 40) at 256² (scaled with the shorter side), a
diameter; round caps at every vertex (a chain of capsules); the mask flipped left–right and up–down with
probability ½ each (DeepFill v2's code draws these flips but discards the flipped image).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pconv_lessons.masks._common import TWO_PI, TorchDraw, chain_capsules_np, chain_capsules_torch

MAX_VERTICES = 11


def free_form_np(rng: np.random.Generator, height: int, width: int):
    step_mean = math.hypot(height, width) / 8.0
    strokes = int(rng.integers(1, 4))
    vertices = rng.integers(4, 12, strokes)
    low = 2 * math.pi / 5 - rng.uniform(0, 2 * math.pi / 15, strokes)
    high = 2 * math.pi / 5 + rng.uniform(0, 2 * math.pi / 15, strokes)
    angle = rng.uniform(low[:, None], high[:, None], (strokes, MAX_VERTICES))
    angle[:, ::2] = TWO_PI - angle[:, ::2]
    step = np.clip(rng.normal(step_mean, step_mean / 2, (strokes, MAX_VERTICES)), 0, 2 * step_mean)
    brush = np.floor(rng.uniform(12, 40, strokes)) * min(height, width) / 256.0
    xs = np.empty((strokes, MAX_VERTICES + 1))
    ys = np.empty_like(xs)
    xs[:, 0], ys[:, 0] = rng.integers(0, width, strokes), rng.integers(0, height, strokes)
    for j in range(MAX_VERTICES):
        xs[:, j + 1] = np.trunc(np.clip(xs[:, j] + step[:, j] * np.cos(angle[:, j]), 0, width))
        ys[:, j + 1] = np.trunc(np.clip(ys[:, j] + step[:, j] * np.sin(angle[:, j]), 0, height))
    flip_x, flip_y = rng.normal(size=2) > 0
    if flip_x:
        xs = width - 1 - xs
    if flip_y:
        ys = height - 1 - ys
    valid = np.arange(MAX_VERTICES)[None, :] < vertices[:, None]
    return chain_capsules_np(xs, ys, brush[:, None] / 2.0, valid), np.zeros((0, 4))


def free_form_torch(draw: TorchDraw, height: int, width: int):
    step_mean = math.hypot(height, width) / 8.0
    v = MAX_VERTICES
    strokes = draw.integers(1, 4)
    vertices = draw.integers(4, 12, 3)
    low = 2 * math.pi / 5 - draw.uniform(3, high=2 * math.pi / 15)
    high = 2 * math.pi / 5 + draw.uniform(3, high=2 * math.pi / 15)
    angle = low[..., None] + (high - low)[..., None] * draw.uniform(3, v)
    sign_flip = (torch.arange(v, device=draw.device) % 2 == 0)
    angle = torch.where(sign_flip, TWO_PI - angle, angle)
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
    capsules = chain_capsules_torch(xs, ys, brush[..., None] / 2.0)
    stroke_valid = torch.arange(3, device=draw.device)[None, :] < strokes[:, None]
    valid = stroke_valid[..., None] & (torch.arange(v, device=draw.device) < vertices[..., None])
    return draw.flat(capsules, valid), draw.no_boxes()
