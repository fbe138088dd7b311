"""PConv-Keras's random masks (``"shapes"``): lines, filled circles and elliptical arcs.

The PConv paper's own masks came from occlusion estimates between video frames; this open
reimplementation (MathiasGruber/PConv-Keras, ``MaskGenerator``) draws shapes instead: 1–20 lines between
uniform points, 1–20 filled circles and 1–20 elliptical arcs, thickness and radius uniform in
3…⌊0.03·(H+W)⌋ pixels. An arc is drawn as ``ARC_SEGMENTS`` capsules.
"""

from __future__ import annotations

import numpy as np
import torch

from pconv_lessons.masks._common import TorchDraw, chain_capsules_np, chain_capsules_torch

ARC_SEGMENTS = 16


def _arc_points(first, last, centre_x, centre_y, axis_x, axis_y, rotation):
    """Vertices (arcs, ARC_SEGMENTS + 1) along elliptical arcs from angle ``first`` to ``last`` (NumPy or torch)."""
    steps = np.linspace(0.0, 1.0, ARC_SEGMENTS + 1) if isinstance(first, np.ndarray) else torch.linspace(
        0.0, 1.0, ARC_SEGMENTS + 1, device=first.device, dtype=first.dtype)
    xp = np if isinstance(first, np.ndarray) else torch
    theta = first[:, None] + (last - first)[:, None] * steps
    local_x, local_y = axis_x[:, None] * xp.cos(theta), axis_y[:, None] * xp.sin(theta)
    cos_r, sin_r = xp.cos(rotation)[:, None], xp.sin(rotation)[:, None]
    return centre_x[:, None] + local_x * cos_r - local_y * sin_r, centre_y[:, None] + local_x * sin_r + local_y * cos_r


def shapes_np(rng: np.random.Generator, height: int, width: int):
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
    arcs = chain_capsules_np(xs, ys, radius[:, None], np.ones((n_arcs, ARC_SEGMENTS), dtype=bool))
    return np.concatenate([lines, circles, arcs]), np.zeros((0, 4))


def shapes_torch(draw: TorchDraw, height: int, width: int):
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
    arcs = chain_capsules_torch(xs.view(draw.n, 20, -1), ys.view(draw.n, 20, -1), radius[..., None])
    arc_valid = valid[:, 2, :, None].expand(arcs.shape[:-1])
    capsules = torch.cat([draw.flat(lines, valid[:, 0]), draw.flat(circles, valid[:, 1]), draw.flat(arcs, arc_valid)])
    return capsules, draw.no_boxes()
