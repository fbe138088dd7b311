"""Contextual attention: a hand-made example, properties, per-sample masks, and equality to a plain loop."""

import math

import pytest
import torch

from pconv_lessons.layers.contextual_attention import ContextualAttention, extract_patches
from pconv_lessons.layers.tf_same import nearest_downsample, same_padding


# ------------------------------------------------------------------ TensorFlow "SAME" padding, nearest down-sampling

@pytest.mark.parametrize("size, kernel, stride, dilation, expected", [
    (64, 3, 2, 1, (0, 1)),     # stride 2 on an even size: nothing on top, one row at the bottom
    (65, 3, 2, 1, (1, 1)),
    (64, 5, 1, 1, (2, 2)),
    (16, 3, 1, 16, (16, 16)),  # dilated: (k − 1)·d split evenly
    (8, 4, 2, 1, (1, 1)),      # contextual attention's 4×4 raw patches at stride 2
    (3, 3, 4, 1, (0, 0)),
])
def test_same_padding_follows_tensorflow(size, kernel, stride, dilation, expected):
    assert same_padding(size, size, kernel, stride, dilation) == (*expected, *expected)


def test_nearest_downsample_rounds_like_align_corners():
    x = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8)
    # ⌊8 / 3⌋ = 2 columns: round(0), round(7) ; ⌊8 / 2⌋ = 4: round(0, 7/3, 14/3, 7) = 0, 2, 5, 7
    assert nearest_downsample(x, 4)[0, 0, 0].tolist() == [0.0, 7.0]
    assert nearest_downsample(x, 2)[0, 0, 0].tolist() == [0.0, 2.0, 5.0, 7.0]


# ------------------------------------------------------------------ a plain loop, written from the equations

