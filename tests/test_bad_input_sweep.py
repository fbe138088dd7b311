"""A property-based sweep of bad input over the public API (issue 15): shapes, dtypes, value ranges and sizes.

Hypothesis draws inputs, mostly broken in one or more ways (wrong rank, channels, batch or spatial size, dtype,
NaN/inf in known pixels or in holes, values outside [0, 1], masks outside [0, 1], sizes as floats, strings or
0-d tensors, ...). Every call must end in one of two ways:

- a clear error: ``ValueError`` or ``TypeError`` whose message names the argument at fault;
- the right answer: a result of the documented shape that is finite, and where the only oddity was in the
  holes (NaN, inf, out-of-range values there), the same result as with the holes zeroed.

An input that can only be wrong (NaN in a known pixel, an 8-bit image given to a [0, 1] function, a dtype the
model's parameters do not have, ...) must get the error. Anything else (a ``RuntimeError`` from inside torch, an
``IndexError``, a silently wrong number) fails the test. ``SWEEP`` counts what each drawn input got; the last
test prints the tally (``pytest -s``) and checks that the sweep really tried bad inputs.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pconv_lessons import metrics
from pconv_lessons.baselines import biharmonic, fill_with_mean
from pconv_lessons.data import to_tensor
from pconv_lessons.layers import PartialConv2d
from pconv_lessons.losses import InpaintingLoss, VGG16Features
from pconv_lessons.masks import KINDS, generate, hole_ratio
from pconv_lessons.models import GatedGenerator, LamaGenerator, PConvUNet, SNPatchDiscriminator, composite
from pconv_lessons.sketch import edge_sketch
from pconv_lessons.widgets.canvas import _EXACT_CLIP_BEYOND, MaskCanvas
from pconv_lessons.widgets.controller import PointerController

SWEEP: Counter = Counter()  # (function, "bad" | "good", outcome) → count
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


class ClearError(Exception):
    """Raised by ``outcome`` when a call's error does not name an argument (so the test fails with the message)."""


def outcome(function: str, bad: bool, call, names: tuple[str, ...], must_fail: bool, must_pass: bool = False):
    """Run ``call``; return its result, or None after a clear error. Records the outcome in ``SWEEP``.

    ``must_fail``: only a clear error is right; ``must_pass``: the input is valid, an error is wrong too.
    """
    kind = "bad" if bad else "good"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except (ValueError, TypeError) as error:
        message = str(error)
        if not any(name in message for name in names):
            raise ClearError(f"{function}: error names none of {names}: {message!r}") from error
        if must_pass:
            raise AssertionError(f"{function} rejected a valid input: {message}") from error
        SWEEP[function, kind, "clear error"] += 1
        return None
    if must_fail:
        raise AssertionError(f"{function} accepted an input that can only be wrong")
    SWEEP[function, kind, "right answer"] += 1
    return result


# ---------------------------------------------------------------------------------------------- image cases


@dataclass
class ImageCase:
    """A drawn (image, mask) pair and what is wrong with it."""

    image: object
    mask: object
    clean_image: torch.Tensor | None  # the same image with its holes zeroed, when the mask is usable
    faults: set[str] = field(default_factory=set)  # inputs that must be rejected
    oddities: set[str] = field(default_factory=set)  # inputs that must give the right answer (or a clear error)

    @property
    def bad(self) -> bool:
        return bool(self.faults or self.oddities)


