"""MaskCanvas: hand-counted strokes, a brute-force rasteriser, erase, undo/redo and the mask convention."""

import itertools
import math
import random
import numpy as np
import pytest
import torch
from scipy import ndimage

from pconv_lessons import masks
from pconv_lessons.raster import capsule_distance_masks
from pconv_lessons.widgets import MASK_KINDS, MaskCanvas
from pconv_lessons.widgets import canvas as canvas_module


def holes(canvas):
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(canvas.hole))}


def brute_force_stroke(height, width, points, brush_size):
    """The rasterisation rule pixel by pixel: distance to a segment via its endpoints or its perpendicular foot."""
    radius = brush_size / 2
    segments = list(zip(points[:-1], points[1:])) or [(points[0], points[0])]
    painted = set()
    for row in range(height):
        for col in range(width):
            for (ax, ay), (bx, by) in segments:
                distances = [math.hypot(col - ax, row - ay), math.hypot(col - bx, row - by)]
                length = math.hypot(bx - ax, by - ay)
                if length > 0:
                    along = ((col - ax) * (bx - ax) + (row - ay) * (by - ay)) / length
                    if 0 <= along <= length:
                        distances.append(abs((col - ax) * (by - ay) - (row - ay) * (bx - ax)) / length)
                if min(distances) <= radius + 1e-9:
                    painted.add((row, col))
                    break
    return painted


@pytest.mark.parametrize(
    ("brush_size", "expected"),
    [
        (1, {(10, 12)}),
        (3, {(r, c) for r in (9, 10, 11) for c in (11, 12, 13)}),
        # 5×5 block without its corners: (±2, ±2) lies √8 > 2.5 away; (±2, ±1) lies √5 ≤ 2.5 away
        (5, {(10 + dr, 12 + dc) for dr in range(-2, 3) for dc in range(-2, 3) if abs(dr) + abs(dc) < 4}),
    ],
)
def test_dot_at_a_pixel_centre_paints_the_hand_counted_pixels(brush_size, expected):
    canvas = MaskCanvas(20, 25)
    canvas.stroke([(12, 10)], brush_size=brush_size)  # x = column 12, y = row 10
    assert holes(canvas) == expected
    assert len(expected) == {1: 1, 3: 9, 5: 21}[brush_size]


def test_horizontal_stroke_is_three_rows_by_length_plus_three_columns():
    canvas = MaskCanvas(20, 30)
    canvas.stroke([(5, 10), (15, 10)], brush_size=3)
    expected = {(r, c) for r in (9, 10, 11) for c in range(4, 17)}
    assert holes(canvas) == expected
    assert len(expected) == 3 * (10 + 3)


def test_thin_diagonal_stroke_paints_only_the_diagonal():
    canvas = MaskCanvas(6, 6)
    canvas.stroke([(0, 0), (3, 3)], brush_size=1)  # off-diagonal neighbours lie 1/√2 > 0.5 away
    assert holes(canvas) == {(0, 0), (1, 1), (2, 2), (3, 3)}


def test_even_brush_on_a_half_pixel_point_paints_a_two_by_two_block():
    canvas = MaskCanvas(8, 8)
    canvas.stroke([(3.5, 4.5)], brush_size=2)  # the four nearest centres lie √0.5 ≈ 0.71 ≤ 1 away, the next √2.5 > 1
    assert holes(canvas) == {(4, 3), (4, 4), (5, 3), (5, 4)}


@pytest.mark.parametrize("seed", range(6))
def test_random_polylines_match_the_brute_force_rule(seed):
    rng = random.Random(seed)
    height, width = 23, 31
    points = [(rng.uniform(-5, width + 5), rng.uniform(-5, height + 5)) for _ in range(rng.randint(1, 4))]
    brush = rng.choice([1, 2, 3, 4.5, 7, 12])
    canvas = MaskCanvas(height, width)
    canvas.stroke(points, brush_size=brush)
    assert holes(canvas) == brute_force_stroke(height, width, points, brush)


