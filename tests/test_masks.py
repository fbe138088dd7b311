"""Mask generators: format, seeding, source parameters, LaMa's own generator, bands, buckets, NumPy vs torch, loading."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from torch.utils.data import DataLoader

from pconv_lessons.masks import (
    HOLE_RATIO_BANDS,
    KINDS,
    LAMA_PRESETS,
    PAPER_BUCKETS,
    MaskDataset,
    MaskStream,
    generate,
    generate_in_bucket,
    hole_ratio,
    mask_batches,
    mask_rng,
)
from pconv_lessons.masks import lama
from pconv_lessons.masks.draw import primitives_numpy

LAMA_REFERENCE = json.loads((Path(__file__).parent / "data" / "lama_mask_reference.json").read_text())["256"]
REFERENCE_MASKS = 2000

BACKENDS = ("numpy", "torch")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Mask drawing is many small ops: on a shared CPU one thread is faster than several."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_masks_are_binary_float_n1hw_with_holes(kind, backend):
    out = generate(kind, 6, (48, 80), seed=3, backend=backend)
    assert out.shape == (6, 1, 48, 80) and out.dtype == torch.float32
    assert ((out == 0) | (out == 1)).all()
    ratio = hole_ratio(out)
    assert (ratio > 0).all() and (ratio < 1).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_masks_other_seed_other_masks(kind, backend):
    first = generate(kind, 4, 64, seed=11, backend=backend)
    assert torch.equal(first, generate(kind, 4, 64, seed=11, backend=backend))
    assert not torch.equal(first, generate(kind, 4, 64, seed=12, backend=backend))
    assert not torch.equal(first[0], first[1]), "masks of one batch must differ"


def test_numpy_mask_depends_only_on_its_index():
    many = generate("lama_thin", 7, 64, seed=5, backend="numpy")
    assert torch.equal(many[:3], generate("lama_thin", 3, 64, seed=5, backend="numpy"))


def test_seed_none_draws_fresh_masks():
    assert not torch.equal(generate("free_form", 2, 64), generate("free_form", 2, 64))


def _numpy_capsules(kind, count, size, seed=0):
    return primitives_numpy(kind, range(count), size, size, seed)


def _lama_draws(kind, count, side=256, seed=0):
    """What LaMa's sampler drew for each of ``count`` masks: a stroke table, or boxes (b, 4)."""
    return [lama.lama_np(mask_rng(seed, index), side, side, kind) for index in range(count)]


@pytest.mark.parametrize("preset", ["thin", "medium", "thick"])
@pytest.mark.parametrize("side", [256, 512])
def test_lama_strokes_use_the_published_widths_lengths_and_counts(preset, side):
    p = LAMA_PRESETS[(preset, side)].irregular
    tables = [d.table for d in _lama_draws(f"lama_{preset}", 300, side) if isinstance(d, lama.StrokeDraws)]
    counts = {len(table) for table in tables}
    assert min(counts) >= p.min_times and max(counts) <= p.max_times + 1
    if p.max_times - p.min_times <= 6:  # LaMa's generator reaches max_times + 1 strokes, one more than its config says
        assert counts == set(range(p.min_times, p.max_times + 2))
    capsules = lama.stroke_capsules_np(np.concatenate(tables), np.zeros(sum(map(len, tables))), side, side)
    radius = capsules[:, 5]
    assert radius.min() >= lama.cv2_radius(5) and radius.max() <= lama.cv2_radius(5 + p.max_width - 1)
    length = np.hypot(capsules[:, 3] - capsules[:, 1], capsules[:, 4] - capsules[:, 2])
    assert length.max() <= 10 + p.max_len - 1 + 1.5  # border clipping shortens; whole-pixel truncation adds < √2


def test_cv2_radius_matches_measured_cv2_areas():
    """cv2.line's area relative to the nominal capsule of radius t/2 (measured with cv2 4.14, see lama.py)."""
    for thickness, cv2_over_nominal in [(5, 1.40), (10, 1.08), (104, 1.003)]:
        ours_over_nominal = (lama.cv2_radius(thickness) / (thickness / 2))
        assert abs(ours_over_nominal - cv2_over_nominal) < 0.06 * cv2_over_nominal  # lines ≈ 2r·length, long


