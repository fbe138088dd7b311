"""Checks for the DeepFill v2 brush stroke a student writes in lesson 06.

The student's ``stroke(rng, height, width)`` returns one stroke as a chain of capsules ``(ax, ay, bx, by, r)``.
DeepFill v2's ``brush_stroke_mask`` (``inpaint_ops.py``) draws it as follows, with r̄ = √(H² + W²)/8:

    n ~ U{4 … 11} segments;  θ_min = 2π/5 − U(0, 2π/15),  θ_max = 2π/5 + U(0, 2π/15)   (once per stroke)
    heading_k = 2π − U(θ_min, θ_max) for even k, U(θ_min, θ_max) for odd k              (absolute, not a turn)
    step_k ~ N(r̄, r̄/2) clipped to [0, 2r̄];   P_{k+1} = clip(P_k + step_k · (cos, sin)(heading_k), [0, W] × [0, H])
    brush width w ~ U(12, 40), a diameter: every capsule of the stroke has radius w/2 (round caps at the vertices)

``check_free_form_stroke`` holds the student's strokes to these rules one by one (a chain inside the image, one
radius per stroke in [6, 20], every segment count 4 … 11 and no other, each heading inside its band — on segments
that did not touch the border and are long enough for a whole-pixel vertex to keep the angle within 0.1 rad) and,
in distribution, to the package's ``free_form`` generator: mean and spread of the segment lengths and the mean hole
ratio of 256² masks of 1–3 strokes, within a few standard errors. The structural rules are the independent part;
the package itself is held to DeepFill v2's own code by ``tests/test_masks.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pconv_lessons.masks import generate, hole_ratio
from pconv_lessons.masks.free_form import free_form_np
from pconv_lessons.raster import rasterise_numpy

StrokeFn = Callable[[np.random.Generator, int, int], Sequence[Sequence[float]]]

SIZE = 256
SEGMENTS = range(4, 12)
RADIUS_RANGE = (6.0, 20.0)  # half of the brush width U(12, 40)
HEADING_BAND = (4 * math.pi / 15, 8 * math.pi / 15)  # 2π/5 ∓ 2π/15
HEADING_TOLERANCE = 0.1  # rad: a whole-pixel vertex moves a 16-pixel segment's direction by at most atan(√2/16)
MIN_HEADING_LENGTH = 16.0
STROKES = 1500
MASKS = 600
LENGTH_TOLERANCE = 0.06  # relative, for the mean and the spread of the segment lengths
HOLE_RATIO_TOLERANCE = 0.02  # about 4 standard errors of the difference of two means of 600 masks


@dataclass(frozen=True)
class StrokeReport:
    """What ``check_free_form_stroke`` measured (lengths in pixels at 256²)."""

    mean_length: float
    package_mean_length: float
    mean_hole_ratio: float
    package_mean_hole_ratio: float


def _as_capsules(stroke: Sequence[Sequence[float]]) -> np.ndarray:
    capsules = np.asarray(stroke, dtype=np.float64)
    if capsules.ndim != 2 or capsules.shape[1] != 5:
        raise AssertionError(f"a stroke must be a list of capsules (ax, ay, bx, by, r); got an array shaped "
                             f"{capsules.shape}")
    return capsules


def _check_one_stroke(capsules: np.ndarray, height: int, width: int) -> None:
    count = len(capsules)
    if count not in SEGMENTS:
        raise AssertionError(f"a stroke has {count} segments (capsules); DeepFill v2 draws 4–11 "
                             f"(num_vertex = randint(4, 12) new vertices after the start point)")
    if not np.array_equal(capsules[1:, :2], capsules[:-1, 2:4]):
        raise AssertionError("the capsules of a stroke must form a chain: each starts where the previous one ended")
    xs, ys = capsules[:, [0, 2]], capsules[:, [1, 3]]
    if xs.min() < 0 or xs.max() > width or ys.min() < 0 or ys.max() > height:
        raise AssertionError(f"a vertex lies outside the image [0, {width}] × [0, {height}]: clip every new vertex")
    radius = capsules[:, 4]
    if not np.all(radius == radius[0]):
        raise AssertionError("one stroke has one brush: every capsule of a stroke needs the same radius")
    if not RADIUS_RANGE[0] <= radius[0] <= RADIUS_RANGE[1]:
        raise AssertionError(f"a brush radius of {radius[0]:.1f} px: the width U(12, 40) is a diameter, so the radius "
                             f"lies in [{RADIUS_RANGE[0]:g}, {RADIUS_RANGE[1]:g}]")


def _check_headings(capsules: np.ndarray, height: int, width: int) -> None:
    dx, dy = capsules[:, 2] - capsules[:, 0], capsules[:, 3] - capsules[:, 1]
    ends_inside = (capsules[:, 2] > 0) & (capsules[:, 2] < width) & (capsules[:, 3] > 0) & (capsules[:, 3] < height)
    measurable = ends_inside & (np.hypot(dx, dy) >= MIN_HEADING_LENGTH)
    heading = np.arctan2(dy, dx)  # image rows grow downwards: odd segments go down (dy > 0), even ones up
    expected_sign = np.where(np.arange(len(capsules)) % 2 == 1, 1.0, -1.0)
    low, high = HEADING_BAND
    inside = ((heading * expected_sign >= low - HEADING_TOLERANCE)
              & (heading * expected_sign <= high + HEADING_TOLERANCE))
    wrong = measurable & ~inside
    if wrong.any():
        k = int(np.flatnonzero(wrong)[0])
        raise AssertionError(
            f"segment {k} of a stroke heads at {math.degrees(heading[k]):.0f}°; DeepFill v2's angles are absolute "
            f"headings (not turns added up), 2π/5 ± 2π/15 = 48°…96° for odd segments and 2π minus that "
            f"(−96°…−48°) for even ones (segment 0 is even)")


def _segment_lengths(capsules: np.ndarray) -> np.ndarray:
    return np.hypot(capsules[:, 2] - capsules[:, 0], capsules[:, 3] - capsules[:, 1])


def _masks_from(stroke: StrokeFn, rng: np.random.Generator, n: int) -> np.ndarray:
    rows = [[index, *capsule] for index in range(n)
            for _ in range(int(rng.integers(1, 4))) for capsule in _as_capsules(stroke(rng, SIZE, SIZE))]
    return rasterise_numpy(np.array(rows), np.zeros((0, 5)), n, SIZE, SIZE)


def check_free_form_stroke(stroke: StrokeFn, seed: int = 0) -> StrokeReport:
    """``AssertionError`` naming the first rule of DeepFill v2's stroke (module docstring) that ``stroke`` breaks."""
    rng = np.random.default_rng(seed)
    strokes = [_as_capsules(stroke(rng, SIZE, SIZE)) for _ in range(STROKES)]
    for capsules in strokes:
        _check_one_stroke(capsules, SIZE, SIZE)
    missing = sorted(set(SEGMENTS) - {len(capsules) for capsules in strokes})
    if missing:
        raise AssertionError(f"no stroke with {missing} segments in {STROKES}: the count is uniform on 4–11")
    for capsules in strokes:
        _check_headings(capsules, SIZE, SIZE)

    lengths = np.concatenate([_segment_lengths(capsules) for capsules in strokes])
    package_rng = np.random.default_rng(seed + 1)
    package_lengths = np.concatenate([_segment_lengths(free_form_np(package_rng, SIZE, SIZE)[0])
                                      for _ in range(STROKES // 2)])  # 1–3 strokes per call: about as many
    for what, mine, theirs in (("mean", lengths.mean(), package_lengths.mean()),
                               ("spread (std)", lengths.std(), package_lengths.std())):
        if abs(mine - theirs) > LENGTH_TOLERANCE * theirs:
            raise AssertionError(f"the {what} of your segment lengths is {mine:.1f} px, the package's {theirs:.1f} px: "
                                 f"a step is N(r̄, r̄/2) clipped to [0, 2r̄] with r̄ = √(H² + W²)/8")

    mine_ratio = float(_masks_from(stroke, rng, MASKS).mean())
    package_ratio = float(hole_ratio(generate("free_form", MASKS, SIZE, seed=seed)).mean())
    if abs(mine_ratio - package_ratio) > HOLE_RATIO_TOLERANCE:
        raise AssertionError(f"masks of 1–3 of your strokes have a mean hole ratio of {mine_ratio:.3f}, the package's "
                             f"free_form masks {package_ratio:.3f}")
    return StrokeReport(float(lengths.mean()), float(package_lengths.mean()), mine_ratio, package_ratio)
