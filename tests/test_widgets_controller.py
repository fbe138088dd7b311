"""PointerController: pointer events become the same strokes as direct MaskCanvas calls, display scaling included."""

import numpy as np
import pytest

from pconv_lessons.widgets import MaskCanvas, PointerController


def holes(canvas):
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(canvas.hole))}


def event(kind, u, v, width=None, height=None, button=0):
    data = {"type": kind, "relativeX": u, "relativeY": v, "button": button}
    if width is not None:
        data.update(boundingRectWidth=width, boundingRectHeight=height)
    return data


def test_a_drag_draws_the_polyline_as_one_undo_step():
    canvas = MaskCanvas(30, 40)
    controller = PointerController(canvas, brush_size=3)
    controller.down(5, 5)
    controller.move(20, 5)
    controller.move(20, 25)
    controller.up(30, 25)
    reference = MaskCanvas(30, 40)
    reference.stroke([(5, 5), (20, 5), (20, 25), (30, 25)], brush_size=3)
    assert np.array_equal(canvas.hole, reference.hole)
    assert canvas.undo() and not canvas.hole.any() and not canvas.can_undo


def test_moves_without_a_press_draw_nothing():
    canvas = MaskCanvas(10, 10)
    controller = PointerController(canvas, brush_size=3)
    controller.move(5, 5)
    controller.up(6, 6)
    assert not canvas.hole.any() and not canvas.can_undo and not controller.drawing


def test_two_drags_are_two_undo_steps_and_erase_mode_erases():
    canvas = MaskCanvas(20, 20)
    controller = PointerController(canvas, brush_size=3)
    controller.down(5, 10)
    controller.move(15, 10)
    controller.up()
    controller.erase = True
    controller.brush_size = 1
    controller.down(10, 10)
    controller.up()
    assert len(holes(canvas)) == 3 * (10 + 3) - 1 and (10, 10) not in holes(canvas)
    canvas.undo()
    assert len(holes(canvas)) == 39


def test_browser_events_at_display_size_map_one_to_one():
    canvas = MaskCanvas(20, 30)
    controller = PointerController(canvas, brush_size=3)
    for kind, u in [("mousedown", 5), ("mousemove", 15), ("mouseup", 15)]:
        controller.handle(event(kind, u, 10, width=30, height=20))
    assert holes(canvas) == {(r, c) for r in (9, 10, 11) for c in range(4, 17)}


def test_display_scale_conversion_by_hand():
    canvas = MaskCanvas(40, 60)
    controller = PointerController(canvas)
    # shown twice as large: display pixel 20 covers image x in [10, 10.5), centre 10.25 → x = 10.25 - 0.5 = 9.75
    assert controller.to_image(20, 41, 120, 80) == (9.75, 20.25)
    # shown at half size: display pixel 3 covers image [6, 8), centre 7 → x = 6.5
    assert controller.to_image(3, 3, 30, 20) == (6.5, 6.5)
    assert controller.to_image(7, 8) == (7.0, 8.0)
    with pytest.raises(ValueError, match="positive"):
        controller.to_image(1, 1, 0, 10)


def test_a_click_on_a_twice_enlarged_image_paints_the_pixel_under_the_pointer():
    canvas = MaskCanvas(40, 60)
    controller = PointerController(canvas, brush_size=1)
    changed = controller.handle(event("mousedown", 20, 41, width=120, height=80))
    controller.handle(event("mouseup", 20, 41, width=120, height=80))
    assert changed
    assert holes(canvas) == {(20, 10)}  # (9.75, 20.25) is within 0.5 of the centre of column 10, row 20 only


def test_other_buttons_and_events_are_ignored_and_leaving_ends_the_stroke():
    canvas = MaskCanvas(20, 20)
    controller = PointerController(canvas, brush_size=1)
    assert controller.handle(event("mousedown", 5, 5, button=2)) is False
    assert controller.handle({"type": "keydown", "key": "a"}) is False
    assert not canvas.hole.any()
    controller.handle(event("mousedown", 5, 5))
    assert controller.handle({"type": "mouseleave"}) is True
    assert controller.handle(event("mousemove", 9, 5)) is False
    assert holes(canvas) == {(5, 5)}