def loop_contextual_attention(x, mask, scale=10.0, fuse=True):
    """Contextual attention with explicit loops (rate 2, 3×3 matching patches, 4×4 raw patches), one sample at a time."""
    n, c, height, width = x.shape
    h, w = height // 2, width // 2

    def nearest(size_in, size_out):
        return [math.floor(i * (size_in - 1) / (size_out - 1) + 0.5) if size_out > 1 else 0 for i in range(size_out)]

    def at(t, y, x_):
        return t[:, y, x_] if 0 <= y < t.shape[1] and 0 <= x_ < t.shape[2] else torch.zeros(t.shape[0], dtype=t.dtype)

    out = torch.zeros_like(x)
    for s in range(n):
        rows, cols = nearest(height, h), nearest(width, w)
        small = x[s][:, rows][:, :, cols]
        mrows, mcols = nearest(mask.shape[-2], h), nearest(mask.shape[-1], w)
        small_mask = mask[s, 0][mrows][:, mcols]
        positions = [(y, x_) for y in range(h) for x_ in range(w)]
        patch = {p: torch.stack([at(small, p[0] + dy, p[1] + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
                 for p in positions}
        usable = [all(small_mask[p[0] + dy, p[1] + dx] == 1 for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                      if 0 <= p[0] + dy < h and 0 <= p[1] + dx < w) for p in positions]
        scores = torch.zeros(h * w, h * w, dtype=x.dtype)  # [background j, foreground i]
        for j, pj in enumerate(positions):
            norm = max(float(patch[pj].norm()), 1e-4)
            for i, pi in enumerate(positions):
                scores[j, i] = (patch[pi] * patch[pj]).sum() / norm
        if fuse:
            def diagonal(matrix):
                size = matrix.shape[0]
                return torch.stack([torch.stack([sum(matrix[j + d, i + d] for d in (-1, 0, 1)
                                                     if 0 <= j + d < size and 0 <= i + d < matrix.shape[1])
                                                 for i in range(matrix.shape[1])]) for j in range(size)])
            row_major = {p: k for k, p in enumerate(positions)}
            column_major = sorted(positions, key=lambda p: (p[1], p[0]))
            order = torch.tensor([row_major[p] for p in column_major])
            scores = diagonal(scores)
            scores = diagonal(scores[order][:, order])
            inverse = torch.argsort(order)
            scores = scores[inverse][:, inverse]
        mm = torch.tensor(usable, dtype=x.dtype)[:, None]
        attention = torch.softmax(scores * mm * scale, dim=0) * mm
        for i, (yi, xi) in enumerate(positions):
            for j, (yj, xj) in enumerate(positions):
                for ky in range(4):
                    for kx in range(4):
                        ty, tx = 2 * yi - 1 + ky, 2 * xi - 1 + kx
                        if 0 <= ty < height and 0 <= tx < width:
                            out[s, :, ty, tx] += attention[j, i] * at(x[s], 2 * yj - 1 + ky, 2 * xj - 1 + kx) / 4
    return out


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("size, mask_scale", [((8, 8), 1), ((8, 12), 4), ((10, 6), 2)])
def test_layer_equals_the_loop(fuse, size, mask_scale):
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    mask = torch.ones(2, 1, size[0] * mask_scale, size[1] * mask_scale, dtype=torch.float64)
    mask[0, :, : 3 * mask_scale, 2 * mask_scale : 6 * mask_scale] = 0
    mask[1, :, -4 * mask_scale :, : 2 * mask_scale] = 0
    expected = loop_contextual_attention(x, mask, fuse=fuse)
    torch.testing.assert_close(ContextualAttention(fuse=fuse)(x, mask), expected)


def test_the_loop_catches_a_layer_without_its_mask():
    """The loop reference is sharp enough to tell a layer that ignores the hole from the right one."""
    torch.manual_seed(1)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    mask = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    mask[..., 2:6, 2:6] = 0
    ignoring_the_hole = ContextualAttention()(x, torch.ones_like(mask))
    assert not torch.allclose(ignoring_the_hole, loop_contextual_attention(x, mask))


# ------------------------------------------------------------------ by hand

def test_hole_copies_the_known_patch_that_matches_its_neighbourhood():
    """A foreground patch equal to one known background patch: that patch maximises ⟨f, b/‖b‖⟩ (Cauchy–Schwarz),
    so the attention of the hole position goes to it."""
    torch.manual_seed(2)
    small = torch.rand(1, 1, 6, 6) * 0.1  # the half-resolution features: faint noise ...
    pattern = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 0.0, 1.0]])
    small[0, 0, 0:3, 0:3] = pattern      # ... a known patch around (1, 1) ...
    small[0, 0, 3:6, 3:6] = pattern      # ... and the same around (4, 4), inside the hole
    x = small.repeat_interleave(2, 2).repeat_interleave(2, 3)  # full resolution: every value on a 2×2 block
    mask = torch.ones(1, 1, 12, 12)
    mask[..., 7:11, 7:11] = 0            # the hole covers position (4, 4) of the 6×6 grid and its neighbours
    _, attention = ContextualAttention(fuse=False, softmax_scale=1000.0)(x, mask, return_attention=True)
    hole_position, source = 4 * 6 + 4, 1 * 6 + 1
    assert attention[0, :, 4, 4].argmax() == source
    assert attention[0, source, 4, 4] > 0.99
    assert attention[0, hole_position].sum() == 0, "a patch touching the hole is never copied"


def test_with_everything_known_and_a_sharp_softmax_each_patch_copies_itself():
    """Each position attends to its own patch; the 4 overlapping pastes of 4×4 patches at stride 2, divided by 4,
    give the features back away from the border (1/2 on the border rows and columns, 1/4 in the corners)."""
    torch.manual_seed(3)
    x = torch.randn(1, 4, 10, 12, dtype=torch.float64)
    output = ContextualAttention(fuse=False, softmax_scale=1e4)(x, torch.ones(1, 1, 10, 12, dtype=torch.float64))
    torch.testing.assert_close(output[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1])
    torch.testing.assert_close(output[..., 0, 1:-1], x[..., 0, 1:-1] / 2)
    torch.testing.assert_close(output[..., 0, 0], x[..., 0, 0] / 4)


# ------------------------------------------------------------------ shapes, batches, masks

