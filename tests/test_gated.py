"""Gated convolution, the DeepFill v2-style generator, SN-PatchGAN and the hinge losses, each against an independent reference."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.layers import GatedConv2d, GatedUpsample, collect_gates
from pconv_lessons.losses import hinge_d_loss, hinge_g_loss
from pconv_lessons.models import GatedGenerator, SNPatchDiscriminator


def two_conv_reference(layer: GatedConv2d) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Two separate convolutions holding the feature and gate halves of the fused layer's weights."""
    fused = layer.conv
    convs = []
    for half in (slice(0, layer.out_channels), slice(layer.out_channels, 2 * layer.out_channels)):
        conv = nn.Conv2d(
            layer.in_channels, layer.out_channels, fused.kernel_size, fused.stride, fused.padding, fused.dilation
        ).double()
        with torch.no_grad():
            conv.weight.copy_(fused.weight[half])
            conv.bias.copy_(fused.bias[half])
        convs.append(conv)
    return convs[0], convs[1]


CASES = [
    # in, out, kernel, stride, padding, dilation, activation, H, W
    (3, 4, 3, 1, 1, 1, nn.ELU, 9, 8),
    (5, 2, 5, 2, 2, 1, nn.ELU, 11, 10),
    (4, 6, 3, 1, 4, 4, nn.ELU, 12, 13),
    (2, 3, (3, 5), (2, 1), (1, 2), (1, 2), nn.LeakyReLU(0.2), 9, 11),
    (3, 3, 3, 1, 1, 1, None, 7, 7),
]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_gated_conv_equals_two_convs_with_split_weights(case):
    c_in, c_out, kernel, stride, padding, dilation, activation, height, width = case
    layer = GatedConv2d(c_in, c_out, kernel, stride, padding, dilation, activation=activation).double()
    conv_feature, conv_gate = two_conv_reference(layer)
    x = torch.randn(2, c_in, height, width, dtype=torch.float64)
    phi = layer.activation if layer.activation is not None else (lambda t: t)
    expected = phi(conv_feature(x)) * torch.sigmoid(conv_gate(x))
    layer.keep_gates = True
    out = layer(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.last_gates, torch.sigmoid(conv_gate(x)), rtol=0, atol=1e-12)
    assert layer.last_gates.min() > 0 and layer.last_gates.max() < 1


def test_default_activation_is_elu_and_gates_are_not_kept_by_default():
    layer = GatedConv2d(2, 3, 3)
    assert isinstance(layer.activation, nn.ELU)
    layer(torch.randn(1, 2, 5, 5))
    assert layer.last_gates is None


def test_gated_conv_with_closed_gates_outputs_zero():
    layer = GatedConv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        layer.conv.bias[3:] = -1e4  # gate bias → σ ≈ 0 everywhere
    assert torch.all(layer(torch.randn(1, 2, 6, 6)).abs() < 1e-30)


def test_gated_upsample_is_nearest_then_gated_conv():
    block = GatedUpsample(3, 5).double()
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    conv_feature, conv_gate = two_conv_reference(block.conv)
    up = x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest ×2, written independently
    expected = F.elu(conv_feature(up)) * torch.sigmoid(conv_gate(up))
    out = block(x)
    assert out.shape == (2, 5, 10, 14)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_gated_conv_rejects_bad_input():
    layer = GatedConv2d(3, 4, 3)
    with pytest.raises(ValueError, match="3 channels"):
        layer(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="floating"):
        layer(torch.ones(1, 3, 8, 8, dtype=torch.int64))


def test_collect_gates_returns_every_gated_layer_and_restores_flags():
    model = GatedGenerator(base_channels=4)
    image, mask = torch.rand(1, 3, 16, 20), torch.ones(1, 1, 16, 20)
    gates = collect_gates(model, image, mask)
    gated_layers = [m for m in model.modules() if isinstance(m, GatedConv2d)]
    assert len(gated_layers) == 17 + 10 + 6 + 2 + 7  # coarse; refine: dilated branch, attention branch, decoder
    assert len(gates) == len(gated_layers) - 2  # each stage's 3-channel output layer has no gate
    assert gates["coarse.0"].shape == (1, 2, 16, 24)  # padded to a multiple of 8
    assert gates["coarse.6"].shape == (1, 8, 4, 6)  # after two stride-2 layers, first dilated layer
    assert all(not layer.keep_gates and layer.last_gates is None for layer in gated_layers)
    with pytest.raises(ValueError, match="no GatedConv2d"):
        collect_gates(nn.Conv2d(1, 1, 1), torch.rand(1, 1, 2, 2))


@pytest.mark.parametrize("size", [(37, 51), (33, 32), (64, 29), (16, 16)])
def test_generator_output_matches_input_size(size):
    model = GatedGenerator(base_channels=4)
    image = torch.rand(2, 3, *size)
    mask = (torch.rand(2, 1, *size) > 0.4).float()
    coarse, prediction = model(image, mask, return_coarse=True)
    assert coarse.shape == prediction.shape == image.shape
    assert torch.isfinite(prediction).all() and prediction.min() >= 0 and prediction.max() <= 1


