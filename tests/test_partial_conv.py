"""PartialConv2d against a brute-force loop over output positions, plus the properties the paper implies."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.layers import PartialConv2d


def loop_partial_conv(x, mask, weight, bias, stride, padding, dilation, multi_channel):
    """The paper's formula evaluated window by window, in plain Python loops (float64)."""
    n_batch, _, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x_pad = F.pad(x, (pw, pw, ph, ph))
    mask_pad = F.pad(mask, (pw, pw, ph, ph))
    out_h = (height + 2 * ph - dh * (kernel_h - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kernel_w - 1) - 1) // sw + 1
    out = torch.zeros(n_batch, out_channels, out_h, out_w, dtype=torch.float64)
    new_mask = torch.zeros(n_batch, out_channels if multi_channel else 1, out_h, out_w, dtype=torch.float64)
    for n, i, j in itertools.product(range(n_batch), range(out_h), range(out_w)):
        rows = slice(i * sh, i * sh + dh * (kernel_h - 1) + 1, dh)
        cols = slice(j * sw, j * sw + dw * (kernel_w - 1) + 1, dw)
        x_window = x_pad[n, :, rows, cols]
        m_window = mask_pad[n, :, rows, cols]
        known = m_window.sum()
        if known == 0:
            continue
        window_size = m_window.numel()
        for c in range(out_channels):
            value = (weight[c] * x_window * m_window).sum() * window_size / known
            out[n, c, i, j] = value + (bias[c] if bias is not None else 0.0)
        new_mask[n, :, i, j] = 1.0
    return out, new_mask


CASES = [
    # in, out, kernel, stride, padding, dilation, bias, multi_channel, H, W
    (3, 4, 3, 1, 1, 1, True, False, 9, 8),
    (3, 4, 3, 1, 1, 1, True, True, 9, 8),
    (2, 3, 5, 2, 2, 1, False, False, 11, 10),
    (2, 3, 5, 2, 2, 1, True, True, 11, 10),
    (4, 2, 3, 1, 2, 2, True, False, 10, 9),
    (4, 2, 3, 1, 2, 2, False, True, 10, 9),
    (1, 5, 7, 2, 3, 1, True, False, 13, 12),
    (3, 2, (3, 5), (2, 1), (1, 2), (1, 2), True, False, 9, 11),
    (3, 2, (3, 5), (1, 2), (0, 1), (2, 1), True, True, 10, 9),
    (2, 2, 1, 1, 0, 1, True, False, 6, 5),
    (2, 2, 4, 3, 1, 1, True, True, 12, 11),
]


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_matches_loop_formula(case):
    c_in, c_out, kernel, stride, padding, dilation, bias, multi, height, width = case
    torch.manual_seed(len(str(case)))
    layer = PartialConv2d(c_in, c_out, kernel, stride, padding, dilation, bias=bias, multi_channel=multi).double()
    x = torch.randn(2, c_in, height, width, dtype=torch.float64)
    mask = (torch.rand(2, c_in if multi else 1, height, width) > 0.55).double()
    mask[0, :, : height - 4, :] = 0  # a hole of whole rows, so some windows see no known pixel
    out, new_mask = layer(x, mask)
    expected_out, expected_mask = loop_partial_conv(
        x, mask, layer.weight, layer.bias, _pair(stride), _pair(padding), _pair(dilation), multi
    )
    assert out.shape == expected_out.shape
    assert new_mask.shape == expected_mask.shape
    assert (out - expected_out).abs().max().item() < 1e-5
    assert torch.equal(new_mask, expected_mask)
    assert (expected_mask == 0).any() and (expected_mask == 1).any(), "the case should hold both kinds of window"


def test_soft_mask_matches_loop_formula():
    layer = PartialConv2d(2, 3, 3, padding=1).double()
    x = torch.randn(1, 2, 7, 6, dtype=torch.float64)
    mask = torch.rand(1, 1, 7, 6, dtype=torch.float64) * (torch.rand(1, 1, 7, 6) > 0.3)
    out, new_mask = layer(x, mask)
    expected_out, expected_mask = loop_partial_conv(x, mask, layer.weight, layer.bias, (1, 1), (1, 1), (1, 1), False)
    assert (out - expected_out).abs().max().item() < 1e-5
    assert torch.equal(new_mask, expected_mask)


def test_hand_worked_example():
    # 3x3 window, one channel, weights all 1, bias 0.5: the window holds values 1..9, four of them known.
    layer = PartialConv2d(1, 1, 3)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(0.5)
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    mask = torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 0, 1]]).view(1, 1, 3, 3)
    out, new_mask = layer(x, mask)
    # known values 1 + 3 + 7 + 9 = 20, scaled by 9/4, plus the bias: 45.5
    assert out.item() == pytest.approx(20 * 9 / 4 + 0.5)
    assert new_mask.item() == 1.0


@pytest.mark.parametrize("multi", [False, True])
def test_all_ones_mask_equals_conv2d(multi):
    layer = PartialConv2d(3, 8, 3, stride=2, multi_channel=multi)
    conv = nn.Conv2d(3, 8, 3, stride=2)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 17, 16)
    mask = torch.ones(2, 3 if multi else 1, 17, 16)
    out, new_mask = layer(x, mask)
    torch.testing.assert_close(out, conv(x), rtol=1e-5, atol=1e-5)
    assert torch.all(new_mask == 1)


