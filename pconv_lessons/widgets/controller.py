"""The mask painter's controller: pointer events (down / move / up) turned into ``MaskCanvas`` strokes.

A press starts a stroke (a dot), each move while pressed extends it by the segment from the previous
point (``continue_last=True``, so one drag is one undo step), a release or the pointer leaving the image
ends it. Moves without a press do nothing.

Display scaling. When the image is shown ``display_width`` × ``display_height`` CSS pixels large, a
pointer at display pixel ``(u, v)`` (measured from the image's top-left corner, as browsers report it)
covers the image-space interval [u·s, (u + 1)·s) with s = W / display_width; its centre in the canvas's
coordinates (pixel centres at integers) is

    x = (u + ½) · W / display_width − ½,        y = (v + ½) · H / display_height − ½

which is the identity when the image is shown at its own size.
"""

from __future__ import annotations

from collections.abc import Mapping

from pconv_lessons.widgets.canvas import MaskCanvas, Point, check_brush_size


class PointerController:
    """Feeds pointer events to a ``MaskCanvas``; brush size and erase mode are the controller's settings."""

    def __init__(self, canvas: MaskCanvas, brush_size: float | None = None, erase: bool = False):
        self.canvas = canvas
        self.brush_size = canvas.brush_size if brush_size is None else check_brush_size(brush_size)
        self.erase = erase
        self._last: Point | None = None

    @property
    def drawing(self) -> bool:
        """True between a press and the matching release."""
        return self._last is not None

    def to_image(
        self, u: float, v: float, display_width: float | None = None, display_height: float | None = None
    ) -> Point:
        """Display coordinates → canvas coordinates (see the module docstring); no sizes means no scaling."""
        if display_width is None or display_height is None:
            return float(u), float(v)
        if not (display_width > 0 and display_height > 0):
            raise ValueError(f"display size must be positive, got {display_width!r} × {display_height!r}")
        x = (u + 0.5) * self.canvas.width / display_width - 0.5
        y = (v + 0.5) * self.canvas.height / display_height - 0.5
        return x, y

    def down(self, x: float, y: float) -> None:
        """Press at image coordinates (x, y): a new stroke, one undo step, starting with a dot.

        A position that is not a finite number raises ``ValueError`` and starts no stroke."""
        self._last = None
        point = (float(x), float(y))
        self.canvas.stroke([point], brush_size=self.brush_size, erase=self.erase)
        self._last = point

    def move(self, x: float, y: float) -> None:
        """Pointer moved to (x, y): while pressed, join it to the previous point by a capsule.

        A position that is not a finite number raises ``ValueError`` and ends the stroke (never stuck drawing)."""
        if self._last is None:
            return
        previous, self._last = self._last, None
        point = (float(x), float(y))
        self.canvas.stroke([previous, point], brush_size=self.brush_size, erase=self.erase, continue_last=True)
        self._last = point

    def up(self, x: float | None = None, y: float | None = None) -> None:
        """Release (at (x, y) if given, which is joined to the stroke first): the stroke ends."""
        if self._last is not None and x is not None and y is not None:
            self.move(x, y)
        self._last = None

    def handle(self, event: Mapping) -> bool:
        """Handle one browser event as ``ipyevents`` reports it; returns True when the canvas may have changed.

        Uses ``type`` (mousedown / mousemove / mouseup / mouseleave), ``relativeX`` / ``relativeY``
        (position on the image element) and ``boundingRectWidth`` / ``boundingRectHeight`` (its size on
        screen) for the display-scale conversion. Only the primary button draws.
        """
        kind = event.get("type")
        if kind == "mouseleave":
            was_drawing = self.drawing
            self.up()
            return was_drawing
        if kind not in ("mousedown", "mousemove", "mouseup"):
            return False
        if kind == "mousedown" and event.get("button", 0) != 0:
            return False
        x, y = self.to_image(
            event["relativeX"], event["relativeY"], event.get("boundingRectWidth"), event.get("boundingRectHeight")
        )
        was_drawing = self.drawing
        if kind == "mousedown":
            self.down(x, y)
            return True
        if kind == "mousemove":
            self.move(x, y)
        else:
            self.up(x, y)
        return was_drawing
