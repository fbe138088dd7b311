"""The mask painter's pure model: round-brush strokes on a hole mask, with erase, undo and redo.

Coordinates. A point is ``(x, y)`` in image pixel units: ``x`` runs along a row (the column index),
``y`` down the image (the row index), and the centre of pixel ``(row r, column c)`` sits at
``(x, y) = (c, r)``. Points may be fractional and may lie outside the image, however far (any finite
float: a segment reaching far out is clipped exactly to the part that can touch the image, and the clipped
endpoints are rounded to floats, which moves them by less than 1e-14 px).

Rasterisation rule. A stroke through points p_0, …, p_k with brush size d (the brush's diameter in
pixels) is the union of the capsules around the segments p_{i-1}p_i (a single point is a disc):

    pixel (r, c) is painted  ⇔  min_i dist((c, r), segment p_{i-1}p_i) ≤ d / 2

so consecutive points are joined without gaps however far apart they are, and the ends are round. The
capsules are the mask generators' primitive and are drawn by the same rasteriser (``pconv_lessons.raster``).
Drawing turns painted pixels into holes (0); erasing turns them back into known pixels (1).
Examples: a dot of size 1 at a pixel centre paints that pixel only; of size 3, the 3×3 block around
it; of size 5, 21 pixels (the 5×5 block without its 4 corners). A horizontal stroke of size 3 between
pixel centres ``L`` columns apart paints 3 rows × (L + 3) columns.

Every stroke, ``clear``, ``start_from`` and ``set_mask`` is one undo step; ``stroke(...,
continue_last=True)`` extends the previous step instead (a mouse drag arrives as many small strokes
but is undone as one). Callbacks registered with ``on_change`` run after every change (the view redraws).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from pconv_lessons.validation import check_mask
from pconv_lessons.masks import KINDS as MASK_KINDS
from pconv_lessons.masks import generate
from pconv_lessons.raster import rasterise_numpy

Point = tuple[float, float]
# Segments with an endpoint farther out than this are clipped to the image (plus the brush) before painting.
_EXACT_CLIP_BEYOND = 2.0**20
_NO_BOXES = np.zeros((0, 5))


def clip_segment(start: Point, end: Point, box: tuple[float, float, float, float]) -> tuple[Point, Point] | None:
    """The part of the segment ``start``–``end`` inside ``box`` = (x_min, y_min, x_max, y_max), or ``None``.

    Liang–Barsky clipping in exact rational arithmetic, so endpoints as large as 1e308 give the visible
    part to float precision (plain float maths would overflow or lose every digit near the image).
    """
    (ax, ay), (bx, by) = (tuple(Fraction(value) for value in point) for point in (start, end))
    t_enter, t_leave = Fraction(0), Fraction(1)
    for origin, delta, low, high in ((ax, bx - ax, box[0], box[2]), (ay, by - ay, box[1], box[3])):
        if delta == 0:
            if not Fraction(low) <= origin <= Fraction(high):
                return None
            continue
        t_low, t_high = sorted(((Fraction(low) - origin) / delta, (Fraction(high) - origin) / delta))
        t_enter, t_leave = max(t_enter, t_low), min(t_leave, t_high)
        if t_enter > t_leave:
            return None

    def at(t: Fraction) -> Point:
        return float(ax + t * (bx - ax)), float(ay + t * (by - ay))

    return at(t_enter), at(t_leave)


def _check_points(points: Sequence[Sequence[float]]) -> list[Point]:
    try:
        checked = [(float(point[0]), float(point[1])) for point in points]
        shapes_ok = all(len(point) == 2 for point in points)
    except (TypeError, IndexError, ValueError) as error:
        raise ValueError(f"points must be a sequence of (x, y) pairs of numbers, got {points!r}") from error
    if not checked or not shapes_ok:
        raise ValueError(f"points must be a non-empty sequence of (x, y) pairs, got {points!r}")
    if not all(math.isfinite(x) and math.isfinite(y) for x, y in checked):
        raise ValueError(f"points must be finite numbers, got {checked!r}")
    return checked


def check_brush_size(brush_size: float) -> float:
    """A brush diameter in pixels: a positive finite int or float; returns it as float."""
    if (
        isinstance(brush_size, bool)
        or not isinstance(brush_size, (int, float))
        or not 0 < brush_size < math.inf  # also rejects NaN
    ):
        raise ValueError(
            f"brush_size must be a positive finite number of pixels (the brush's diameter), got {brush_size!r}"
        )
    return float(brush_size)


class MaskCanvas:
    """A hole mask drawn with a round brush; ``.mask`` is (1, 1, H, W) float, 1 = known, 0 = hole.

    ``max_history`` bounds the undo stack (each step keeps one H×W boolean snapshot).
    """

    def __init__(self, height: int, width: int, brush_size: float = 15, max_history: int = 100):
        if not (isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0):
            raise ValueError(f"height and width must be positive integers, got {height!r} and {width!r}")
        if not (isinstance(max_history, int) and max_history >= 1):
            raise ValueError(f"max_history must be a positive integer, got {max_history!r}")
        self.height = height
        self.width = width
        self.brush_size = check_brush_size(brush_size)
        self.max_history = max_history
        self._hole = np.zeros((height, width), dtype=bool)
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change of the drawing (stroke, clear, undo, ...)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in self._listeners:
            callback()

    # ---- reading the drawing -------------------------------------------------------------
    @property
    def mask(self) -> Tensor:
        """The mask as a float32 tensor (1, 1, H, W): 1 = known pixel, 0 = hole."""
        return torch.from_numpy(~self._hole).float().reshape(1, 1, self.height, self.width)

    @property
    def hole(self) -> np.ndarray:
        """A read-only boolean (H, W) view of the hole (True = hole)."""
        view = self._hole.view()
        view.flags.writeable = False
        return view

    @property
    def hole_ratio(self) -> float:
        """The fraction of pixels that are holes."""
        return float(self._hole.mean())

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    # ---- drawing ---------------------------------------------------------------------------
    def stroke(
        self,
        points: Sequence[Sequence[float]],
        brush_size: float | None = None,
        erase: bool = False,
        continue_last: bool = False,
    ) -> None:
        """Paint a round-brush stroke through ``points`` (see the module docstring for the exact rule).

        ``brush_size`` defaults to ``self.brush_size``; ``erase=True`` restores known pixels instead of
        making holes; ``continue_last=True`` adds to the previous undo step instead of starting a new one.
        """
        checked = _check_points(points)
        radius = (self.brush_size if brush_size is None else check_brush_size(brush_size)) / 2
        if not (continue_last and self._undo):
            self._record()
        segments = list(zip(checked[:-1], checked[1:])) or [(checked[0], checked[0])]
        for start, end in segments:
            self._paint(start, end, radius, value=not erase)
        self._changed()

    def _paint(self, start: Point, end: Point, radius: float, value: bool) -> None:
        if max(abs(v) for v in (*start, *end)) > _EXACT_CLIP_BEYOND:  # keep only what can reach the image, exactly
            margin = radius + 1.0
            clipped = clip_segment(start, end, (-margin, -margin, self.width - 1 + margin, self.height - 1 + margin))
            if clipped is None:
                return
            start, end = clipped
        capsule = np.array([[0.0, *start, *end, radius]])
        self._hole[rasterise_numpy(capsule, _NO_BOXES, 1, self.height, self.width)[0]] = value

    def clear(self) -> None:
        """Remove every hole (undoable)."""
        self._record()
        self._hole[:] = False
        self._changed()

    def set_mask(self, mask: Tensor) -> None:
        """Replace the drawing by ``mask`` ((H, W), (1, H, W) or (1, 1, H, W); 1 = known, 0 = hole; undoable).

        Values below 0.5 become holes.
        """
        if not isinstance(mask, Tensor):
            raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
        if mask.numel() != self.height * self.width or mask.shape[-2:] != (self.height, self.width):
            raise ValueError(f"mask must be {self.height}×{self.width} (one mask), got shape {tuple(mask.shape)}")
        mask = mask.detach().float().cpu().reshape(1, 1, self.height, self.width)
        check_mask(mask, like=mask)
        self._record()
        self._hole[:] = mask[0, 0].numpy() < 0.5
        self._changed()

    def start_from(self, kind: str, seed: int) -> None:
        """Replace the drawing by the generated mask of family ``kind`` and ``seed`` (undoable).

        Uses ``pconv_lessons.masks.generate(kind, 1, (H, W), seed=seed)``; ``kind`` is one of ``MASK_KINDS``.
        """
        if kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {kind!r}; choose from {list(MASK_KINDS)}")
        self.set_mask(generate(kind, 1, (self.height, self.width), seed=seed))

    # ---- history ---------------------------------------------------------------------------
    def undo(self) -> bool:
        """Go back one step; returns False (and changes nothing) when there is nothing to undo."""
        if not self._undo:
            return False
        self._redo.append(self._hole.copy())
        self._hole = self._undo.pop()
        self._changed()
        return True

    def redo(self) -> bool:
        """Re-apply the last undone step; returns False when there is nothing to redo."""
        if not self._redo:
            return False
        self._undo.append(self._hole.copy())
        self._hole = self._redo.pop()
        self._changed()
        return True

    def _record(self) -> None:
        """Save the current state as an undo step; a new step forgets what could be redone."""
        self._undo.append(self._hole.copy())
        del self._undo[: -self.max_history]
        self._redo.clear()