def test_output_shape_and_attention_shape():
    x = torch.randn(3, 5, 16, 24)
    output, attention = ContextualAttention()(x, torch.ones(3, 1, 64, 96), return_attention=True)
    assert output.shape == x.shape
    assert attention.shape == (3, 8 * 12, 8, 12)
    torch.testing.assert_close(attention.sum(1), torch.ones(3, 8, 12))


def test_each_sample_uses_its_own_mask():
    """Ours: a batch equals its samples run one at a time. The original used the first sample's mask for all:
    that gives a different answer for the second sample."""
    torch.manual_seed(4)
    x = torch.randn(2, 3, 16, 16)
    mask = torch.ones(2, 1, 16, 16)
    mask[0, :, :8] = 0
    mask[1, :, :, 8:] = 0
    layer = ContextualAttention()
    batch = layer(x, mask)
    one_by_one = torch.cat([layer(x[i : i + 1], mask[i : i + 1]) for i in range(2)])
    torch.testing.assert_close(batch, one_by_one)
    first_mask_for_all = layer(x, mask[:1].expand(2, -1, -1, -1))
    assert not torch.allclose(first_mask_for_all[1], batch[1])


def test_extract_patches_is_row_major_with_same_padding():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    patches = extract_patches(x, 3)
    assert patches.shape == (1, 16, 1, 3, 3)
    assert patches[0, 5, 0].tolist() == [[0, 1, 2], [4, 5, 6], [8, 9, 10]]  # around (1, 1)
    assert patches[0, 0, 0, 0].tolist() == [0, 0, 0]  # zero padding above (0, 0)


def test_bad_input_is_rejected():
    layer = ContextualAttention()
    with pytest.raises(ValueError, match="multiples of rate"):
        layer(torch.randn(1, 2, 7, 8), torch.ones(1, 1, 7, 8))
    with pytest.raises(ValueError, match="mask must be shaped"):
        layer(torch.randn(1, 2, 8, 8), torch.ones(1, 1, 8, 12))
    with pytest.raises(ValueError, match="mask values"):
        layer(torch.randn(1, 2, 8, 8), torch.full((1, 1, 8, 8), 2.0))
    with pytest.raises(ValueError, match="rate"):
        ContextualAttention(rate=3)
    with pytest.raises(ValueError, match="kernel_size"):
        ContextualAttention(kernel_size=2)


# ------------------------------------------------------------------ the chunked path (large inputs)

@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("shape", [(1, 4, 16, 16), (2, 3, 16, 24), (2, 5, 20, 12)])
@pytest.mark.parametrize("chunk_elements", [1, 37, 500])
def test_chunks_equal_the_one_shot_computation(fuse, shape, chunk_elements):
    torch.manual_seed(3)
    x = torch.randn(*shape, dtype=torch.float64)
    mask = (torch.rand(shape[0], 1, 2 * shape[2], 2 * shape[3]) > 0.3).double()
    mask[:, :, 6:22, 4:18] = 0
    whole = ContextualAttention(fuse=fuse)(x, mask)
    chunked = ContextualAttention(fuse=fuse, chunk_elements=chunk_elements)(x, mask)
    assert torch.allclose(chunked, whole, rtol=0, atol=1e-12)


def test_chunks_equal_the_loop():
    torch.manual_seed(4)
    x = torch.randn(1, 2, 8, 12, dtype=torch.float64)
    mask = torch.ones(1, 1, 8, 12, dtype=torch.float64)
    mask[..., 2:6, 3:9] = 0
    chunked = ContextualAttention(chunk_elements=5)(x, mask)
    assert torch.allclose(chunked, loop_contextual_attention(x, mask), rtol=0, atol=1e-12)


