"""The scan-line rasterisers against the brute-force distance field, box slicing, and the nesting the bucket sampler relies on."""

import numpy as np
import pytest
import torch

from pconv_lessons.raster import capsule_distance_masks, rasterise_numpy, rasterise_torch

N_MASKS, HEIGHT, WIDTH = 3, 37, 53


def _random_capsules(seed: int, count: int = 40) -> np.ndarray:
    """Capsules [mask, ax, ay, bx, by, r] with the awkward cases mixed in."""
    rng = np.random.default_rng(seed)
    caps = np.column_stack([
        rng.integers(0, N_MASKS, count),
        rng.uniform(-10, WIDTH + 10, count), rng.uniform(-10, HEIGHT + 10, count),
        rng.uniform(-10, WIDTH + 10, count), rng.uniform(-10, HEIGHT + 10, count),
        rng.uniform(0, 9, count),
    ])
    caps[0:4, 3] = caps[0:4, 1]  # vertical segments
    caps[4:8, 4] = caps[4:8, 2]  # horizontal segments
    caps[8:11, 3:5] = caps[8:11, 1:3]  # zero length: discs
    caps[11:16, 1:6] = np.round(caps[11:16, 1:6])  # integer coordinates and radii: pixel centres on the boundary
    caps[16, 5] = 0.0  # radius 0: only pixel centres on the segment
    caps[17, 5] = -1.0  # negative radius: nothing
    return caps


def _boundary_distance(caps: np.ndarray) -> torch.Tensor:
    """|distance − r| of every pixel to its nearest capsule boundary, per mask (small = on a boundary)."""
    rows = torch.arange(HEIGHT, dtype=torch.float64).view(HEIGHT, 1)
    cols = torch.arange(WIDTH, dtype=torch.float64).view(1, WIDTH)
    out = torch.full((N_MASKS, HEIGHT, WIDTH), float("inf"), dtype=torch.float64)
    for mask, ax, ay, bx, by, r in caps.tolist():
        dx, dy = bx - ax, by - ay
        t = ((cols - ax) * dx + (rows - ay) * dy) / max(dx * dx + dy * dy, 1e-300)
        t = t.clamp(0, 1)
        gap = (torch.hypot(cols - ax - t * dx, rows - ay - t * dy) - r).abs()
        out[int(mask)] = torch.minimum(out[int(mask)], gap)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numpy_scanline_matches_distance_field_up_to_float64_rounding(seed):
    caps = _random_capsules(seed)
    expected = capsule_distance_masks(torch.from_numpy(caps), N_MASKS, HEIGHT, WIDTH)
    got = torch.from_numpy(rasterise_numpy(caps, np.zeros((0, 5)), N_MASKS, HEIGHT, WIDTH))
    assert expected.any() and (~expected).any()
    differ = got != expected
    assert differ.sum() <= 3
    assert (_boundary_distance(caps)[differ] < 1e-9).all(), "only a pixel centre exactly on a boundary may differ"


def test_span_union_paints_what_a_loop_over_the_spans_paints(monkeypatch):
    """The sorted-runs fill against one slice per span, on heavily overlapping spans plus repeated ones, touching
    ones and ones that run on into the next row; drawing one mask per chunk changes nothing."""
    from pconv_lessons import raster

    caps = _random_capsules(5, count=120)
    starts, lengths = raster._capsule_spans_np(caps, HEIGHT, WIDTH)
    mask, row, c0 = starts // (HEIGHT * WIDTH), starts // WIDTH % HEIGHT, starts % WIDTH
    spans = np.column_stack([mask, row, c0, c0 + lengths - 1])
    extra = np.array([[0, 3, 10, 20], [0, 3, 10, 20], [0, 3, 21, 25], [1, 5, 40, WIDTH - 1], [1, 6, 0, 2],
                      [2, HEIGHT - 1, WIDTH - 1, WIDTH - 1], [2, 0, 0, 0]])
    spans = np.concatenate([spans, extra])
    expected = np.zeros((N_MASKS, HEIGHT, WIDTH), dtype=bool)
    for mask, row, c0, c1 in spans.tolist():
        expected[mask, row, c0:c1 + 1] = True
    flat_starts = (spans[:, 0] * HEIGHT + spans[:, 1]) * WIDTH + spans[:, 2]
    got = raster._paint_spans_np(flat_starts, spans[:, 3] - spans[:, 2] + 1, N_MASKS, HEIGHT, WIDTH, np.False_, np.True_)
    assert got.dtype == bool and np.array_equal(got, expected)
    holes = rasterise_numpy(caps, np.zeros((0, 5)), N_MASKS, HEIGHT, WIDTH)
    monkeypatch.setattr(raster, "_CHUNK_PIXELS", HEIGHT * WIDTH)  # one mask per chunk
    assert np.array_equal(rasterise_numpy(caps, np.zeros((0, 5)), N_MASKS, HEIGHT, WIDTH), holes)
    masks = rasterise_numpy(caps, np.zeros((0, 5)), N_MASKS, HEIGHT, WIDTH, as_masks=True)
    assert masks.dtype == np.float32 and np.array_equal(masks == 0, holes)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_scanline_matches_distance_field_up_to_float32_rounding(seed):
    caps = _random_capsules(seed)
    expected = capsule_distance_masks(torch.from_numpy(caps), N_MASKS, HEIGHT, WIDTH)
    got = rasterise_torch(torch.from_numpy(caps).float(), torch.zeros(0, 5), N_MASKS, HEIGHT, WIDTH)
    differ = got != expected
    assert differ.float().mean() < 1e-3
    assert (_boundary_distance(caps)[differ] < 1e-4).all(), "float32 may only disagree on a stroke's boundary"


