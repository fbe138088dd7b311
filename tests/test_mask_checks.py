"""Lesson 06's stroke check: DeepFill v2's recipe passes, and each plausible mistake in it fails."""

import math

import numpy as np
import pytest

from pconv_lessons.course.mask_checks import check_free_form_stroke


def stroke(rng, height, width, radius_from_width=lambda w: w / 2, turns=False, alternate=True,
           segments=(4, 12), step_std=0.5, step_scale=8, clip=True, degrees=False):
    """DeepFill v2's brush stroke as lesson 06 writes it; the keywords plant one mistake each."""
    average_step = np.hypot(height, width) / step_scale
    count = rng.integers(*segments)
    spread = 2 * np.pi / 15
    low, high = 2 * np.pi / 5 - rng.uniform(0, spread), 2 * np.pi / 5 + rng.uniform(0, spread)
    radius = radius_from_width(np.floor(rng.uniform(12, 40)))
    x, y = rng.integers(0, width), rng.integers(0, height)
    heading, capsules = 0.0, []
    for i in range(count):
        angle = rng.uniform(low, high)
        if alternate and i % 2 == 0:
            angle = 2 * np.pi - angle
        if degrees:
            angle = math.degrees(angle)
        heading = heading + angle if turns else angle
        step = np.clip(rng.normal(average_step, step_std * average_step), 0, 2 * average_step)
        new_x, new_y = x + step * np.cos(heading), y + step * np.sin(heading)
        if clip:
            new_x, new_y = np.clip(new_x, 0, width), np.clip(new_y, 0, height)
        capsules.append((x, y, new_x, new_y, radius))
        x, y = new_x, new_y
    return capsules


def whole_pixels(rng, height, width):
    """DeepFill v2's own rounding: every vertex truncated to whole pixels (the package does the same)."""
    capsules, x, y = [], None, None
    for ax, ay, bx, by, r in stroke(rng, height, width):
        x, y = (int(ax), int(ay)) if x is None else (x, y)
        capsules.append((x, y, int(bx), int(by), r))
        x, y = int(bx), int(by)
    return capsules


def test_deepfill_v2_recipe_passes_and_matches_the_package():
    report = check_free_form_stroke(stroke)
    assert abs(report.mean_hole_ratio - report.package_mean_hole_ratio) < 0.02
    assert 0.13 < report.package_mean_hole_ratio < 0.17  # DeepFill v2's own code: 0.151 (tests/data)


def test_whole_pixel_vertices_pass_too():
    check_free_form_stroke(whole_pixels)


PLANTED = {
    "width used as radius": (dict(radius_from_width=lambda w: w), "radius"),
    "angles added up as turns": (dict(turns=True), "heads at"),
    "no alternation": (dict(alternate=False), "heads at"),
    "angles in degrees": (dict(degrees=True), "heads at"),
    "4-10 segments": (dict(segments=(4, 11)), "no stroke with"),
    "4-12 segments": (dict(segments=(4, 13)), "segments"),
    "3-11 segments": (dict(segments=(3, 12)), "segments"),
    "step spread r instead of r/2": (dict(step_std=1.0), "spread"),
    "average step diagonal/4": (dict(step_scale=4), "segment lengths"),
    "no clipping to the image": (dict(clip=False), "outside the image"),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_each_planted_mistake_fails(name):
    keywords, message = PLANTED[name]
    with pytest.raises(AssertionError, match=message):
        check_free_form_stroke(lambda rng, h, w: stroke(rng, h, w, **keywords))


def test_a_broken_chain_and_a_varying_radius_fail():
    def broken(rng, h, w):
        return [(ax + 1, ay, bx, by, r) for ax, ay, bx, by, r in stroke(rng, h, w)]

    def varying(rng, h, w):
        return [(ax, ay, bx, by, r + 0.1 * k) for k, (ax, ay, bx, by, r) in enumerate(stroke(rng, h, w))]

    with pytest.raises(AssertionError, match="chain"):
        check_free_form_stroke(broken)
    with pytest.raises(AssertionError, match="same radius"):
        check_free_form_stroke(varying)


def test_a_too_thin_brush_fails_on_the_hole_ratio():
    # radii 6 … 13 instead of 6 … 19.5: every stroke rule holds, the masks have too little hole
    with pytest.raises(AssertionError, match="mean hole ratio"):
        check_free_form_stroke(lambda rng, h, w: stroke(rng, h, w, radius_from_width=lambda width: 3 + width / 4))