@pytest.mark.parametrize("kind, expected_share", [("lama_thin", 0.0), ("lama_medium", 0.3 / 1.3),
                                                  ("lama_thick", 0.3 / 1.3), ("mixed", 0.5), ("box", 1.0)])
def test_lama_mix_picks_boxes_with_its_configured_share(kind, expected_share):
    draws = _lama_draws(kind, 600)
    share = np.mean([not isinstance(d, lama.StrokeDraws) for d in draws])
    assert abs(share - expected_share) <= 4 * np.sqrt(expected_share * (1 - expected_share) / 600) + 1e-9


@pytest.mark.parametrize("kind, preset", [("lama_medium", "medium"), ("lama_thick", "thick"), ("box", "abl-04")])
def test_lama_boxes_follow_their_preset_sizes_counts_and_margin(kind, preset):
    p = LAMA_PRESETS[(preset, 256)].boxes
    boxes = [d[1] for d in _lama_draws(kind, 400) if not isinstance(d, lama.StrokeDraws)]
    per_mask = {len(b) for b in boxes}
    assert per_mask == set(range(p.min_times, p.max_times + 1))
    flat = np.concatenate(boxes)
    sides = np.concatenate([flat[:, 2] - flat[:, 0], flat[:, 3] - flat[:, 1]])
    assert sides.min() == p.bbox_min_size and sides.max() <= p.bbox_max_size
    assert sides.max() >= p.bbox_max_size - 3  # the largest side is reached (LaMa's randint bound is inclusive)
    assert flat[:, :2].min() >= p.margin and flat[:, 2:].max() <= 256 - p.margin


def _mean_gap_to_lama(kind: str) -> float:
    reference = LAMA_REFERENCE[kind]["mean"]
    return float(hole_ratio(generate(kind, REFERENCE_MASKS, 256, seed=2024)).mean()) - reference


@pytest.mark.parametrize("kind", ["lama_thin", "lama_medium", "lama_thick", "mixed", "box"])
def test_mean_hole_ratio_matches_lamas_own_generator(kind):
    """LaMa's own generator (run beside ours, 20,000 masks each, numbers in tests/data) vs 2,000 of ours at 256²."""
    assert abs(_mean_gap_to_lama(kind)) <= 0.015


DEEPFILL_REFERENCE = json.loads((Path(__file__).parent / "data" / "deepfillv2_mask_reference.json").read_text())["256"]


def test_free_form_mean_hole_ratio_matches_deepfill_v2s_own_generator():
    """DeepFill v2's brush_stroke_mask (run beside ours, 20,000 masks, numbers in tests/data) vs 2,000 of ours at 256²."""
    reference = DEEPFILL_REFERENCE["free_form"]
    ours = float(hole_ratio(generate("free_form", REFERENCE_MASKS, 256, seed=2024)).mean())
    assert abs(ours - reference["mean"]) <= 4 * reference["std"] / REFERENCE_MASKS**0.5  # 0.007


def test_lama_comparison_catches_nominal_cv2_widths(monkeypatch):
    """The check above can fail: strokes of the nominal width t/2 (what cv2 does not draw) miss LaMa's thin masks."""
    monkeypatch.setattr(lama, "cv2_radius", lambda thickness, scale=1.0: thickness / 2 * scale)
    assert abs(_mean_gap_to_lama("lama_thin")) > 0.015


@pytest.mark.parametrize("kind", ["lama_thin", "lama_medium", "lama_thick", "box", "mixed"])
def test_mean_hole_ratio_lies_in_the_documented_band(kind):
    low, high = HOLE_RATIO_BANDS[(kind, 256)]
    ratio = hole_ratio(generate(kind, 150, 256, seed=2024))
    assert low <= float(ratio.mean()) <= high