def test_all_ones_mask_with_padding_differs_only_at_the_border():
    layer = PartialConv2d(3, 4, 3, padding=1)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(1, 3, 10, 10)
    out, _ = layer(x, torch.ones(1, 1, 10, 10))
    reference = conv(x)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out[..., 0, :], reference[..., 0, :]), "zero padding counts as holes at the border"


def test_gradients_reach_x_only_through_known_pixels():
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 12, 12, requires_grad=True)
    mask = (torch.rand(2, 1, 12, 12) > 0.5).float()
    out, _ = layer(x, mask)
    out.square().sum().backward()
    hole = (mask == 0).expand_as(x)
    assert torch.all(x.grad[hole] == 0)
    assert x.grad[~hole].abs().sum() > 0
    assert layer.weight.grad.abs().sum() > 0 and layer.bias.grad.abs().sum() > 0
    assert layer.mask_kernel.grad is None


@pytest.mark.parametrize("multi", [False, True])
def test_all_hole_mask_gives_exact_zeros(multi):
    layer = PartialConv2d(3, 4, 3, padding=1, multi_channel=multi)
    x = torch.randn(2, 3, 8, 8)
    out, new_mask = layer(x, torch.zeros(2, 3 if multi else 1, 8, 8))
    assert torch.all(out == 0) and torch.all(new_mask == 0)


def test_holes_too_wide_for_the_window_get_zero_and_stay_holes():
    layer = PartialConv2d(2, 2, 3, padding=1)
    mask = torch.ones(1, 1, 9, 9)
    mask[..., 2:7, 2:7] = 0  # 5x5 hole: its centre pixel sees no known pixel through a 3x3 window
    out, new_mask = layer(torch.randn(1, 2, 9, 9), mask)
    assert torch.all(out[..., 4, 4] == 0)
    assert new_mask[0, 0, 4, 4] == 0
    assert new_mask.sum() == 81 - 9, "the hole shrinks by one pixel on every side"


def test_multi_channel_mask_shapes():
    layer = PartialConv2d(3, 5, 3, stride=2, padding=1, multi_channel=True)
    out, new_mask = layer(torch.randn(2, 3, 9, 9), torch.ones(2, 3, 9, 9))
    assert out.shape == (2, 5, 5, 5)
    assert new_mask.shape == (2, 5, 5, 5)


def test_bf16_autocast_is_finite_and_close_to_float32():
    layer = PartialConv2d(8, 8, 3, padding=1)
    x = torch.randn(2, 8, 16, 16)
    mask = (torch.rand(2, 1, 16, 16) > 0.7).float()
    mask[0] = 0
    reference, reference_mask = layer(x, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new_mask = layer(x, mask)
    assert torch.isfinite(out).all()
    assert torch.equal(new_mask, reference_mask) and new_mask.dtype == torch.float32
    scale = reference.abs().max()
    assert (out.float() - reference).abs().max() < 0.05 * scale


@pytest.mark.parametrize(
    "mask, message",
    [
        (torch.ones(2, 1, 8), "shaped (N, C, H, W)"),
        (torch.ones(2, 2, 8, 8), "must have 1 channel"),
        (torch.ones(2, 1, 8, 8, dtype=torch.bool), "floating tensor"),
        (torch.full((2, 1, 8, 8), 255.0), "values must lie in [0, 1]"),
        (-torch.ones(2, 1, 8, 8), "values must lie in [0, 1]"),
        (torch.full((2, 1, 8, 8), float("nan")), "values must lie in [0, 1]"),
        (torch.ones(2, 1, 8, 7), "spatial size"),
        (torch.ones(3, 1, 8, 8), "batch size"),
    ],
)
def test_bad_masks_are_rejected_with_a_clear_message(mask, message):
    layer = PartialConv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        layer(torch.randn(2, 3, 8, 8), mask)


def test_multi_channel_layer_rejects_single_channel_mask():
    layer = PartialConv2d(3, 4, 3, multi_channel=True)
    with pytest.raises(ValueError, match="must have 3 channel"):
        layer(torch.randn(1, 3, 8, 8), torch.ones(1, 1, 8, 8))


def test_wrong_input_channels_are_rejected():
    layer = PartialConv2d(3, 4, 3)
    with pytest.raises(ValueError, match="x must have 3 channels"):
        layer(torch.randn(1, 2, 8, 8), torch.ones(1, 1, 8, 8))


@pytest.mark.gpu
@pytest.mark.parametrize("multi", [False, True])
def test_cuda_matches_cpu_also_channels_last(multi):
    layer = PartialConv2d(8, 16, 3, stride=2, padding=1, multi_channel=multi)
    x = torch.randn(4, 8, 33, 31)
    mask = (torch.rand(4, 8 if multi else 1, 33, 31) > 0.5).float()
    reference, reference_mask = layer(x, mask)
    gpu_layer = layer.cuda().to(memory_format=torch.channels_last)
    with torch.backends.cudnn.flags(allow_tf32=False):
        out, new_mask = gpu_layer(x.cuda().to(memory_format=torch.channels_last), mask.cuda())
    torch.testing.assert_close(out.cpu(), reference, rtol=1e-4, atol=1e-4)
    assert torch.equal(new_mask.cpu(), reference_mask)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, _ = gpu_layer(x.cuda(), mask.cuda())
    assert torch.isfinite(out).all()