def test_a_fast_move_leaves_no_gap():
    canvas = MaskCanvas(40, 120)
    canvas.stroke([(3, 5), (110, 35)], brush_size=4)
    _, components = ndimage.label(canvas.hole)
    assert components == 1
    dots_only = MaskCanvas(40, 120)
    dots_only.stroke([(3, 5)], brush_size=4)
    dots_only.stroke([(110, 35)], brush_size=4)
    assert canvas.hole.sum() > 5 * dots_only.hole.sum()


def test_mask_tensor_follows_the_course_convention():
    canvas = MaskCanvas(12, 14, brush_size=3)
    canvas.stroke([(4, 4)])
    mask = canvas.mask
    assert mask.shape == (1, 1, 12, 14) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert int((mask == 0).sum()) == 9 and mask[0, 0, 4, 4] == 0 and mask[0, 0, 0, 0] == 1
    assert canvas.hole_ratio == pytest.approx(9 / (12 * 14))


def test_strokes_are_clipped_to_the_image():
    canvas = MaskCanvas(10, 10)
    canvas.stroke([(0, 0)], brush_size=3)  # only the quarter inside the image
    assert holes(canvas) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    canvas.stroke([(-20, -20), (-20, 40)], brush_size=3)  # entirely outside: nothing, but still a step
    assert len(holes(canvas)) == 4 and canvas.can_undo


def test_erase_restores_known_pixels():
    canvas = MaskCanvas(20, 30)
    canvas.stroke([(5, 10), (15, 10)], brush_size=3)
    canvas.stroke([(10, 10)], brush_size=1, erase=True)
    assert (10, 10) not in holes(canvas) and len(holes(canvas)) == 39 - 1
    canvas.stroke([(5, 10), (15, 10)], brush_size=3, erase=True)
    assert holes(canvas) == set()


def test_undo_and_redo_walk_the_history():
    canvas = MaskCanvas(20, 20, brush_size=3)
    assert not canvas.can_undo and canvas.undo() is False and canvas.redo() is False
    canvas.stroke([(5, 5)])
    first = holes(canvas)
    canvas.stroke([(12, 12)])
    both = holes(canvas)
    assert canvas.undo() is True and holes(canvas) == first
    assert canvas.undo() is True and holes(canvas) == set()
    assert canvas.undo() is False
    assert canvas.redo() is True and holes(canvas) == first
    assert canvas.redo() is True and holes(canvas) == both
    assert not canvas.can_redo


def test_a_new_stroke_forgets_what_could_be_redone():
    canvas = MaskCanvas(20, 20, brush_size=3)
    canvas.stroke([(5, 5)])
    canvas.undo()
    canvas.stroke([(12, 12)])
    assert not canvas.can_redo and canvas.redo() is False
    assert holes(canvas) == {(r, c) for r in (11, 12, 13) for c in (11, 12, 13)}


def test_continue_last_makes_one_undo_step():
    canvas = MaskCanvas(20, 20, brush_size=1)
    canvas.stroke([(1, 1)])
    canvas.stroke([(2, 2)])
    canvas.stroke([(2, 2), (2, 8)], continue_last=True)
    assert len(holes(canvas)) == 1 + 7
    canvas.undo()
    assert holes(canvas) == {(1, 1)}


def test_clear_is_undoable():
    canvas = MaskCanvas(10, 10, brush_size=3)
    canvas.stroke([(5, 5)])
    canvas.clear()
    assert holes(canvas) == set()
    canvas.undo()
    assert len(holes(canvas)) == 9


def test_history_is_bounded():
    canvas = MaskCanvas(10, 10, brush_size=1, max_history=3)
    for column in range(6):
        canvas.stroke([(column, 0)])
    assert sum(canvas.undo() for _ in range(10)) == 3
    assert holes(canvas) == {(0, 0), (0, 1), (0, 2)}


