"""The lesson-10 check helpers: correct student code passes, a planted wrong implementation of each step fails."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from pconv_lessons.course.lama_checks import (
    check_discriminator_loss,
    check_feature_matching,
    check_ffc_resnet_block,
    check_generator_loss,
    check_lama_generator,
    check_r1_penalty,
    check_resnet_perceptual,
)
from pconv_lessons.lama_losses import ResNetPerceptualLoss
from pconv_lessons.models.lama import pad_symmetric

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def block(x, layer, skip=True):
    y = layer.body[1](layer.body[0](x))
    return x + y if skip else y


def generator(model, image, mask, hole_convention=True, crop=True):
    hole = 1 - mask if hole_convention else mask
    height, width = image.shape[-2:]
    x = pad_symmetric(torch.cat([image * (1 - hole), hole], dim=1), 8)
    out = model.head(model.up(model.body(model.down(model.stem(x)))))
    return out[..., :height, :width] if crop else out


def d_loss(real, fake, mask, fake_target="mask", convert=True):
    hole = F.interpolate(1 - mask if convert else mask, size=fake.shape[-2:], mode="nearest")
    if fake_target == "all":
        hole = torch.ones_like(hole)
    return F.softplus(-real).mean() + (hole * F.softplus(fake) + (1 - hole) * F.softplus(-fake)).mean()


def r1(scores, images, square=True, detach=False):
    (grad,) = torch.autograd.grad(scores.sum(), images, create_graph=not detach)
    norms = grad.flatten(1).norm(dim=1)
    return (norms**2 if square else norms).mean()


def fm(fake, real, reduce=torch.mean):
    return reduce(torch.stack([((a - b) ** 2).mean() for a, b in zip(fake, real)]))


def pl(encoder, pred, target, normalise=True, layers=slice(None)):
    prep = (lambda x: (x - MEAN.to(x)) / STD.to(x)) if normalise else (lambda x: x)
    pairs = list(zip(encoder(prep(pred)), encoder(prep(target))))[layers]
    return sum(((a - b) ** 2).mean() for a, b in pairs)


@pytest.fixture(scope="module")
def perceptual():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ResNetPerceptualLoss(weights=None)


def test_correct_student_code_passes_every_check(perceptual):
    check_ffc_resnet_block(block)
    check_lama_generator(generator)
    check_discriminator_loss(d_loss)
    check_generator_loss(lambda fake: F.softplus(-fake).mean())
    check_r1_penalty(r1)
    check_feature_matching(fm)
    check_resnet_perceptual(pl, perceptual)


def test_block_without_its_skip_connection_fails():
    with pytest.raises(AssertionError, match="ResNet block"):
        check_ffc_resnet_block(lambda x, layer: block(x, layer, skip=False))


@pytest.mark.parametrize("wrong", [
    lambda m, i, k: generator(m, i, k, hole_convention=False),
    lambda m, i, k: generator(m, i, k, crop=False),
], ids=["mask-not-converted-to-hole", "no-crop"])
def test_generator_mistakes_fail(wrong):
    with pytest.raises(AssertionError, match="LaMa generator"):
        check_lama_generator(wrong)


@pytest.mark.parametrize("wrong", [
    lambda r, f, m: d_loss(r, f, m, fake_target="all"),
    lambda r, f, m: d_loss(r, f, m, convert=False),
], ids=["whole-fake-image-as-fake", "course-mask-as-hole"])
def test_discriminator_loss_mistakes_fail(wrong):
    with pytest.raises(AssertionError, match="discriminator loss"):
        check_discriminator_loss(wrong)


def test_saturating_generator_loss_fails():
    with pytest.raises(AssertionError, match="generator adversarial"):
        check_generator_loss(lambda fake: -F.softplus(fake).mean())  # the original minimax form


@pytest.mark.parametrize("wrong, message", [
    (lambda s, i: r1(s, i, square=False), "differs"),
    (lambda s, i: r1(s, i, detach=True), "create_graph"),
    (lambda s, i: r1(s, i) * i.shape[0], "differs"),
], ids=["norm-not-squared", "no-create-graph", "sum-over-batch"])
def test_r1_mistakes_fail(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_r1_penalty(wrong)


@pytest.mark.parametrize("wrong", [
    lambda f, r: fm(f, r, reduce=torch.sum),
    lambda f, r: torch.stack([(a - b).abs().mean() for a, b in zip(f, r)]).mean(),
], ids=["sum-over-layers", "l1-instead-of-l2"])
def test_feature_matching_mistakes_fail(wrong):
    with pytest.raises(AssertionError, match="feature-matching"):
        check_feature_matching(wrong)


@pytest.mark.parametrize("wrong", [
    lambda e, p, t: pl(e, p, t, normalise=False),
    lambda e, p, t: pl(e, p, t, layers=slice(-1, None)),
], ids=["no-imagenet-normalisation", "last-stage-only"])
def test_resnet_perceptual_mistakes_fail(wrong, perceptual):
    with pytest.raises(AssertionError, match="perceptual"):
        check_resnet_perceptual(wrong, perceptual)
