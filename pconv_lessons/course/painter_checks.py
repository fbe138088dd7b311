"""Checks for the two pieces of the mask painter a student writes in lesson 12.

``check_capsule`` checks a brush stroke rasterised by hand: ``my_capsule(height, width, start, end, brush_size)``
returns the (H, W) boolean map of painted pixels, True where the pixel centre ``(x, y) = (column, row)`` lies
within ``brush_size / 2`` of the segment ``start``–``end``, **the edge included** (≤, the rule of
``pconv_lessons.widgets.canvas`` and ``pconv_lessons.raster``). The reference is ``MaskCanvas``, which paints by
scan lines (one interval of columns per row), not by measuring distances, and hand-counted examples. The cases
put pixel centres exactly on the brush edge (integer endpoints, even brush sizes, a 3-4-5 triangle), where ``<``
and ``≤`` differ, and add strokes at arbitrary angles with fractional ends, partly outside the image.

``check_inpaint_callback`` checks what the *Inpaint* button does with one model:
``my_inpaint(inpainter, image, mask)`` with ``inpainter(image, mask) -> prediction`` and the course mask
(1 = known) must call the inpainter on the image with its holes zeroed and the mask as it is, clamp the
prediction to [0, 1] and return the composite M ⊙ I + (1 − M) ⊙ prediction, (1, 3, H, W). The probes are
inpainters that record what they were given and return predictions whose every pixel says where it came from.

Each check raises AssertionError naming the first case that fails and, where it recognises it, the mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from pconv_lessons.widgets.canvas import MaskCanvas

Point = tuple[float, float]
CapsuleFunction = Callable[[int, int, Point, Point, float], Tensor]
Inpainter = Callable[[Tensor, Tensor], Tensor]

# (what the case shows, height, width, start, end, brush size, painted pixels counted by hand or None)
EDGE_CASES: tuple[tuple[str, int, int, Point, Point, float, int | None], ...] = (
    ("a dot of size 3 on a pixel centre", 7, 7, (3.0, 3.0), (3.0, 3.0), 3.0, 9),
    ("a dot of size 2 on a pixel centre: its 4 neighbours lie exactly 1 = 2/2 away, on the edge",
     7, 7, (3.0, 3.0), (3.0, 3.0), 2.0, 5),
    ("a dot of size 10: the pixels 3 and 4 (or 4 and 3) away lie exactly 5 away, on the edge",
     13, 13, (6.0, 6.0), (6.0, 6.0), 10.0, 81),
    ("lesson 12's worked stroke from (3, 4) to (10, 4), size 5", 9, 15, (3.0, 4.0), (10.0, 4.0), 5.0, 56),
    ("a vertical stroke of size 4 from (4, 2) to (4, 9): the columns 2 away lie on the edge",
     12, 9, (4.0, 2.0), (4.0, 9.0), 4.0, 8 * 5 + 2 * 3 + 2 * 1),
)
RANDOM_STROKES = 30


def reference_capsule(height: int, width: int, start: Point, end: Point, brush_size: float) -> np.ndarray:
    """The painted pixels (H, W) bool of one stroke, drawn by the package's ``MaskCanvas`` (scan lines)."""
    canvas = MaskCanvas(height, width)
    canvas.stroke([start, end], brush_size=brush_size)
    return canvas.hole.copy()


def _random_cases(seed: int = 12) -> list[tuple[str, int, int, Point, Point, float, None]]:
    generator = torch.Generator().manual_seed(seed)
    height, width = 23, 31  # not square: x and y swapped shows
    cases = []
    for index in range(RANDOM_STROKES):
        start = tuple((torch.rand(2, generator=generator) * 40 - 5).tolist())
        end = tuple((torch.rand(2, generator=generator) * 40 - 5).tolist())
        brush = float(torch.rand(1, generator=generator) * 11 + 1)
        cases.append((f"random stroke {index}: {_point(start)} to {_point(end)}, size {brush:.2f}",
                      height, width, start, end, brush, None))
    return cases


def _point(point: Sequence[float]) -> str:
    return f"({point[0]:.2f}, {point[1]:.2f})"


def _as_painted(result: object, height: int, width: int, case: str) -> np.ndarray:
    if not isinstance(result, Tensor) or tuple(result.shape) != (height, width):
        got = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise AssertionError(f"{case}: expected a tensor shaped ({height}, {width}) (rows, columns), got {got}")
    values = result.detach().cpu()
    if values.dtype != torch.bool:
        if not bool(((values == 0) | (values == 1)).all()):
            raise AssertionError(f"{case}: expected True/False (or 1/0) per pixel, got other values")
        values = values == 1
    return values.numpy()


def _diagnosis(mine: np.ndarray, height: int, width: int, start: Point, end: Point, brush: float) -> str:
    """What a known wrong rule would have drawn, when it is exactly what ``mine`` is."""
    if np.array_equal(mine, ~reference_capsule(height, width, start, end, brush)):
        return "True must mark the painted pixels (the hole), not the known ones"
    if np.array_equal(mine, reference_capsule(height, width, start, end, brush * (1 - 1e-9))):
        return "the pixels exactly on the brush edge are missing: the rule is distance ≤ brush_size / 2, not <"
    if np.array_equal(mine, reference_capsule(height, width, start, end, 2 * brush)):
        return "that is the stroke of twice the size: the radius is brush_size / 2 (brush_size is the diameter)"
    if np.array_equal(mine, reference_capsule(height, width, start[::-1], end[::-1], brush)):
        return "x and y are swapped: a point is (x, y) = (column, row)"
    return ""


