"""PConvUNet(conv=...): the same U-Net with plain or gated convolutions — shapes, what each variant reads, a hand-run
forward per variant, parameter counts, checkpoints and the CLI keep the variant, bad values."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.layers import GatedConv2d, PartialConv2d, collect_gates
from pconv_lessons.models import PConvUNet
from pconv_lessons.train import TrainConfig, Trainer, load_model, main
from pconv_lessons.training.checkpoints import export_model

CONVS = ["partial", "plain", "gated"]
# The fast-mode models of the ablations in lessons 07 and 08 (layer_size 4, base_channels 8), counted by hand below
# and stated in the lessons' text.
LESSON_PARAMETERS = {(4, 8, "partial"): 72_540, (4, 8, "plain"): 72_540, (4, 8, "gated"): 145_918}


def random_mask(n, height, width, keep=0.6):
    return (torch.rand(n, 1, height, width) < keep).float()


def convolutions(model):
    return [block.conv for block in list(model.encoder) + list(model.decoder)]


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("height, width, layer_size", [(33, 47, 4), (17, 70, 3), (64, 64, 5), (9, 13, 2)])
def test_every_variant_returns_the_input_size(conv, height, width, layer_size):
    model = PConvUNet(layer_size=layer_size, base_channels=4, conv=conv).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width), random_mask(2, height, width))
    assert out.shape == (2, 3, height, width)
    assert torch.isfinite(out).all()


def test_each_variant_uses_its_convolution_everywhere():
    kinds = {"partial": PartialConv2d, "plain": nn.Conv2d, "gated": GatedConv2d}
    for conv, kind in kinds.items():
        found = {type(c) for c in convolutions(PConvUNet(layer_size=4, base_channels=4, conv=conv))}
        assert found == {kind}, conv
    assert PConvUNet(layer_size=4, base_channels=4).conv == "partial"


def test_plain_convolutions_have_the_partial_ones_shapes_and_take_their_weights():
    partial = PConvUNet(layer_size=5, base_channels=4)
    plain = PConvUNet(layer_size=5, base_channels=4, conv="plain")
    assert {k: v.shape for k, v in partial.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    plain.load_state_dict(partial.state_dict())  # strict: the same names too


def hand_run(model, first_input, level):
    """The U-Net's forward written out without masks: ``level(block, x)`` runs one level's convolution."""
    encoded = [first_input]
    for block in model.encoder:
        encoded.append(level(block, encoded[-1]))
    features = encoded[-1]
    for k, block in zip(range(model.layer_size, 0, -1), model.decoder):
        features = level(block, torch.cat([F.interpolate(features, scale_factor=2.0, mode="nearest"),
                                           encoded[k - 1]], dim=1))
    return features


def plain_level(block, x):
    conv = block.conv
    return block.activation(block.norm(F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)))


def gated_level(block, x):
    fused, phi = block.conv.conv, block.conv.activation  # phi: the level's BatchNorm, then its activation
    feature, gate = F.conv2d(x, fused.weight, fused.bias, fused.stride, fused.padding).chunk(2, dim=1)
    return phi(feature) * torch.sigmoid(gate)


def trained_statistics(model):
    """Non-trivial BatchNorm statistics and scales, so that the eval-mode hand run below tests them too."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    return model.eval()


def test_plain_is_the_same_convolutions_on_the_zero_filled_image_and_ignores_the_mask_otherwise():
    model = trained_statistics(PConvUNet(layer_size=4, base_channels=4, conv="plain"))
    image, mask = torch.rand(2, 3, 32, 32), random_mask(2, 32, 32)
    noisy = torch.where(mask.bool(), image, float("nan"))
    with torch.no_grad():
        out = model(image, mask)
        torch.testing.assert_close(out, hand_run(model, image * mask, plain_level))
        torch.testing.assert_close(model(noisy, mask), out)  # hole content is never read
        # Marking known black pixels as holes leaves image·mask, hence the output, unchanged: no mask input.
        black = image.clone()
        black[:, :, :8] = 0
        more_holes = mask.clone()
        more_holes[:, :, :8] = 0
        torch.testing.assert_close(model(black, more_holes), model(black, mask))


def test_gated_is_gated_convolutions_on_the_zero_filled_image_and_the_mask():
    model = trained_statistics(PConvUNet(layer_size=4, base_channels=4, conv="gated"))
    image, mask = torch.rand(2, 3, 32, 32), random_mask(2, 32, 32)
    noisy = torch.where(mask.bool(), image, float("nan"))
    with torch.no_grad():
        out = model(image, mask)
        torch.testing.assert_close(out, hand_run(model, torch.cat([image * mask, mask], dim=1), gated_level))
        torch.testing.assert_close(model(noisy, mask), out)  # hole content is never read
        # Unlike plain convolutions, it reads the mask: the same image·mask with more holes gives another output.
        black = image.clone()
        black[:, :, :8] = 0
        more_holes = mask.clone()
        more_holes[:, :, :8] = 0
        assert not torch.allclose(model(black, more_holes), model(black, mask))
        gates = collect_gates(model, image, mask)
    assert len(gates) == 2 * model.layer_size
    assert all(((g > 0) & (g < 1)).all() for g in gates.values())