def test_a_wrong_propagation_shift_is_caught_by_the_comparison():
    """The equality test can fail: a chunked path whose column-major shift forgets the wrap is not the layer."""
    torch.manual_seed(5)
    x = torch.randn(1, 3, 12, 12, dtype=torch.float64)
    mask = torch.ones(1, 1, 12, 12, dtype=torch.float64)
    mask[..., 3:9, 3:9] = 0
    layer = ContextualAttention(chunk_elements=10)
    whole = ContextualAttention()(x, mask)
    original = layer.shift_table

    def no_column_major_steps(h, w, device):
        return [table for k, table in enumerate(original(h, w, device)) if k // 3 == 1]  # k₂ = 0 terms only

    layer.shift_table = no_column_major_steps
    assert not torch.allclose(layer(x, mask), whole, rtol=0, atol=1e-6)


def test_the_chunked_path_never_builds_the_full_score_matrix(monkeypatch):
    torch.manual_seed(6)
    x = torch.randn(1, 4, 32, 32)
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 0
    positions = 16 * 16
    largest = []
    softmax = torch.softmax
    monkeypatch.setattr(torch, "softmax", lambda t, dim: largest.append(t.numel()) or softmax(t, dim=dim))
    ContextualAttention(chunk_elements=positions * 16)(x, mask)
    assert largest and max(largest) <= positions * 16 < positions * positions


def test_the_generator_gives_the_same_fill_in_chunks():
    from pconv_lessons.models import GatedGenerator

    torch.manual_seed(7)
    generator = GatedGenerator(base_channels=8).eval()
    image, mask = torch.rand(1, 3, 128, 96), torch.ones(1, 1, 128, 96)
    mask[..., 30:90, 20:70] = 0
    with torch.no_grad():
        whole = generator(image, mask)
        generator.refine.attention.chunk_elements = 97
        chunked = generator(image, mask)
    assert (chunked - whole).abs().max() <= 1e-5


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "many"])
def test_chunk_elements_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="chunk_elements must be a positive int"):
        ContextualAttention(chunk_elements=bad)


# ------------------------------------------------------------------ subnormal attention weights

def _subnormal_count(t):
    return int(((t > 0) & (t < torch.finfo(t.dtype).tiny)).sum())


def _sharp_case():
    """float32 features whose score gaps exceed 8.7, so that exp(10·(s − max)) underflows into subnormals."""
    torch.manual_seed(8)
    x = torch.randn(1, 8, 32, 32) * 6
    mask = torch.ones(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 0
    return x, mask


def test_attention_weights_hold_no_subnormal_numbers_and_the_fill_is_unchanged():
    x, mask = _sharp_case()
    layer = ContextualAttention(fuse=False)
    small = nearest_downsample(x, 2)
    usable = layer.usable_patches(mask, small.shape[-2:])[:, :, None, None]
    scores = layer.similarity(small, extract_patches(small, 3))
    kept = torch.softmax(scores * usable * 10.0, dim=1) * usable  # the original's weights, subnormals kept
    assert _subnormal_count(kept) > 500  # the case does produce them (941)
    output, attention = layer(x, mask, return_attention=True)
    assert _subnormal_count(attention) == 0
    torch.testing.assert_close(output, layer.paste(kept, extract_patches(x, 4, stride=2)), rtol=0, atol=1e-6)


def test_the_chunked_path_flushes_its_weights_too(monkeypatch):
    from pconv_lessons.layers import contextual_attention as module

    x, mask = _sharp_case()
    real, counts = module.flush_subnormal, []

    def recording(weights):
        flushed = real(weights)
        counts.append(_subnormal_count(flushed))
        return flushed

    monkeypatch.setattr(module, "flush_subnormal", recording)
    whole = ContextualAttention(fuse=False)(x, mask)
    chunked = ContextualAttention(fuse=False, chunk_elements=16 * 16 * 20)(x, mask)
    assert len(counts) > 2 and max(counts) == 0
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)


def test_patch_norms_are_the_clamped_euclidean_norms_of_the_last_dimension():
    from pconv_lessons.layers.contextual_attention import patch_norms

    patches = torch.randn(2, 5, 12, dtype=torch.float64)
    patches[1, 3] = 0  # a flat background patch: its norm is clamped, not 0 (no division by zero later)
    expected = torch.tensor([[max(sum(v * v for v in patches[n, j].tolist()) ** 0.5, 1e-4) for j in range(5)]
                             for n in range(2)], dtype=torch.float64)
    torch.testing.assert_close(patch_norms(patches), expected, rtol=1e-12, atol=0)