def _perimeter(batch: torch.Tensor) -> torch.Tensor:
    """Hole pixels with a known 4-neighbour, per mask: sensitive to stroke width and count, not only area."""
    hole = batch[:, 0] == 0
    known = ~hole
    edge = torch.zeros_like(hole)
    edge[:, 1:] |= known[:, :-1]
    edge[:, :-1] |= known[:, 1:]
    edge[:, :, 1:] |= known[:, :, :-1]
    edge[:, :, :-1] |= known[:, :, 1:]
    return (hole & edge).flatten(1).sum(1).double()


@pytest.mark.parametrize("kind", KINDS)
def test_torch_path_draws_the_numpy_distribution(kind):
    numpy_masks = generate(kind, 300, 96, seed=7, backend="numpy")
    torch_masks = generate(kind, 300, 96, seed=7, backend="torch")
    a, b = hole_ratio(numpy_masks), hole_ratio(torch_masks)
    assert ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3
    assert abs(float(a.mean() - b.mean())) < 0.03 and abs(float(a.std() - b.std())) < 0.03
    pa, pb = _perimeter(numpy_masks).mean(), _perimeter(torch_masks).mean()
    assert abs(float(pa / pb) - 1) < 0.1


def test_distribution_test_detects_a_wrong_preset():
    """The two-sample test above can fail: thin and medium strokes are told apart."""
    a = hole_ratio(generate("lama_thin", 300, 96, seed=7, backend="numpy"))
    b = hole_ratio(generate("lama_medium", 300, 96, seed=7, backend="torch"))
    perimeter_ratio = _perimeter(generate("lama_thin", 100, 96, seed=7)).mean() / _perimeter(
        generate("lama_medium", 100, 96, seed=7)).mean()
    assert ks_2samp(a.numpy(), b.numpy()).pvalue < 1e-3 or abs(float(perimeter_ratio) - 1) > 0.1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["shapes", "free_form", "lama_thin", "lama_thick", "box", "mixed"])
def test_bucket_sampler_always_lands_in_the_bucket(kind, backend):
    for low, high in PAPER_BUCKETS:
        out = generate_in_bucket(kind, 6, 64, (low, high), seed=1, backend=backend)
        assert out.shape == (6, 1, 64, 64) and ((out == 0) | (out == 1)).all()
        ratio = hole_ratio(out)
        assert ((ratio > low) & (ratio <= high)).all(), (kind, low, high, ratio)


def test_bucket_sampler_is_reproducible_and_keeps_masks_already_inside():
    bucket = (0.2, 0.3)
    first = generate_in_bucket("lama_medium", 5, 64, bucket, seed=9)
    assert torch.equal(first, generate_in_bucket("lama_medium", 5, 64, bucket, seed=9))
    plain = generate("lama_medium", 5, 64, seed=9)
    inside = ((hole_ratio(plain) > 0.2) & (hole_ratio(plain) <= 0.3)).nonzero().flatten()
    assert len(inside) > 0
    assert torch.equal(first[inside], plain[inside])


def test_bucket_on_a_tiny_image_is_an_error_not_a_loop():
    with pytest.raises(ValueError, match="hole ratio in"):
        generate_in_bucket("box", 2, 3, (0.01, 0.1))  # 9 pixels: ratios are multiples of 1/9
    out = generate_in_bucket("box", 3, 4, (0.01, 0.1), seed=0)  # 16 pixels: exactly one hole pixel fits
    assert (hole_ratio(out) == 1 / 16).all()


@pytest.mark.parametrize(
    "call, allowed",
    [
        (lambda: generate("lama_huge", 1, 64), "lama_thick"),
        (lambda: generate("box", 1, 0), "positive"),
        (lambda: generate("box", 1, (-4, 8)), "positive"),
        (lambda: generate("box", 1, (8, 8, 8)), "(H, W)"),
        (lambda: generate("box", -1, 8), "≥ 0"),
        (lambda: generate("box", 1, 8, backend="cupy"), "numpy"),
        (lambda: generate_in_bucket("box", 1, 64, (-0.1, 0.2)), "0 ≤ lo < hi ≤ 1"),
        (lambda: generate_in_bucket("box", 1, 64, (0.5, 1.2)), "0 ≤ lo < hi ≤ 1"),
        (lambda: generate_in_bucket("box", 1, 64, (0.3, 0.2)), "(0.01, 0.1)"),
        (lambda: generate_in_bucket("box", 1, 64, 0.3), "pair"),
        (lambda: generate_in_bucket("lama_fat", 1, 64, (0.1, 0.2)), "lama_thin"),
        (lambda: MaskDataset("squares", 64, 10), "free_form"),
    ],
)
def test_bad_input_names_the_allowed_values(call, allowed):
    with pytest.raises(ValueError) as error:
        call()
    assert allowed in str(error.value)