def test_set_mask_replaces_the_drawing_and_is_undoable():
    canvas = MaskCanvas(6, 8)
    mask = torch.ones(1, 1, 6, 8)
    mask[..., 2:4, 3:7] = 0
    canvas.set_mask(mask)
    assert torch.equal(canvas.mask, mask)
    canvas.undo()
    assert holes(canvas) == set()


def test_start_from_uses_the_mask_generator_with_kind_size_and_seed(monkeypatch):
    calls = []

    def generate(kind, n, size, seed=None, device="cpu"):
        calls.append((kind, n, size, seed))
        mask = torch.ones(n, 1, *size)
        mask[..., : seed + 1, :] = 0
        return mask

    monkeypatch.setattr(canvas_module, "generate", generate)
    canvas = MaskCanvas(9, 7)
    canvas.stroke([(6, 8)], brush_size=1)
    canvas.start_from("lama_thick", seed=2)
    assert calls == [("lama_thick", 1, (9, 7), 2)]
    assert holes(canvas) == {(r, c) for r in range(3) for c in range(7)}
    canvas.undo()
    assert holes(canvas) == {(8, 6)}


def test_every_change_notifies_listeners():
    canvas = MaskCanvas(10, 10)
    seen = []
    canvas.on_change(lambda: seen.append(canvas.hole_ratio))
    canvas.stroke([(5, 5)], brush_size=1)
    canvas.clear()
    canvas.undo()
    canvas.redo()
    canvas.set_mask(torch.zeros(1, 1, 10, 10))
    assert seen == [0.01, 0.0, 0.01, 0.0, 1.0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.stroke([]), "non-empty"),
        (lambda c: c.stroke([(1, float("nan"))]), "finite"),
        (lambda c: c.stroke([(1, 2, 3)]), r"\(x, y\) pairs"),
        (lambda c: c.stroke([5]), r"\(x, y\) pairs"),
        (lambda c: c.stroke([(1, 1)], brush_size=0), "brush_size"),
        (lambda c: c.set_mask(torch.ones(1, 1, 4, 4)), "10×10"),
        (lambda c: c.set_mask(torch.full((10, 10), 2.0)), r"\[0, 1\]"),
        (lambda c: c.start_from("circles", 0), "unknown mask kind"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(MaskCanvas(10, 10))


def test_bad_canvas_size_raises():
    with pytest.raises(ValueError, match="positive integers"):
        MaskCanvas(0, 10)


def test_mask_kinds_are_the_course_families():
    assert MASK_KINDS == ("shapes", "free_form", "lama_thin", "lama_medium", "lama_thick", "box", "mixed")


@pytest.mark.parametrize("kind", ["box", "lama_thick"])
def test_start_from_gives_the_generated_mask_itself(kind):
    canvas = MaskCanvas(48, 40)
    canvas.start_from(kind, seed=5)
    expected = masks.generate(kind, 1, (48, 40), seed=5)
    assert torch.equal(canvas.mask, expected) and canvas.hole_ratio > 0


@pytest.mark.parametrize("vertical", [False, True])
def test_axis_parallel_strokes_paint_the_pixels_exactly_on_their_edge(vertical):
    """Integer ends and even brushes put pixel centres exactly r from the stroke; ≤ paints them, on both sides.

    The NumPy rasteriser once nudged a vertical segment's dx to 1e-12, which tilted its edge and dropped the tied
    column on one side (1008 of these 6912 strokes drew wrong).
    """
    mismatches = []
    for ax, ay, length, brush, sign in itertools.product(range(2, 8), range(2, 8), range(6), range(1, 9), (1, -1)):
        end = (ax, ay + sign * length) if vertical else (ax + sign * length, ay)
        canvas = MaskCanvas(14, 15)
        canvas.stroke([(ax, ay), end], brush_size=brush)
        reference = capsule_distance_masks(torch.tensor([[0.0, ax, ay, *end, brush / 2]]), 1, 14, 15)[0]
        if not torch.equal(torch.from_numpy(canvas.hole.copy()), reference):
            mismatches.append(((ax, ay), end, brush))
    assert mismatches == []
