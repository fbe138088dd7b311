"""The lesson-12 check helpers: the correct stroke rasteriser and Inpaint callback pass, each planted mistake fails."""

import pytest
import torch

from pconv_lessons.course.painter_checks import EDGE_CASES, check_capsule, check_inpaint_callback, reference_capsule


def capsule(height, width, start, end, brush_size, strict=False, radius_scale=0.5, swap=False, clamp=True,
            centre_offset=0.0, known=False, dtype=torch.bool):
    """The rule by distances, with switches for the mistakes a student makes."""
    rows = torch.arange(height, dtype=torch.float64)[:, None] + centre_offset
    cols = torch.arange(width, dtype=torch.float64)[None, :] + centre_offset
    (ax, ay), (bx, by) = (start[::-1], end[::-1]) if swap else (start, end)
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = ((cols - ax) * dx + (rows - ay) * dy) / length2 if length2 > 0 else torch.zeros(())
    if clamp:
        t = t.clamp(0, 1)
    distance = torch.hypot(cols - (ax + t * dx), rows - (ay + t * dy))
    radius = radius_scale * brush_size
    painted = distance < radius if strict else distance <= radius
    return (~painted if known else painted).to(dtype)


def test_the_hand_counts_match_the_reference():
    for case, height, width, start, end, brush, count in EDGE_CASES:
        assert int(reference_capsule(height, width, start, end, brush).sum()) == count, case


@pytest.mark.parametrize("dtype", [torch.bool, torch.float32, torch.int64])
def test_the_distance_rule_passes(dtype):
    check_capsule(lambda *args: capsule(*args, dtype=dtype))


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (dict(strict=True), "exactly on the brush edge are missing"),
        (dict(radius_scale=1.0), "radius is brush_size / 2"),
        (dict(swap=True), "x and y are swapped"),
        (dict(known=True), "True must mark the painted pixels"),
        (dict(clamp=False), "pixel"),  # the infinite line, no round caps
        (dict(centre_offset=0.5), "pixel"),  # centres at (c + ½, r + ½)
    ],
)
def test_each_planted_rasteriser_mistake_fails(mistake, message):
    with pytest.raises(AssertionError, match=message):
        check_capsule(lambda *args: capsule(*args, **mistake))


def test_a_stroke_with_flat_ends_fails():
    def flat_ends(height, width, start, end, brush_size):
        painted = capsule(height, width, start, end, brush_size, clamp=False)
        rows = torch.arange(height, dtype=torch.float64)[:, None]
        cols = torch.arange(width, dtype=torch.float64)[None, :]
        (ax, ay), (bx, by) = start, end
        along = (cols - ax) * (bx - ax) + (rows - ay) * (by - ay)
        return painted & (along >= 0) & (along <= (bx - ax) ** 2 + (by - ay) ** 2)

    with pytest.raises(AssertionError, match="worked stroke"):  # a dot is right, a stroke lacks its caps
        check_capsule(flat_ends)


def test_wrong_shapes_and_values_are_named():
    with pytest.raises(AssertionError, match=r"shaped \(7, 7\)"):
        check_capsule(lambda height, width, *rest: torch.zeros(width + 1, height, dtype=torch.bool))
    with pytest.raises(AssertionError, match="True/False"):
        check_capsule(lambda *args: capsule(*args, dtype=torch.float64) * 0.5)


def inpaint(inpainter, image, mask, zero_holes=True, flip_input_mask=False, clamp=True, compose="right"):
    """The Inpaint button's steps, with switches for the mistakes a student makes."""
    seen = image * mask if zero_holes else image
    prediction = inpainter(seen, 1 - mask if flip_input_mask else mask)
    if clamp:
        prediction = prediction.clamp(0, 1)
    if compose == "none":
        return prediction
    if compose == "flipped":
        return (1 - mask) * image + mask * prediction
    return mask * image + (1 - mask) * prediction


def test_the_inpaint_callback_passes():
    check_inpaint_callback(inpaint)


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (dict(zero_holes=False), "saw the photo inside the holes"),
        (dict(flip_input_mask=True), "hole map 1 − mask"),
        (dict(clamp=False), "clamp it"),
        (dict(compose="none"), "known pixels must be the photo's"),
        (dict(compose="flipped"), "composite with M, not 1 − M"),
    ],
)
def test_each_planted_callback_mistake_fails(mistake, message):
    with pytest.raises(AssertionError, match=message):
        check_inpaint_callback(lambda inpainter, image, mask: inpaint(inpainter, image, mask, **mistake))


def test_a_callback_that_calls_twice_or_returns_the_wrong_shape_fails():
    def twice(inpainter, image, mask):
        inpainter(image * mask, mask)
        return inpaint(inpainter, image, mask)

    with pytest.raises(AssertionError, match="called 2 times"):
        check_inpaint_callback(twice)
    with pytest.raises(AssertionError, match="composite shaped"):
        check_inpaint_callback(lambda inpainter, image, mask: inpaint(inpainter, image, mask)[0])