def test_generator_ignores_hole_content_and_sketch_outside_the_hole():
    model = GatedGenerator(base_channels=4, sketch=True)
    image = torch.rand(1, 3, 24, 28)
    mask = torch.ones(1, 1, 24, 28)
    mask[..., 8:16, 10:20] = 0
    sketch = torch.zeros(1, 1, 24, 28)
    sketch[..., 12, :] = 1  # a horizontal stroke across the image
    reference = model(image, mask, sketch)
    noisy_hole = image + (1 - mask) * torch.randn_like(image)
    torch.testing.assert_close(model(noisy_hole, mask, sketch), reference)
    stroke_only_in_hole = sketch * (1 - mask)
    torch.testing.assert_close(model(image, mask, stroke_only_in_hole), reference)
    assert not torch.allclose(model(image, mask), reference), "a sketch inside the hole must change the prediction"


def test_generator_rejects_bad_input():
    model = GatedGenerator(base_channels=4)
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="3 channels"):
        model(torch.rand(1, 4, 16, 16), torch.ones(1, 1, 16, 16))
    with pytest.raises(ValueError, match="mask values"):
        model(image, torch.full((1, 1, 16, 16), 2.0))
    with pytest.raises(ValueError, match="sketch=True"):
        model(image, torch.ones(1, 1, 16, 16), torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="sketch must be shaped"):
        GatedGenerator(base_channels=4, sketch=True)(image, torch.ones(1, 1, 16, 16), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="multiple of 4"):
        GatedGenerator(base_channels=6)


def test_discriminator_layout_at_full_width():
    model = SNPatchDiscriminator()
    convs = model.convolutions()
    assert [conv.out_channels for conv in convs] == [64, 128, 256, 256, 256, 256]
    assert all(conv.kernel_size == (5, 5) and conv.stride == (2, 2) for conv in convs)
    assert all(hasattr(conv, "parametrizations") for conv in convs)
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in model.modules()) == 6


def test_spectral_norm_keeps_largest_singular_value_near_one():
    model = SNPatchDiscriminator(base_channels=8)
    with torch.no_grad():
        for conv in model.convolutions():
            conv.parametrizations.weight.original.mul_(7.0)  # far from 1 before normalisation
    image, mask = torch.rand(2, 3, 64, 64), torch.ones(2, 1, 64, 64)
    model.train()
    for _ in range(5):  # each training-mode forward runs one power iteration per layer
        model(image, mask)
    for conv in model.convolutions():
        raw = conv.parametrizations.weight.original
        assert torch.linalg.svdvals(raw.reshape(raw.shape[0], -1))[0] > 2.0
        sigma = torch.linalg.svdvals(conv.weight.reshape(conv.weight.shape[0], -1))[0]
        assert sigma.item() == pytest.approx(1.0, abs=0.02)


def test_discriminator_receptive_field_matches_gradient_support():
    model = SNPatchDiscriminator(base_channels=2).eval()
    assert model.receptive_field() == 1 + 4 * (1 + 2 + 4 + 8 + 16 + 32)
    image = torch.rand(1, 3, 320, 320, requires_grad=True)
    scores = model(image, torch.ones(1, 1, 320, 320))
    assert scores.shape[-2:] == (5, 5)
    scores[0, :, 2, 2].sum().backward()
    rows = image.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = image.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == model.receptive_field()
    assert cols.max() - cols.min() + 1 == model.receptive_field()


def test_hinge_losses_on_hand_picked_scores():
    real = torch.tensor([2.0, 0.5, -1.0, 1.0])  # relu(1 - real) = 0, 0.5, 2, 0 → mean 0.625
    fake = torch.tensor([-3.0, 0.0, 1.0, -0.5])  # relu(1 + fake) = 0, 1, 2, 0.5 → mean 0.875
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.625 + 0.875)
    assert hinge_g_loss(fake).item() == pytest.approx(0.625)  # −mean(fake) = −(−2.5 / 4)
    confident = hinge_d_loss(torch.full((3,), 1.5), torch.full((3,), -2.0))
    assert confident.item() == 0.0


def test_same_padding_is_tensorflows_one_sided_padding_at_stride_two():
    """TensorFlow's SAME pads a 3×3 stride-2 layer on an even input by (0, 1), not PyTorch's (1, 1)."""
    layer = GatedConv2d(2, 3, 3, stride=2, padding="same").double()
    x = torch.randn(1, 2, 8, 10, dtype=torch.float64)
    conv_feature, conv_gate = two_conv_reference(layer)
    padded = F.pad(x, (0, 1, 0, 1))
    expected = F.elu(conv_feature(padded)) * torch.sigmoid(conv_gate(padded))
    torch.testing.assert_close(layer(x), expected)
    symmetric = GatedConv2d(2, 3, 3, stride=2, padding=1).double()
    symmetric.load_state_dict(layer.state_dict())
    assert symmetric(x).shape == layer(x).shape and not torch.allclose(symmetric(x), layer(x))


def test_ungated_layer_is_a_plain_convolution():
    layer = GatedConv2d(4, 3, 3, padding="same", activation=None, gated=False)
    x = torch.randn(2, 4, 7, 9)
    assert layer.conv.out_channels == 3
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1))
    with pytest.raises(ValueError, match="'same'"):
        GatedConv2d(4, 3, 3, padding="valid")


def test_generator_without_contextual_attention_decodes_the_dilated_branch_only():
    model = GatedGenerator(base_channels=8, attention=False)
    assert model.refine.attention is None and model.refine.decoder[0].in_channels == 2 * 8
    assert GatedGenerator(base_channels=8).refine.decoder[0].in_channels == 4 * 8  # the two branches concatenated
    assert model(torch.rand(1, 3, 24, 16), torch.ones(1, 1, 24, 16)).shape == (1, 3, 24, 16)