@st.composite
def image_cases(draw, channels: int = 3, sizes=(1, 2, 5, 8, 16, 17, 24)) -> ImageCase:
    # Each way of breaking the input is drawn now and then, so some inputs are broken once, some several times.
    n = draw(st.sampled_from([2, 2, 1, 0]))
    height, width = draw(st.sampled_from(sizes)), draw(st.sampled_from(sizes))
    c = draw(st.sampled_from([channels] * 8 + [1, 4]))
    dtype = draw(st.sampled_from([torch.float32] * 10 + [torch.float64, torch.float16, torch.bfloat16, torch.int64]))
    values = draw(st.sampled_from(
        ["unit"] * 3 + ["nan_hole", "inf_hole", "255_hole"] * 2 + ["nan_known", "inf_known", "255", "negative"]
    ))
    mask_kind = draw(st.sampled_from(
        ["binary"] * 6 + ["soft", "all_hole", "no_hole"] * 2
        + ["above_one", "nan", "channels", "spatial", "batch", "bool"]
    ))
    rank = draw(st.sampled_from([4] * 10 + [3, 5]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    faults, oddities = set(), set()

    image = torch.rand(n, c, height, width, generator=generator, dtype=torch.float64)
    mask = (torch.rand(n, 1, height, width, generator=generator) > 0.4).double()
    if mask_kind == "soft":
        mask = torch.rand(n, 1, height, width, generator=generator, dtype=torch.float64)
        oddities.add("soft mask")
    elif mask_kind == "all_hole":
        mask = torch.zeros_like(mask)
        oddities.add("all-hole mask")
    elif mask_kind == "no_hole":
        mask = torch.ones_like(mask)
    known = mask > 0
    filled = {"unit": None, "nan_hole": math.nan, "inf_hole": math.inf, "255_hole": 255.0}
    if values in filled and filled[values] is not None:
        image = torch.where(known, image, filled[values])
        oddities.add(values.replace("_", " in ") if values != "255_hole" else "255 in hole")
    elif values in ("nan_known", "inf_known") and bool(known.any()):
        flat = known.expand_as(image).flatten().nonzero()[0]
        image.view(-1)[flat] = math.nan if values == "nan_known" else math.inf
        faults.add(values.replace("_", " in "))
    elif values == "255" and image.numel() and bool(known.any()):
        image = image * 255.0 + 2.0
        faults.add("values outside [0, 1]")
    elif values == "negative" and image.numel() and bool(known.any()):
        image = image - 2.0
        faults.add("values outside [0, 1]")
    clean = torch.where(known, image, 0.0)

    if c != channels:
        faults.add("channels")
    if dtype not in FLOAT_DTYPES:
        faults.add("integer dtype")
    elif dtype != torch.float32:
        oddities.add(f"dtype {dtype}")
    if mask_kind == "above_one" and mask.numel():
        mask = mask + 1.5
        faults.add("mask outside [0, 1]")
    elif mask_kind == "nan" and mask.numel():
        mask.view(-1)[0] = math.nan
        faults.add("NaN mask")
    elif mask_kind == "channels":
        mask = mask.expand(-1, 2, -1, -1)
        faults.add("mask channels")
    elif mask_kind == "spatial":
        mask = mask[..., :-1] if width > 1 else torch.cat([mask, mask], dim=-1)
        faults.add("mask size")
    elif mask_kind == "batch":
        mask = torch.cat([mask, mask[:1] if n else torch.ones(1, 1, height, width, dtype=mask.dtype)])
        faults.add("mask batch")
    elif mask_kind == "bool":
        mask = mask > 0
        faults.add("bool mask")
    if n == 0:
        oddities.add("empty batch")

    image = image.to(dtype)
    mask = mask.float() if mask.is_floating_point() else mask
    if rank == 3:
        image = image[0] if n else image.reshape(c, height, width * 0)
        faults.add("rank 3")
    elif rank == 5:
        image = image[None]
        faults.add("rank 5")
    return ImageCase(image, mask, clean.to(dtype) if dtype in FLOAT_DTYPES else None, faults, oddities)


def _same_as_clean(function, case: ImageCase, result, clean_call) -> None:
    """Where only holes were odd, the result must equal the result on the image with zeroed holes."""
    if result is None or not ({"nan in hole", "inf in hole", "255 in hole"} & case.oddities):
        return
    clean = clean_call(case.clean_image)
    assert torch.equal(result, clean), f"{function}: hole content leaked into the result"


def _check_prediction(function: str, case: ImageCase, result, channels: int = 3) -> None:
    if result is None:
        return
    n, _, height, width = case.image.shape
    assert isinstance(result, torch.Tensor) and result.shape == (n, channels, height, width), function
    assert torch.isfinite(result).all(), f"{function} returned NaN or inf for {sorted(case.oddities) or 'a valid input'}"


# -------------------------------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {
        "PConvUNet": PConvUNet(layer_size=2, base_channels=2).eval(),
        "GatedGenerator": GatedGenerator(base_channels=4).eval(),
        "LamaGenerator": LamaGenerator(ngf=2, n_blocks=1).eval(),
    }


@pytest.mark.parametrize("name", ["PConvUNet", "GatedGenerator", "LamaGenerator"])
@SETTINGS
@given(case=image_cases())
def test_models_sweep(models, name, case):
    model = models[name]
    must_fail = bool(case.faults) or case.image.dtype != torch.float32
    too_small = name == "LamaGenerator" and min(case.image.shape[-2:]) < 16  # LaMa's documented minimum
    with torch.no_grad():
        result = outcome(name, case.bad, lambda: model(case.image, case.mask), ("image", "mask"), must_fail,
                         must_pass=not must_fail and not too_small)
        _check_prediction(name, case, result)
        _same_as_clean(name, case, result, lambda clean: model(clean, case.mask))


@SETTINGS
@given(case=image_cases(channels=3), multi=st.booleans())
def test_partial_conv_sweep(case, multi):
    torch.manual_seed(0)
    layer = PartialConv2d(3, 2, 3, padding=1, multi_channel=multi)
    mask = case.mask
    if multi and isinstance(mask, torch.Tensor) and mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask.expand(-1, 3, -1, -1)
    faults = case.faults - {"values outside [0, 1]"}  # features may take any finite value
    must_fail = bool(faults) or case.image.dtype != torch.float32
    with torch.no_grad():
        result = outcome("PartialConv2d", case.bad, lambda: layer(case.image, mask)[0], ("x", "mask"), must_fail)
        if result is not None:
            assert torch.isfinite(result).all()
            _same_as_clean("PartialConv2d", case, result, lambda clean: layer(clean, mask)[0])


@SETTINGS
@given(case=image_cases())
def test_baselines_and_composite_sweep(case):
    faults = case.faults - {"values outside [0, 1]"}  # the baselines work in any unit
    for name, method in (("fill_with_mean", fill_with_mean), ("biharmonic", biharmonic)):
        result = outcome(name, case.bad, lambda: method(case.image, case.mask), ("image", "mask"), bool(faults))
        if result is not None:
            assert result.shape == case.image.shape and result.dtype == case.image.dtype
            _same_as_clean(name, case, result, lambda clean: method(clean, case.mask))
    if isinstance(case.image, torch.Tensor) and case.image.dim() == 4 and case.image.is_floating_point():
        prediction = torch.rand(case.image.shape).to(case.image.dtype)
        composite_faults = faults - {"channels", "nan in known", "inf in known"}  # any C; a plain selection
        result = outcome("composite", case.bad, lambda: composite(prediction, case.image, case.mask),
                         ("image", "mask", "prediction"), bool(composite_faults))
        _same_as_clean("composite", case, result, lambda clean: composite(prediction, clean, case.mask))


@SETTINGS
@given(case=image_cases(), threshold=st.sampled_from([0.25, 0.25, 0.0, -1.0, math.nan, math.inf, "0.2", True]))
def test_sketch_sweep(case, threshold):
    images = case.image
    faults = case.faults & {"integer dtype", "channels", "rank 3", "rank 5"}
    valid = not faults and isinstance(images, torch.Tensor) and _within(images, 1.0)
    threshold_ok = isinstance(threshold, float) and 0 < threshold < math.inf
    result = outcome("edge_sketch", not valid or not threshold_ok or case.bad, lambda: edge_sketch(images, threshold),
                     ("images", "threshold"), not (valid and threshold_ok), valid and threshold_ok)
    if result is not None:
        assert result.shape == (images.shape[0], 1, *images.shape[-2:])
        assert bool(((result == 0) | (result == 1)).all())


# -------------------------------------------------------------------------------------------- metrics, loss


def _within(x: torch.Tensor, high: float) -> bool:
    """Is every value of ``x`` finite and in [0, high] (``high = inf``: just finite)?"""
    x = x.double()
    if not bool(torch.isfinite(x).all()):
        return False
    return high == math.inf or x.numel() == 0 or (float(x.min()) >= 0 and float(x.max()) <= high)


@SETTINGS
@given(case=image_cases(sizes=(1, 8, 11, 16)), data_range=st.sampled_from([1.0, 1.0, 255.0, 0.0, -1.0, math.nan,
                                                                           math.inf, "1", None]))
def test_metrics_sweep(case, data_range):
    pred = case.image
    target = torch.rand(pred.shape).to(pred.dtype) if isinstance(pred, torch.Tensor) else pred
    if data_range == 255.0 and isinstance(target, torch.Tensor) and target.is_floating_point():
        target = target * 255.0
    range_bad = not (isinstance(data_range, float) and 0 < data_range < math.inf)
    shape_faults = bool(case.faults & {"integer dtype", "rank 3", "rank 5"})
    finite = not shape_faults and _within(pred, math.inf) and _within(target, math.inf)
    in_range = finite and not range_bad and _within(pred, data_range) and _within(target, data_range)
    bad = case.bad or range_bad or data_range == 255.0
    for name, metric in (("l1", metrics.l1), ("psnr", metrics.psnr), ("ssim", metrics.ssim)):
        if name == "l1":
            result = outcome(name, bad, lambda: metric(pred, target), ("pred", "target"), not finite, finite)
        else:
            big_enough = name == "psnr" or min(pred.shape[-2:]) >= metrics.SSIM_WINDOW
            result = outcome(name, bad, lambda: metric(pred, target, data_range=data_range),
                             ("pred", "target", "data_range", "ssim needs"), not in_range, in_range and big_enough)
        if result is not None:
            assert result.shape == (pred.shape[0],) and not torch.isnan(result).any(), name


@pytest.fixture(scope="module")
def loss():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return InpaintingLoss(VGG16Features(weights=None))


@SETTINGS
@given(case=image_cases(sizes=(4, 8, 12)))
def test_loss_sweep(loss, case):
    target = case.image
    output = torch.rand(target.shape).to(target.dtype) if isinstance(target, torch.Tensor) else target
    # The target (ground truth) has no holes: any NaN, inf or value outside [0, 1] in it is an error.
    shape_faults = case.faults - {"nan in known", "inf in known", "values outside [0, 1]"}
    must_fail = bool(shape_faults) or target.dtype != torch.float32 or "empty batch" in case.oddities
    must_fail = must_fail or not _within(target, 1.0)
    result = outcome("InpaintingLoss", case.bad, lambda: loss(output, target, case.mask),
                     ("output", "target", "mask", "images"), must_fail)
    if result is not None:
        assert set(result) >= {"total"} and torch.isfinite(result["total"])


# ---------------------------------------------------------------------------------------- sizes and counts


SIZE_VALUES = [0, -3, 1, 8, 16, 32.0, "8", None, True, (8, 16), (8,), (8, 8, 8), [12, 8], (8, 0), (8, 2.5),
               np.int64(8), torch.tensor(8), torch.tensor(8.0), torch.tensor([8, 8]), math.nan]
COUNT_VALUES = [0, 1, 2, -1, 2.0, "2", None, True, np.int64(2)]


def _as_size(value) -> tuple[int, int] | None:
    """The (H, W) a size means when it is valid, else None."""
    def side(v):
        if isinstance(v, (bool, float, str)) or v is None:
            return None
        if isinstance(v, torch.Tensor) and (v.dim() or v.is_floating_point()):
            return None
        return int(v) if int(v) >= 1 else None

    if isinstance(value, (tuple, list)) or (isinstance(value, torch.Tensor) and value.dim() == 1):
        sides = [side(v) for v in value] if len(value) == 2 else [None]
        return tuple(sides) if None not in sides else None
    one = side(value)
    return (one, one) if one is not None else None


@SETTINGS
@given(kind=st.sampled_from(list(KINDS) + ["squares"]), n=st.sampled_from(COUNT_VALUES),
       size=st.sampled_from(SIZE_VALUES))
def test_mask_generation_sweep(kind, n, size):
    expected = _as_size(size)
    count_ok = isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0
    valid = expected is not None and count_ok and kind in KINDS
    masks = outcome("masks.generate", not valid, lambda: generate(kind, n, size, seed=0), ("size", "n ", "kind"),
                    not valid, valid)
    if masks is not None:
        assert masks.shape == (n, 1, *expected) and bool(((masks == 0) | (masks == 1)).all())
        assert hole_ratio(masks).shape == (n,)


CONSTRUCTOR_VALUES = [0, -1, 1, 2, 3, 4, 2.5, 4.0, "4", None, True, np.int64(4), torch.tensor(4)]


def _as_int(value) -> int | None:
    if isinstance(value, (bool, float, str)) or value is None:
        return None
    return int(value)


@SETTINGS
@given(which=st.sampled_from(["PConvUNet", "GatedGenerator", "LamaGenerator", "SNPatchDiscriminator"]),
       first=st.sampled_from(CONSTRUCTOR_VALUES + [13, 40]), second=st.sampled_from(CONSTRUCTOR_VALUES),
       rates=st.sampled_from([(2, 4), (), (0,), (2.5,), ("2",), (-1, 2)]))
def test_constructor_sweep(which, first, second, rates):
    a, b = _as_int(first), _as_int(second)
    rates_ok = all(_as_int(rate) is not None and _as_int(rate) >= 1 for rate in rates)
    build, valid, names = {
        "PConvUNet": (lambda: PConvUNet(first, second), a is not None and 1 <= a <= 12 and b is not None and b >= 1,
                      ("layer_size", "base_channels")),
        "GatedGenerator": (lambda: GatedGenerator(first, rates=rates),
                           a is not None and a >= 2 and a % 2 == 0 and rates_ok, ("base_channels", "rates")),
        "LamaGenerator": (lambda: LamaGenerator(first, second), a is not None and a >= 1 and b is not None and b >= 0,
                          ("ngf", "n_blocks")),
        "SNPatchDiscriminator": (lambda: SNPatchDiscriminator(first, second), a is not None and a >= 1
                                 and b is not None and b >= 1, ("base_channels", "n_layers")),
    }[which]
    model = outcome(f"{which}()", not valid, build, names, not valid)
    assert (model is not None) == valid


# --------------------------------------------------------------------------------------------------- widgets


COORDINATES = st.one_of(
    st.floats(-40, 40), st.sampled_from([1e7, -1e12, 1e300, -1.7e308, math.nan, math.inf, -math.inf])
)
BRUSHES = [1, 3, 4.5, 0, -2, math.inf, math.nan, 1e6, True, "3", None]


def _exact_reference(height: int, width: int, points, radius: float, tie: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in exact rational arithmetic: pixel (r, c) is painted iff dist((c, r), segment)² ≤ radius².

    Also returns the pixels whose dist² lies within ``tie`` of radius² (none when ``tie`` is 0)."""
    painted = np.zeros((height, width), dtype=bool)
    near_tie = np.zeros((height, width), dtype=bool)
    exact = [(Fraction(x), Fraction(y)) for x, y in points]
    pairs = list(zip(exact[:-1], exact[1:])) or [(exact[0], exact[0])]
    limit = Fraction(radius) ** 2
    for (ax, ay), (bx, by) in pairs:
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        for row in range(height):
            for col in range(width):
                t = min(max(((col - ax) * dx + (row - ay) * dy) / length, 0), 1) if length else 0
                gap_x, gap_y = col - (ax + t * dx), row - (ay + t * dy)
                squared = gap_x * gap_x + gap_y * gap_y
                painted[row, col] |= squared <= limit
                near_tie[row, col] |= tie > 0 and abs(squared - limit) <= Fraction(tie)
    return painted, near_tie


@settings(SETTINGS, max_examples=100)
@given(points=st.lists(st.tuples(COORDINATES, COORDINATES), min_size=0, max_size=3),
       brush=st.sampled_from(BRUSHES), ragged=st.booleans())
@example(points=[(0.0, 1e300), (1.5, 0.0)], brush=1, ragged=False)  # clipped to x = 1.5 − 1.5e-300·y: a tie in floats
def test_canvas_stroke_sweep(points, brush, ragged):
    canvas = MaskCanvas(12, 16, brush_size=3)
    given_points = [(*point, 0.0) for point in points] if ragged and points else points
    finite = bool(points) and all(math.isfinite(v) for point in points for v in point)
    brush_ok = brush is None or (isinstance(brush, (int, float)) and not isinstance(brush, bool) and 0 < brush < math.inf)
    valid = finite and brush_ok and not (ragged and points)
    result = outcome("MaskCanvas.stroke", not valid or any(abs(v) > 40 for p in points for v in p),
                     lambda: canvas.stroke(given_points, brush_size=brush), ("points", "brush_size"), not valid)
    assert canvas.can_undo == valid  # a rejected stroke leaves no undo step
    if result is None and valid is False:
        assert canvas.hole_ratio == 0.0
    if valid and (brush or 3) < 1e6:  # the painted pixels are exactly the capsules', however far the points lie:
        # exact ties included while no point lies beyond the clipping distance; past it the clipped endpoints are
        # rounded to floats (< 1e-14 px), so pixels within 1e-9 px² of the brush's edge may go either way.
        clipped = any(abs(v) > _EXACT_CLIP_BEYOND for point in points for v in point)
        expected, undecidable = _exact_reference(12, 16, points, (brush or 3) / 2, tie=1e-9 if clipped else 0.0)
        assert np.array_equal(canvas.hole[~undecidable], expected[~undecidable])


@SETTINGS
@given(events=st.lists(st.tuples(st.sampled_from(["down", "move", "up"]), COORDINATES, COORDINATES), max_size=6))
def test_pointer_controller_never_stuck_drawing(events):
    controller = PointerController(MaskCanvas(12, 16, brush_size=2))
    for kind, x, y in events:
        finite = math.isfinite(x) and math.isfinite(y)
        drawing = controller.drawing
        needs_point = kind == "down" or (kind == "move" and drawing) or (kind == "up" and drawing)
        outcome(f"PointerController.{kind}", not finite, lambda: getattr(controller, kind)(x, y), ("points",),
                needs_point and not finite)
        if not finite:
            assert not controller.drawing  # an invalid position ends (or never starts) a stroke
        else:
            assert controller.drawing == (kind == "down" or (kind == "move" and drawing))


ARRAYS = [
    ("uint8", lambda: np.full((4, 5, 3), 200, dtype=np.uint8), True),
    ("uint16", lambda: np.full((4, 5, 3), 65535, dtype=np.uint16), True),
    ("float in [0, 1]", lambda: np.full((4, 5, 3), 0.5), True),
    ("float 0-255", lambda: np.full((4, 5, 3), 200.0), False),
    ("float NaN", lambda: np.full((4, 5, 3), np.nan), False),
    ("int64", lambda: np.zeros((4, 5, 3), dtype=np.int64), False),
    ("bool", lambda: np.zeros((4, 5, 3), dtype=bool), False),
    ("grey (H, W)", lambda: np.zeros((4, 5)), False),
    ("RGBA", lambda: np.zeros((4, 5, 4), dtype=np.uint8), False),
    ("channels first", lambda: np.zeros((3, 4, 5), dtype=np.uint8), False),
    ("a tensor", lambda: torch.zeros(4, 5, 3), False),
    ("a list", lambda: [[[0, 0, 0]]], False),
]


@pytest.mark.parametrize("name, make, valid", ARRAYS, ids=[name for name, _, _ in ARRAYS])
def test_to_tensor_sweep(name, make, valid):
    result = outcome("data.to_tensor", name not in ("uint8", "float in [0, 1]"), lambda: to_tensor(make()),
                     ("array", "dtype", "float"), not valid)
    if result is not None:
        assert result.dtype == torch.float32 and 0.0 <= float(result.min()) and float(result.max()) <= 1.0


def test_zz_sweep_tally():
    """Runs last in this file: print what every bad input got and check the sweep tried many."""
    bad = {key: count for key, count in SWEEP.items() if key[1] == "bad"}
    if not bad:
        pytest.skip("run the whole file for the tally")
    lines = [f"{function:28s} {result:13s} {count:5d}" for (function, _, result), count in sorted(bad.items())]
    total = sum(bad.values())
    errors = sum(count for (_, _, result), count in bad.items() if result == "clear error")
    print(f"\nbad-input sweep: {total} bad inputs, {errors} clear errors, {total - errors} right answers")
    print("\n".join(lines))
    assert total >= 500
