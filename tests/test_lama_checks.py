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
    check_discriminator_objective,
    check_generator_objective,
    check_lama_generator,
    check_r1_penalty,
    check_resnet_perceptual,
)
from pconv_lessons.lama_losses import ResNetPerceptualLoss
from pconv_lessons.models.lama import pad_symmetric

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def ffc_bn_relu(x, layer, order="bn-relu", one_norm=None):
    y = layer.ffc(x)
    local, global_ = y.split([layer.ffc.out_local, layer.ffc.out_global], dim=1)
    if order == "relu-bn":
        return torch.cat([layer.bn_local(torch.relu(local)), layer.bn_global(torch.relu(global_))], dim=1)
    if one_norm is not None:  # the local BatchNorm's statistics used for both groups
        norm = layer.bn_local
        local, global_ = norm(local), F.batch_norm(global_, norm.running_mean[:1].expand(global_.shape[1]),
                                                   norm.running_var[:1].expand(global_.shape[1]))
        return torch.relu(torch.cat([local, global_], dim=1))
    return torch.relu(torch.cat([layer.bn_local(local), layer.bn_global(global_)], dim=1))


def block(x, layer, skip=True, relu_after_skip=False, **options):
    y = ffc_bn_relu(ffc_bn_relu(x, layer.body[0], **options), layer.body[1], **options)
    out = x + y if skip else y
    return torch.relu(out) if relu_after_skip else out


def generator(model, image, mask, hole_convention=True, crop=True):
    hole = 1 - mask if hole_convention else mask
    height, width = image.shape[-2:]
    x = pad_symmetric(torch.cat([image * (1 - hole), hole], dim=1), 8)
    x = model.down(model.stem(x))
    for layer in model.body:
        x = block(x, layer)
    out = model.head(model.up(x))
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


@pytest.mark.parametrize("options", [{"skip": False}, {"relu_after_skip": True}, {"order": "relu-bn"},
                                     {"one_norm": True}],
                         ids=["no-skip", "relu-after-skip", "relu-before-bn", "one-norm-for-both-groups"])
def test_block_mistakes_fail(options):
    with pytest.raises(AssertionError, match="ResNet block"):
        check_ffc_resnet_block(lambda x, layer: block(x, layer, **options))


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


def d_objective(discriminator, image, prediction, mask, gp_coef=0.001, r1_on="real", detach=True, flip=False):
    real = image.detach().requires_grad_(True)
    fake = prediction.detach() if detach else prediction
    if r1_on == "fake":
        fake = fake.detach().requires_grad_(True)
    real_scores, _ = discriminator(real)
    fake_scores, _ = discriminator(fake)
    loss = d_loss(real_scores, fake_scores, 1 - mask if flip else mask)
    if r1_on is None:
        return loss
    penalised_scores, penalised = (real_scores, real) if r1_on == "real" else (fake_scores, fake)
    return loss + gp_coef * r1(penalised_scores, penalised, detach=r1_on == "detached")


def g_objective(discriminator, encoder, image, prediction, mask, weights=(10, 10, 100, 30), l1_on="known",
                detach=False):
    prediction = prediction.detach() if detach else prediction
    fake_scores, fake_features = discriminator(prediction)
    _, real_features = discriminator(image)
    region = {"known": mask, "hole": 1 - mask, "all": torch.ones_like(mask)}[l1_on]
    terms = ((region * (prediction - image).abs()).mean(), F.softplus(-fake_scores).mean(),
             fm(fake_features, real_features), pl(encoder, prediction, image))
    return sum(w * t for w, t in zip(weights, terms))


def test_correct_objectives_pass(perceptual):
    check_discriminator_objective(d_objective)
    check_generator_objective(g_objective, perceptual)


def test_r1_on_real_with_create_graph_false_is_caught():
    def detached_r1(discriminator, image, prediction, mask):
        real = image.detach().requires_grad_(True)
        real_scores, _ = discriminator(real)
        fake_scores, _ = discriminator(prediction.detach())
        return d_loss(real_scores, fake_scores, mask) + 0.001 * r1(real_scores, real, detach=True)

    with pytest.raises(AssertionError, match="create_graph"):
        check_discriminator_objective(detached_r1)


@pytest.mark.parametrize("options, message", [
    ({"r1_on": None}, "L_D"),
    ({"gp_coef": 10.0}, "L_D"),  # LaMa's adversarial *weight* used as the R1 coefficient
    ({"gp_coef": 0.01}, "L_D"),
    ({"r1_on": "fake"}, "L_D"),
    ({"flip": True}, "L_D"),
    ({"detach": False}, "detach"),
], ids=["missing-r1", "gp-coef-10", "gp-coef-0.01", "r1-on-fake", "mask-convention-flipped", "prediction-not-detached"])
def test_discriminator_objective_mistakes_fail(options, message):
    with pytest.raises(AssertionError, match=message):
        check_discriminator_objective(lambda d, i, p, m: d_objective(d, i, p, m, **options))


@pytest.mark.parametrize("options, message", [
    ({"weights": (1, 10, 100, 30)}, "L_G"),
    ({"weights": (10, 1, 100, 30)}, "L_G"),
    ({"weights": (10, 10, 10, 30)}, "L_G"),
    ({"weights": (10, 10, 100, 0)}, "L_G"),  # the perceptual weight left out (or put on another network)
    ({"weights": (10, 10, 100, 1)}, "L_G"),
    ({"l1_on": "hole"}, "L_G"),  # mask convention flipped
    ({"l1_on": "all"}, "L_G"),
    ({"detach": True}, "L_G"),
], ids=["l1-weight-1", "adversarial-weight-1", "fm-weight-10", "no-hrf-perceptual", "hrf-weight-1",
        "l1-on-the-hole", "l1-on-everything", "prediction-detached"])
def test_generator_objective_mistakes_fail(options, message, perceptual):
    with pytest.raises(AssertionError, match=message):
        check_generator_objective(lambda d, e, i, p, m: g_objective(d, e, i, p, m, **options), perceptual)
