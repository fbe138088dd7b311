"""PConvUNet: the paper's layout, shapes at any size, masks against the bare mask-update rule, BN freezing, compositing."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.models import PConvUNet, composite


def random_mask(n, height, width, channels=1, keep=0.6):
    return (torch.rand(n, channels, height, width) < keep).float()


@pytest.mark.parametrize(
    "height, width, layer_size, base_channels",
    [(256, 256, 7, 4), (512, 512, 8, 2), (300, 451, 7, 4), (64, 64, 4, 8), (64, 64, 7, 8)],
)
def test_output_has_the_input_size(height, width, layer_size, base_channels):
    model = PConvUNet(layer_size=layer_size, base_channels=base_channels).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, height, width), random_mask(1, height, width))
    assert out.shape == (1, 3, height, width)
    assert torch.isfinite(out).all()


def test_paper_layout_layer_by_layer():
    # (in, out, kernel, stride, batch norm) per partial convolution, written out from the paper for 256², L = 7.
    expected = [
        (3, 64, 7, 2, False), (64, 128, 5, 2, True), (128, 256, 5, 2, True), (256, 512, 3, 2, True),
        (512, 512, 3, 2, True), (512, 512, 3, 2, True), (512, 512, 3, 2, True),
        (1024, 512, 3, 1, True), (1024, 512, 3, 1, True), (1024, 512, 3, 1, True), (768, 256, 3, 1, True),
        (384, 128, 3, 1, True), (192, 64, 3, 1, True), (67, 3, 3, 1, False),
    ]  # fmt: skip
    model = PConvUNet(layer_size=7, base_channels=64)
    blocks = list(model.encoder) + list(model.decoder)
    found = [
        (b.conv.in_channels, b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0], isinstance(b.norm, nn.BatchNorm2d))
        for b in blocks
    ]
    assert found == expected
    assert all(isinstance(b.activation, nn.ReLU) for b in model.encoder)
    assert all(isinstance(b.activation, nn.LeakyReLU) and b.activation.negative_slope == 0.2 for b in model.decoder[:-1])
    assert isinstance(model.decoder[-1].activation, nn.Identity)
    weights = sum(i * o * k * k for i, o, k, _, _ in expected)
    extras = sum(2 * o if bn else o for _, o, _, _, bn in expected)  # BN scale+shift, or a conv bias without BN
    assert sum(p.numel() for p in model.parameters()) == weights + extras


def bare_mask_update(mask, kernel, stride):
    """The partial convolution's mask rule on its own: 1 where the window (zero-padded) holds any known pixel."""
    ones = torch.ones(1, mask.shape[1], kernel, kernel, dtype=torch.float64)
    return (F.conv2d(mask.double(), ones, stride=stride, padding=kernel // 2) > 0).double()


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_encoder_masks_match_the_bare_mask_update(mask_channels):
    model = PConvUNet(layer_size=6, base_channels=4).eval()
    mask = torch.ones(2, mask_channels, 64, 64)
    mask[:, :, 8:56, 4:40] = 0  # a large hole that takes several levels to close
    mask[1, :, :, 44:] = 0
    with torch.no_grad():
        layers = model.forward_layers(torch.rand(2, 3, 64, 64), mask)
    expected = mask
    for level in range(1, 7):
        expected = bare_mask_update(expected, kernel=(7 if level == 1 else 5 if level <= 3 else 3), stride=2)
        found = layers[level]
        assert found.name == f"enc{level}"
        assert torch.equal(found.mask.double(), expected)
    assert layers[1].mask.min() == 0, "the hole must survive the first level for this test to mean something"


def test_decoder_masks_follow_the_update_rule_on_the_joined_masks():
    model = PConvUNet(layer_size=4, base_channels=4).eval()
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 0:48, 0:48] = 0
    with torch.no_grad():
        layers = {layer.name: layer for layer in model.forward_layers(torch.rand(1, 3, 64, 64), mask)}
    below = layers["enc4"].mask
    for level in range(4, 0, -1):
        skip = layers[f"enc{level - 1}"].mask if level > 1 else mask
        joined = torch.maximum(F.interpolate(below, scale_factor=2.0, mode="nearest"), skip)
        expected = bare_mask_update(joined, kernel=3, stride=1)
        assert torch.equal(layers[f"dec{level}"].mask.double(), expected)
        below = layers[f"dec{level}"].mask
    # Four levels cannot close a 48×48 hole: its core stays a hole to the end, and the prediction there is exactly 0.
    still_hole = layers["dec1"].mask == 0
    assert still_hole.any()
    assert torch.all(layers["dec1"].features[still_hole.expand(-1, 3, -1, -1)] == 0)


def test_hole_content_is_never_read():
    model = PConvUNet(layer_size=5, base_channels=4).eval()
    image = torch.rand(2, 3, 40, 56)
    mask = random_mask(2, 40, 56, keep=0.5)
    noisy = torch.where(mask.bool(), image, torch.randn_like(image) * 100)
    with torch.no_grad():
        torch.testing.assert_close(model(image, mask), model(noisy, mask))


def test_any_size_is_padded_with_hole_and_cropped_back():
    model = PConvUNet(layer_size=4, base_channels=4).eval()
    image, mask = torch.rand(1, 3, 30, 45), random_mask(1, 30, 45)
    padded_image = F.pad(image, (0, 3, 0, 2), value=0.5)
    padded_mask = F.pad(mask, (0, 3, 0, 2), value=0.0)
    with torch.no_grad():
        torch.testing.assert_close(model(image, mask), model(padded_image, padded_mask)[..., :30, :45])


def test_single_and_three_channel_masks_agree():
    model = PConvUNet(layer_size=4, base_channels=4).eval()
    image, mask = torch.rand(2, 3, 32, 32), random_mask(2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(image, mask), model(image, mask.expand(-1, 3, -1, -1)))


def test_freeze_encoder_batchnorm_survives_train_and_can_be_undone():
    model = PConvUNet(layer_size=4, base_channels=4)
    model.freeze_encoder_batchnorm()
    model.train()
    encoder_bn = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_bn = [m for m in model.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert encoder_bn and decoder_bn
    assert not any(m.training for m in encoder_bn) and all(m.training for m in decoder_bn)
    before = [m.running_mean.clone() for m in encoder_bn]
    model(torch.rand(2, 3, 32, 32), random_mask(2, 32, 32))
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, encoder_bn))
    assert any(m.num_batches_tracked > 0 for m in decoder_bn)
    model.freeze_encoder_batchnorm(False)
    assert all(m.training for m in encoder_bn) and not model.encoder_batchnorm_frozen