def test_boxes_match_slicing():
    boxes = np.array([[0, 3, 4, 10, 20], [1, -5, -5, 100, 2], [1, 7.5, 8.2, 9.5, 30.0], [2, 20, 20, 20, 30]], dtype=float)
    expected = np.zeros((N_MASKS, HEIGHT, WIDTH), dtype=bool)
    expected[0, 4:20, 3:10] = True
    expected[1, 0:2, :] = True
    expected[1, 9:30, 8:10] = True  # centres x in [7.5, 9.5) → columns 8, 9; y in [8.2, 30) → rows 9…29
    got_np = rasterise_numpy(np.zeros((0, 6)), boxes, N_MASKS, HEIGHT, WIDTH)
    got_torch = rasterise_torch(torch.zeros(0, 6), torch.from_numpy(boxes).float(), N_MASKS, HEIGHT, WIDTH)
    assert np.array_equal(got_np, expected)
    assert np.array_equal(got_torch.numpy(), expected)


def test_growing_nests_the_holes_and_grows_boxes_on_every_side():
    caps = _random_capsules(3)
    boxes = np.array([[0, 10, 10, 20, 15], [2, 30, 5, 40, 25]], dtype=float)
    previous = None
    for amount in (-20.0, -3.0, -0.5, 0.0, 0.5, 2.0, 6.0):
        holes = rasterise_numpy(caps, boxes, N_MASKS, HEIGHT, WIDTH, grow=np.full(N_MASKS, amount))
        if previous is not None:
            assert (holes | ~previous).all(), "a larger grow amount must keep every hole pixel"
        previous = holes
    grown = rasterise_numpy(np.zeros((0, 6)), boxes[:1], 1, HEIGHT, WIDTH, grow=np.array([2.0]))
    assert np.argwhere(grown[0]).min(0).tolist() == [8, 8] and np.argwhere(grown[0]).max(0).tolist() == [16, 21]


def test_numpy_masks_output_is_one_minus_the_holes():
    caps = _random_capsules(4)
    boxes = np.array([[1, 3, 4, 10, 20]], dtype=float)
    holes = rasterise_numpy(caps, boxes, N_MASKS, HEIGHT, WIDTH)
    masks = rasterise_numpy(caps, boxes, N_MASKS, HEIGHT, WIDTH, as_masks=True)
    assert masks.dtype == np.float32 and np.array_equal(masks, 1.0 - holes.astype(np.float32))


def test_torch_chunks_give_the_same_masks(monkeypatch):
    from pconv_lessons import raster

    caps = torch.from_numpy(_random_capsules(5)).float()
    boxes = torch.tensor([[0, 3, 4, 10, 20], [2, 30, 5, 40, 25]], dtype=torch.float32)
    whole = rasterise_torch(caps, boxes, N_MASKS, HEIGHT, WIDTH)
    monkeypatch.setattr(raster, "TORCH_CHUNK_PIXELS", HEIGHT * WIDTH)  # one mask per chunk
    assert torch.equal(rasterise_torch(caps, boxes, N_MASKS, HEIGHT, WIDTH), whole)