def test_hole_ratio_by_hand_and_rejects_bad_masks():
    batch = torch.ones(2, 1, 4, 5)
    batch[0, 0, 1:3, 1:4] = 0  # 6 of 20 pixels are holes
    batch[1, 0, 0, 0] = 0.5  # a soft mask counts 1 − value
    assert torch.allclose(hole_ratio(batch), torch.tensor([0.3, 0.025], dtype=torch.float64))
    with pytest.raises(ValueError, match="1 channel"):
        hole_ratio(torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        hole_ratio(torch.full((1, 1, 4, 4), 2.0))


def test_dataset_item_is_the_generated_mask_of_that_index():
    data = MaskDataset("free_form", (40, 56), length=5, seed=4)
    expected = generate("free_form", 5, (40, 56), seed=4)
    assert len(data) == 5 and data[3].shape == (1, 40, 56)
    assert torch.equal(torch.stack([data[i] for i in range(5)]), expected)
    with pytest.raises(IndexError):
        data[5]


def test_stream_workers_never_repeat_and_are_reproducible():
    def first_batches(workers):
        loader = DataLoader(MaskStream("lama_thin", 32, seed=8, chunk=4), batch_size=4, num_workers=workers)
        batches = []
        for batch in loader:
            batches.append(batch)
            if len(batches) == 4:
                return torch.cat(batches)

    two_workers = first_batches(2)
    flat = two_workers.flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == len(flat), "no mask may appear twice"
    assert torch.equal(two_workers, first_batches(2))
    # worker 0 serves indices 0, 2, 4, 6 and worker 1 serves 1, 3, 5, 7; DataLoader alternates their batches
    reference = generate("lama_thin", 8, 32, seed=8)
    assert torch.equal(two_workers[:4], reference[0::2]) and torch.equal(two_workers[4:8], reference[1::2])


def test_mask_batches_resume_where_they_left_off():
    stream = mask_batches("mixed", 3, 48, seed=1)
    first, second = next(stream), next(stream)
    resumed = next(mask_batches("mixed", 3, 48, seed=1, start=1))
    assert torch.equal(second, resumed) and not torch.equal(first, second)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_gpu_batches_match_the_cpu_distribution(kind):
    on_gpu = generate(kind, 400, 128, seed=3, device="cuda")
    assert on_gpu.is_cuda and on_gpu.shape == (400, 1, 128, 128)
    a, b = hole_ratio(on_gpu).cpu(), hole_ratio(generate(kind, 400, 128, seed=3))
    assert ks_2samp(a.numpy(), b.numpy()).pvalue > 1e-3


@pytest.mark.gpu
def test_gpu_bucket_sampler():
    out = generate_in_bucket("lama_thick", 32, 128, (0.4, 0.5), seed=0, device="cuda")
    ratio = hole_ratio(out)
    assert out.is_cuda and ((ratio > 0.4) & (ratio <= 0.5)).all()


def test_example_mask_is_fixed_binary_and_scales_with_size():
    from pconv_lessons.masks import example_mask

    small, large = example_mask(64), example_mask(256)
    assert small.shape == (1, 1, 64, 64) and large.shape == (1, 1, 256, 256)
    assert torch.equal(example_mask(64), small), "the lessons' example mask is not random"
    assert set(torch.unique(large).tolist()) == {0.0, 1.0}
    assert 0.15 < hole_ratio(small).item() < 0.18 and 0.15 < hole_ratio(large).item() < 0.18
    assert large[0, 0, 40, 150] == 0 and large[0, 0, 5, 5] == 1  # inside the rectangle / a known corner
    with pytest.raises(ValueError, match="one int size"):
        example_mask((64, 32))
