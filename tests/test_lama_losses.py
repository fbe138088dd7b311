"""LaMa's losses against hand-written formulas, a finite-difference R1, and the layouts written down from
advimman/lama's own modules (tests/data/*_keys.txt). Side by side with LaMa's code (run once, outside the
repository, float64): D loss with R1, G loss, feature matching and ResNetPL agreed to ≤ 2.3e-16."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.lama_losses import (
    DilatedResNet50,
    ResNetPerceptualLoss,
    feature_matching_loss,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    r1_penalty,
)
from pconv_lessons.models import NLayerDiscriminator

DATA = Path(__file__).parent / "data"


def written_layout(name):
    rows = (line.split(" ", 1) for line in (DATA / name).read_text().splitlines())
    return {key: tuple(int(n) for n in shape.strip("(),").split(",") if n.strip()) for key, shape in rows}


def softplus(t):
    return math.log(1 + math.exp(t))


def test_d_loss_by_hand_with_the_mask_as_fake_target():
    # 4×4 mask whose left half is a hole → on the 2×2 score map the left column is hole, the right one known.
    mask = torch.ones(1, 1, 4, 4)
    mask[..., :2] = 0
    real = torch.tensor([[[[0.0, 1.0], [2.0, -1.0]]]])
    fake = torch.tensor([[[[0.5, -0.5], [1.5, 2.0]]]])
    real_part = sum(softplus(-r) for r in (0.0, 1.0, 2.0, -1.0)) / 4
    fake_part = (softplus(0.5) + softplus(1.5)            # hole patches: target "fake"
                 + softplus(0.5) + softplus(-2.0)) / 4    # known patches: target "real" (−D)
    assert nonsaturating_d_loss(real, fake, mask).item() == pytest.approx(real_part + fake_part, rel=1e-6)
    everything_fake = real_part + sum(softplus(f) for f in (0.5, -0.5, 1.5, 2.0)) / 4  # a plausible wrong version
    assert abs(nonsaturating_d_loss(real, fake, mask).item() - everything_fake) > 0.1


def test_g_loss_is_softplus_of_minus_the_fake_scores():
    fake = torch.tensor([[[[0.5, -0.5], [1.5, 2.0]]]])
    expected = sum(softplus(-f) for f in (0.5, -0.5, 1.5, 2.0)) / 4
    assert nonsaturating_g_loss(fake).item() == pytest.approx(expected, rel=1e-6)


def tiny_discriminator():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Tanh(), nn.Conv2d(4, 1, 2)).double()


def test_r1_equals_a_finite_difference_gradient_norm():
    disc = tiny_discriminator()
    images = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    step = 1e-6
    squared_norms = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for index in range(images[0].numel()):
            up, down = images.clone(), images.clone()
            up.view(2, -1)[:, index] += step
            down.view(2, -1)[:, index] -= step
            derivative = (disc(up).flatten(1).sum(1) - disc(down).flatten(1).sum(1)) / (2 * step)  # per image
            squared_norms += derivative**2
    real = images.clone().requires_grad_(True)
    assert r1_penalty(disc(real), real).item() == pytest.approx(squared_norms.mean().item(), rel=1e-6)


def test_r1_trains_the_discriminator_its_gradient_checks_out():
    disc = tiny_discriminator()
    images = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    weight = disc[0].weight

    def penalty(w):
        real = images.clone().requires_grad_(True)
        hidden = torch.tanh(F.conv2d(real, w, disc[0].bias, stride=2))
        return r1_penalty(disc[2](hidden), real)

    assert torch.autograd.gradcheck(penalty, (weight.detach().clone().requires_grad_(True),))


def test_r1_needs_images_that_require_grad():
    disc = tiny_discriminator()
    images = torch.rand(1, 3, 6, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(disc(images), images)


def test_feature_matching_by_hand():
    fake = [torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[0.0]]]])]
    real = [torch.tensor([[[[0.0, 0.0]]]]), torch.tensor([[[[3.0]]]])]
    # layer 1: mean(1, 4) = 2.5; layer 2: 9 → mean over layers 5.75
    assert feature_matching_loss(fake, real).item() == pytest.approx(5.75)
    with pytest.raises(ValueError, match="equally long"):
        feature_matching_loss(fake, real[:1])


def test_nlayer_discriminator_has_lamas_layout_and_returns_features():
    ours = {key.replace("stages.", "model", 1): tuple(v.shape) for key, v in NLayerDiscriminator().state_dict().items()}
    assert ours == written_layout("lama_nlayer_discriminator_keys.txt")
    scores, features = NLayerDiscriminator(ndf=8).eval()(torch.rand(2, 3, 64, 64))
    assert scores.shape == (2, 1, 7, 7) and len(features) == 5  # n_layers + 1 stages before the logits


def test_dilated_resnet50_has_the_ade20k_encoder_layout_strides_and_dilations():
    encoder = DilatedResNet50()
    assert {k: tuple(v.shape) for k, v in encoder.state_dict().items()} == written_layout("ade20k_resnet50dilated_keys.txt")
    assert encoder.layer3[0].conv2.dilation == (1, 1) and encoder.layer3[1].conv2.dilation == (2, 2)
    assert encoder.layer4[0].conv2.dilation == (2, 2) and encoder.layer4[2].conv2.dilation == (4, 4)
    with torch.no_grad():
        shapes = [tuple(f.shape[1:]) for f in encoder.eval()(torch.rand(1, 3, 64, 48))]
    assert shapes == [(256, 16, 12), (512, 8, 6), (1024, 8, 6), (2048, 8, 6)]


def test_resnet_pl_is_the_sum_of_feature_mses_and_trains_only_the_prediction(tmp_path):
    with pytest.warns(UserWarning, match="random-init"):
        loss = ResNetPerceptualLoss(weights=None).double()
    target = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    prediction = torch.rand(1, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        by_hand = sum(((a - b) ** 2).mean() for a, b in zip(loss.encoder((prediction - mean) / std),
                                                            loss.encoder((target - mean) / std)))
    value = loss(prediction, target)
    assert value.item() == pytest.approx(by_hand.item(), rel=1e-10)
    assert loss(target, target).item() == 0.0
    value.backward()
    assert prediction.grad is not None and all(p.grad is None for p in loss.parameters())
    loss.train()
    assert not loss.training and not loss.encoder.training


def test_resnet_pl_loads_an_encoder_state_dict_and_rejects_other_files(tmp_path):
    torch.manual_seed(3)
    source = DilatedResNet50()
    torch.save(source.state_dict(), tmp_path / "encoder_epoch_20.pth")
    loaded = ResNetPerceptualLoss(weights=tmp_path / "encoder_epoch_20.pth")
    assert torch.equal(loaded.encoder.layer4[2].conv3.weight, source.layer4[2].conv3.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a resnet50dilated"):
        ResNetPerceptualLoss(weights=tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not exist"):
        ResNetPerceptualLoss(weights=tmp_path / "absent.pth")