def check_capsule(my_capsule: CapsuleFunction) -> None:
    """``my_capsule(height, width, start, end, brush_size)`` must paint what ``MaskCanvas.stroke`` paints."""
    for case, height, width, start, end, brush, count in (*EDGE_CASES, *_random_cases()):
        mine = _as_painted(my_capsule(height, width, start, end, brush), height, width, case)
        expected = reference_capsule(height, width, start, end, brush)
        if count is not None and int(expected.sum()) != count:  # the hand count guards the reference itself
            raise RuntimeError(f"{case}: the reference paints {int(expected.sum())} pixels, the hand count is {count}")
        if np.array_equal(mine, expected):
            continue
        wrong = np.argwhere(mine != expected)
        row, column = (int(v) for v in wrong[0])
        should = "be painted" if expected[row, column] else "stay known"
        hint = _diagnosis(mine, height, width, start, end, brush)
        raise AssertionError(
            f"{case}: {len(wrong)} pixel(s) differ from the rule (you paint {int(mine.sum())}, the rule "
            f"{int(expected.sum())}); e.g. row {row}, column {column} should {should}" + (f". {hint}" if hint else "")
        )


class _Probe:
    """An inpainter that records its inputs and predicts ``fill`` (a function of the image's shape)."""

    def __init__(self, fill: Callable[[Tensor], Tensor]):
        self.fill = fill
        self.calls: list[tuple[Tensor, Tensor]] = []

    def __call__(self, image: Tensor, mask: Tensor) -> Tensor:
        self.calls.append((image.detach().clone(), mask.detach().clone()))
        return self.fill(image)


def _probe_inputs(height: int = 12, width: int = 17) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(12)
    image = torch.rand(1, 3, height, width, generator=generator) * 0.8 + 0.1  # never 0: a zeroed hole shows
    mask = torch.ones(1, 1, height, width)
    mask[..., 3:8, 4:11] = 0.0
    mask[..., 9:, :3] = 0.0
    return image, mask


def _close(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), atol=1e-6))


def check_inpaint_callback(my_inpaint: Callable[[Inpainter, Tensor, Tensor], Tensor]) -> None:
    """``my_inpaint(inpainter, image, mask)`` must return M ⊙ I + (1 − M) ⊙ clamp(inpainter(I ⊙ M, M), 0, 1)."""
    image, mask = _probe_inputs()
    known, hole = mask.bool().expand_as(image), ~mask.bool().expand_as(image)
    wild = torch.linspace(-0.5, 1.5, image.numel()).reshape(image.shape)  # below 0 and above 1 in the holes too
    for name, probe in (("a model predicting values in [-0.5, 1.5]", _Probe(lambda x: wild.clone())),
                        ("a model that returns its input", _Probe(lambda x: x.clone()))):
        result = my_inpaint(probe, image.clone(), mask.clone())
        if len(probe.calls) != 1:
            raise AssertionError(f"with {name}: call the inpainter once per Inpaint, it was called {len(probe.calls)} times")
        seen_image, seen_mask = probe.calls[0]
        if _close(seen_mask, 1 - mask):
            raise AssertionError("the inpainter got the hole map 1 − mask; pass the mask as it is (1 = known, 0 = hole)")
        if not _close(seen_mask, mask):
            raise AssertionError("the inpainter must get the mask (1, 1, H, W) as it is (1 = known, 0 = hole)")
        if seen_image.shape != image.shape or not _close(seen_image[known], image[known]):
            raise AssertionError("the inpainter must get the photo (1, 3, H, W) itself in the known pixels")
        if not bool((seen_image[hole] == 0).all()):
            raise AssertionError("the inpainter saw the photo inside the holes: zero them (image * mask) before the "
                                 "call, so no model can copy what it should fill")
        if not isinstance(result, Tensor) or result.shape != image.shape:
            got = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
            raise AssertionError(f"with {name}: return the composite shaped {tuple(image.shape)}, got {got}")
        prediction = probe.fill(image * mask).clamp(0, 1)
        if not _close(result[known], image[known]):
            flipped = _close(result[known], prediction[known])
            raise AssertionError(
                f"with {name}: the known pixels must be the photo's (I_comp = M ⊙ I + (1 − M) ⊙ prediction)"
                + ("; they are the prediction's — composite with M, not 1 − M, on the photo" if flipped else ""))
        if not _close(result[hole], prediction[hole]):
            unclamped = _close(result[hole], probe.fill(image * mask)[hole])
            raise AssertionError(
                f"with {name}: the holes must hold the prediction clamped to [0, 1]"
                + ("; clamp it (the widget shows 8-bit colours, metrics expect [0, 1])" if unclamped else ""))