def test_gradients_reach_every_parameter():
    model = PConvUNet(layer_size=4, base_channels=4)
    model(torch.rand(2, 3, 32, 32), random_mask(2, 32, 32)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bf16_autocast_and_channels_last_are_finite_and_close():
    model = PConvUNet(layer_size=4, base_channels=8).eval()
    image, mask = torch.rand(2, 3, 48, 48), random_mask(2, 48, 48)
    mask[0] = 0  # an all-hole image too
    with torch.no_grad():
        reference = model(image, mask)
        model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(image.to(memory_format=torch.channels_last), mask)
    assert torch.isfinite(out).all()
    assert (out.float() - reference).abs().max() < 0.05 * reference.abs().max() + 1e-3


@pytest.mark.parametrize(
    "image, mask, message",
    [
        (torch.rand(1, 4, 32, 32), torch.ones(1, 1, 32, 32), "3 channels"),
        (torch.rand(1, 3, 32, 32), torch.ones(1, 2, 32, 32), "1 or 3 channel"),
        (torch.rand(1, 3, 32, 32), torch.full((1, 1, 32, 32), 255.0), r"values must lie in \[0, 1\]"),
        (torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 31), "spatial size"),
        (torch.rand(3, 32, 32), torch.ones(1, 1, 32, 32), r"shaped \(N, C, H, W\)"),
    ],
)
def test_bad_input_is_rejected(image, mask, message):
    with pytest.raises(ValueError, match=message):
        PConvUNet(layer_size=3, base_channels=4)(image, mask)


def test_composite_takes_prediction_in_holes_and_image_elsewhere():
    prediction, image = torch.rand(2, 3, 5, 6), torch.rand(2, 3, 5, 6)
    mask = random_mask(2, 5, 6)
    result = composite(prediction, image, mask)
    known = mask.bool().expand_as(image)
    assert torch.equal(result[known], image[known])
    assert torch.equal(result[~known], prediction[~known])
    with pytest.raises(ValueError, match="does not match"):
        composite(prediction, image[..., :5], mask)


@pytest.mark.gpu
def test_cuda_matches_cpu_and_runs_bf16_channels_last():
    model = PConvUNet(layer_size=5, base_channels=8).eval()
    image, mask = torch.rand(2, 3, 70, 90), random_mask(2, 70, 90)
    with torch.no_grad():
        reference = model(image, mask)
        gpu = model.cuda()
        with torch.backends.cudnn.flags(allow_tf32=False):
            out = gpu(image.cuda(), mask.cuda())
        torch.testing.assert_close(out.cpu(), reference, rtol=1e-4, atol=1e-4)
        gpu = gpu.to(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = gpu(image.cuda().to(memory_format=torch.channels_last), mask.cuda())
    assert torch.isfinite(out).all()