def test_partial_output_in_a_closed_hole_is_exactly_zero_where_plain_and_gated_are_not():
    image, mask = torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64)
    mask[..., :48, :48] = 0  # two levels cannot close it: the partial network's prediction there is exactly 0
    outputs = {}
    for conv in CONVS:
        torch.manual_seed(0)
        model = trained_statistics(PConvUNet(layer_size=2, base_channels=4, conv=conv))
        with torch.no_grad():
            outputs[conv] = model(image, mask)[..., 16:32, 16:32]
    assert torch.all(outputs["partial"] == 0)
    assert (outputs["plain"] != 0).all() and (outputs["gated"] != 0).all()


def hand_count(layer_size, base_channels, conv):
    """Parameters from the layer table: (in, out, kernel, batch norm) per level, as the module docstring lists it."""
    widths = [4 if conv == "gated" else 3] + [base_channels * min(2**i, 8) for i in range(layer_size)]
    kernels = [7, 5, 5] + [3] * layer_size
    layers = [(widths[k - 1], widths[k], kernels[k - 1], k > 1) for k in range(1, layer_size + 1)]
    layers += [(widths[k] + widths[k - 1], widths[k - 1] if k > 1 else 3, 3, k > 1) for k in range(layer_size, 0, -1)]
    total = 0
    for c_in, c_out, kernel, batch_norm in layers:
        if conv == "gated":  # features and gates: twice the weights, both with a bias
            total += 2 * (c_in * c_out * kernel**2 + c_out)
        else:  # a bias only without BatchNorm
            total += c_in * c_out * kernel**2 + (0 if batch_norm else c_out)
        total += 2 * c_out if batch_norm else 0
    return total


@pytest.mark.parametrize("layer_size, base_channels, conv", sorted(LESSON_PARAMETERS))
def test_parameter_counts_stated_in_the_lessons(layer_size, base_channels, conv):
    model = PConvUNet(layer_size=layer_size, base_channels=base_channels, conv=conv)
    found = sum(p.numel() for p in model.parameters())
    assert found == hand_count(layer_size, base_channels, conv) == LESSON_PARAMETERS[layer_size, base_channels, conv]


def test_frozen_encoder_batchnorm_covers_the_gated_variant():
    model = PConvUNet(layer_size=3, base_channels=4, conv="gated").freeze_encoder_batchnorm()
    model.train()
    encoder_norms = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(encoder_norms) == 2 and not any(m.training for m in encoder_norms)


@pytest.mark.parametrize("conv", ["plain", "gated"])
def test_trainer_checkpoint_and_export_rebuild_the_variant(conv, tmp_path):
    config = TrainConfig(image_size=32, batch_size=2, steps=2, out=str(tmp_path / conv), num_workers=0,
                         model_args={"layer_size": 3, "base_channels": 4, "conv": conv},
                         loss_args={"vgg_weights": "none"}, sample_every=0, checkpoint_every=0, eval_every=0)
    trainer = Trainer(config, progress=False)
    trainer.train()
    image, mask = torch.rand(2, 3, 32, 32), random_mask(2, 32, 32)
    with torch.no_grad():
        expected = trainer.model.eval()(image, mask)
    export = export_model(trainer.out / "last.pt", tmp_path / f"{conv}.safetensors")
    for path in (trainer.out / "last.pt", export):
        loaded = load_model(path)
        assert loaded.conv == conv
        with torch.no_grad():
            torch.testing.assert_close(loaded(image, mask), expected)


def test_cli_model_arg_picks_the_convolution(tmp_path):
    argv = ["--model", "pconv", "--image-size", "32", "--batch-size", "2", "--steps", "1", "--out", str(tmp_path),
            "--model-arg", "layer_size=3", "--model-arg", "base_channels=4", "--model-arg", "conv=plain",
            "--loss-arg", "vgg_weights=none", "--num-workers", "0", "--sample-every", "0", "--no-progress"]
    assert main(argv) == 0
    model = load_model(tmp_path / "last.pt")
    assert model.conv == "plain" and isinstance(model.encoder[0].conv, nn.Conv2d)
    assert not isinstance(model.encoder[0].conv, PartialConv2d)


def test_bad_conv_values_are_rejected_naming_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"conv must be one of 'partial', 'plain', 'gated', got 'dilated'"):
        PConvUNet(layer_size=3, base_channels=4, conv="dilated")
    config = TrainConfig(image_size=32, batch_size=2, steps=1, out=str(tmp_path), num_workers=0,
                         model_args={"layer_size": 3, "conv": "Gated"}, loss_args={"vgg_weights": "none"})
    with pytest.raises(ValueError, match="conv must be one of"):
        Trainer(config, progress=False)
    with pytest.raises(ValueError, match="1 channel"):
        PConvUNet(layer_size=3, base_channels=4, conv="gated")(torch.rand(1, 3, 16, 16), torch.ones(1, 3, 16, 16))
