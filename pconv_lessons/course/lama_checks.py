"""Checks for the LaMa code a student writes in lesson 10.

Each check feeds the student's function random inputs (float64) and compares with a reference that does not
share the student's code path: the package's ``LamaGenerator`` and ``FFCResnetBlock`` forward passes (the student
assembles the same layers in their own order), a finite-difference gradient for R1, and the package's LaMa
losses, which equal advimman/lama's own code (``tests/test_lama_losses.py`` and the lead's report give the
figures). The two assembled objectives are compared in value and in gradient (with respect to the discriminator's
weights for L_D, to the prediction for L_G) with LaMa's recipe (``configs/training/big-lama.yaml``):

    L_D = NS_D(D(x), D(sg[ŷ]), m) + 0.001 · R1(x)                                   (gp_coef 0.001)
    L_G = 10 · mean(m ⊙ |ŷ − x|) + 10 · NS_G(D(ŷ)) + 100 · FM(D(ŷ), D(x)) + 30 · HRFPL(ŷ, x)

Every check raises AssertionError saying by how much the student's result differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from pconv_lessons.course.ffc_checks import randomise
from pconv_lessons.lama_losses import (
    ResNetPerceptualLoss,
    feature_matching_loss,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    r1_penalty,
)
from pconv_lessons.layers import FFCResnetBlock
from pconv_lessons.models import LamaGenerator, NLayerDiscriminator

TOLERANCE = 1e-8
GP_COEF = 0.001  # LaMa's R1 weight in L_D (big-lama.yaml: adversarial.gp_coef)
G_WEIGHTS = {"l1_known": 10.0, "adversarial": 10.0, "feature_matching": 100.0, "hrf_perceptual": 30.0}


def _compare(name: str, mine: Tensor, expected: Tensor, tolerance: float = TOLERANCE) -> None:
    if not isinstance(mine, Tensor) or mine.shape != expected.shape:
        got = tuple(mine.shape) if isinstance(mine, Tensor) else type(mine).__name__
        raise AssertionError(f"{name}: expected a tensor shaped {tuple(expected.shape)}, got {got}")
    error = float((mine.detach().double() - expected.detach().double()).abs().max())
    scale = max(float(expected.detach().double().abs().max()), 1.0)
    if not error <= tolerance * scale:
        raise AssertionError(f"{name} differs from the reference by up to {error:.3g} (allowed {tolerance * scale:.3g})")


def _random_masks(count: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    masks = torch.ones(count, 1, height, width, dtype=torch.float64)
    for mask in masks:
        top, left = (int(torch.randint(s // 2, (1,), generator=generator)) for s in (height, width))
        mask[:, top : top + height // 2, left : left + width // 3] = 0.0
    return masks


def check_ffc_resnet_block(my_block: Callable[[Tensor, FFCResnetBlock], Tensor]) -> None:
    """``my_block(x, block)`` must equal ``block(x)`` (random weights and BN statistics, eval mode)."""
    block = randomise(FFCResnetBlock(16, ratio=0.75), seed=5)
    x = torch.randn(2, 16, 9, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        _compare("your FFC ResNet block", my_block(x, block), block(x))


def check_lama_generator(my_generator: Callable[[LamaGenerator, Tensor, Tensor], Tensor]) -> None:
    """``my_generator(model, image, mask)`` (course mask, 1 = known), assembled from ``model``'s stages, must equal
    ``model(image, mask)`` on sizes that are and are not multiples of 8."""
    generator = torch.Generator().manual_seed(6)
    model = randomise(LamaGenerator(ngf=4, n_blocks=2), seed=6)
    for height, width in ((32, 40), (27, 35)):
        image = torch.rand(2, 3, height, width, generator=generator, dtype=torch.float64)
        mask = _random_masks(2, height, width, generator)
        with torch.no_grad():
            _compare(f"your LaMa generator on a {height}×{width} input", my_generator(model, image, mask),
                     model(image, mask))


def check_discriminator_loss(my_d_loss: Callable[[Tensor, Tensor, Tensor], Tensor]) -> None:
    """``my_d_loss(real_scores, fake_scores, mask)`` (mask 1 = known, at image size) must equal LaMa's
    non-saturating discriminator loss with the mask as fake target (without R1)."""
    generator = torch.Generator().manual_seed(7)
    real, fake = (torch.randn(2, 1, 7, 9, generator=generator, dtype=torch.float64) * 2 for _ in range(2))
    mask = _random_masks(2, 56, 72, generator)
    _compare("your discriminator loss", my_d_loss(real, fake, mask), nonsaturating_d_loss(real, fake, mask))


def check_generator_loss(my_g_loss: Callable[[Tensor], Tensor]) -> None:
    """``my_g_loss(fake_scores)`` must equal mean(softplus(−D(ŷ)))."""
    fake = torch.randn(2, 1, 7, 9, generator=torch.Generator().manual_seed(8), dtype=torch.float64) * 2
    _compare("your generator adversarial loss", my_g_loss(fake), nonsaturating_g_loss(fake))


def r1_by_finite_differences(discriminator: nn.Module, images: Tensor, step: float = 1e-6) -> Tensor:
    """mean over the batch of ‖∇ₓ Σ D(x)‖², each derivative a central difference (2·numel forward passes)."""
    squared = torch.zeros(images.shape[0], dtype=torch.float64)
    flat_size = images[0].numel()
    with torch.no_grad():
        for index in range(flat_size):
            up, down = images.clone(), images.clone()
            up.view(images.shape[0], -1)[:, index] += step
            down.view(images.shape[0], -1)[:, index] -= step
            derivative = (discriminator(up).flatten(1).sum(1) - discriminator(down).flatten(1).sum(1)) / (2 * step)
            squared += derivative.double() ** 2
    return squared.mean()


def check_r1_penalty(my_r1: Callable[[Tensor, Tensor], Tensor]) -> None:
    """``my_r1(real_scores, real_images)`` must equal the R1 penalty estimated by finite differences on a small
    discriminator, and must stay differentiable (it trains the discriminator)."""
    torch.manual_seed(9)
    discriminator = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Tanh(), nn.Conv2d(4, 1, 2)).double()
    images = torch.rand(3, 3, 7, 7, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    real = images.clone().requires_grad_(True)
    mine = my_r1(discriminator(real), real)
    _compare("your R1 penalty", mine, r1_by_finite_differences(discriminator, images), tolerance=1e-6)
    if not mine.requires_grad:
        raise AssertionError("your R1 penalty carries no gradient to the discriminator: use create_graph=True")


def check_feature_matching(my_fm: Callable[[Sequence[Tensor], Sequence[Tensor]], Tensor]) -> None:
    """``my_fm(fake_features, real_features)`` must equal LaMa's feature-matching loss."""
    generator = torch.Generator().manual_seed(10)
    shapes = ((2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 5, 5))
    fake = [torch.randn(s, generator=generator, dtype=torch.float64) for s in shapes]
    real = [torch.randn(s, generator=generator, dtype=torch.float64) * 3 for s in shapes]
    _compare("your feature-matching loss", my_fm(fake, real), feature_matching_loss(fake, real))


def check_resnet_perceptual(my_pl: Callable[[nn.Module, Tensor, Tensor], Tensor], loss: ResNetPerceptualLoss) -> None:
    """``my_pl(encoder, prediction, target)`` must equal ``loss(prediction, target)`` (images in [0, 1])."""
    generator = torch.Generator().manual_seed(11)
    dtype = next(loss.parameters()).dtype
    prediction, target = (torch.rand(1, 3, 40, 48, generator=generator, dtype=dtype) for _ in range(2))
    with torch.no_grad():
        _compare("your high-receptive-field perceptual loss", my_pl(loss.encoder, prediction, target),
                 loss(prediction, target), tolerance=1e-5)


def _objective_inputs(seed: int, dtype: torch.dtype) -> tuple[NLayerDiscriminator, Tensor, Tensor, Tensor]:
    """A small random discriminator (eval mode), photos x, predictions ŷ (requiring grad) and masks, 32 × 32."""
    generator = torch.Generator().manual_seed(seed)
    discriminator = randomise(NLayerDiscriminator(ndf=4, n_layers=2), seed=seed).to(dtype)
    with torch.no_grad():  # smaller weights: every term of L_G of the same order, so a wrong weight shows
        for conv in (m for m in discriminator.modules() if isinstance(m, nn.Conv2d)):
            conv.weight.mul_(0.2)
    image = torch.rand(2, 3, 32, 32, generator=generator, dtype=dtype)
    prediction = torch.rand(2, 3, 32, 32, generator=generator, dtype=dtype).requires_grad_(True)
    return discriminator, image, prediction, _random_masks(2, 32, 32, generator).to(dtype)


def _gradients(loss: Tensor, inputs: Sequence[Tensor]) -> list[Tensor]:
    if not isinstance(loss, Tensor) or not loss.requires_grad:
        raise AssertionError("your objective carries no gradient: it must be a tensor computed from the inputs")
    try:
        grads = torch.autograd.grad(loss, list(inputs), allow_unused=True)
    except RuntimeError as error:  # the graph was freed inside the student's function
        raise AssertionError(f"the gradient of your objective cannot be computed ({str(error).split('.')[0]}): an "
                             "inner torch.autograd.grad (R1) needs create_graph=True") from None
    return [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs)]


def reference_discriminator_objective(discriminator: nn.Module, image: Tensor, prediction: Tensor,
                                      mask: Tensor) -> Tensor:
    """LaMa's L_D: the non-saturating loss (mask as fake target) on D(x) and D(sg[ŷ]) + 0.001 · R1 on real x."""
    real = image.detach().requires_grad_(True)
    real_scores, _ = discriminator(real)
    fake_scores, _ = discriminator(prediction.detach())
    return nonsaturating_d_loss(real_scores, fake_scores, mask) + GP_COEF * r1_penalty(real_scores, real)


def check_discriminator_objective(my_objective: Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]) -> None:
    """``my_objective(discriminator, image, prediction, mask)`` must equal LaMa's full L_D = NS_D + 0.001·R1 in value
    and in its gradient with respect to the discriminator's weights, and must not reach the generator (ŷ detached)."""
    discriminator, image, prediction, mask = _objective_inputs(12, torch.float64)
    weights = list(discriminator.parameters())
    expected = reference_discriminator_objective(discriminator, image, prediction, mask)
    mine = my_objective(discriminator, image, prediction, mask)
    _compare("your discriminator objective L_D + 0.001·R1", mine if isinstance(mine, Tensor) else torch.tensor(mine),
             expected)
    mine_grads = _gradients(mine, weights + [prediction])
    if float(mine_grads[-1].abs().max()) > 0:
        raise AssertionError("your discriminator objective sends gradient to the prediction: detach ŷ (the "
                             "discriminator's step must not train the generator)")
    for name, (ours, theirs) in zip((n for n, _ in discriminator.named_parameters()),
                                    zip(mine_grads, _gradients(expected, weights))):
        _compare(f"the gradient of your L_D with respect to the discriminator's {name} (is R1 differentiable, "
                 "create_graph=True?)", ours, theirs, tolerance=1e-7)


def reference_generator_terms(discriminator: nn.Module, hrf_loss: ResNetPerceptualLoss, image: Tensor,
                              prediction: Tensor, mask: Tensor) -> dict[str, Tensor]:
    """LaMa's generator terms, unweighted: L1 on the known pixels, NS_G, feature matching, HRF perceptual."""
    fake_scores, fake_features = discriminator(prediction)
    _, real_features = discriminator(image)
    return {"l1_known": (mask * (prediction - image).abs()).mean(),
            "adversarial": nonsaturating_g_loss(fake_scores),
            "feature_matching": feature_matching_loss(fake_features, real_features),
            "hrf_perceptual": hrf_loss(prediction, image)}


def check_generator_objective(my_objective: Callable[[nn.Module, nn.Module, Tensor, Tensor, Tensor], Tensor],
                              hrf_loss: ResNetPerceptualLoss) -> None:
    """``my_objective(discriminator, hrf_encoder, image, prediction, mask)`` must equal LaMa's weighted L_G
    (10·L1 known + 10·adversarial + 100·feature matching + 30·HRF perceptual) in value and in its gradient with
    respect to the prediction. ``hrf_encoder`` is ``hrf_loss.encoder`` (the student normalises the images)."""
    dtype = next(hrf_loss.parameters()).dtype
    discriminator, image, prediction, mask = _objective_inputs(13, dtype)
    terms = reference_generator_terms(discriminator, hrf_loss, image, prediction, mask)
    expected = sum(G_WEIGHTS[name] * value for name, value in terms.items())
    mine = my_objective(discriminator, hrf_loss.encoder, image, prediction, mask)
    tolerance = 1e-5 if dtype == torch.float32 else TOLERANCE
    found = ", ".join(f"{name} {float(value.detach()):.4g}" for name, value in terms.items())
    try:
        _compare("your generator objective L_G", mine if isinstance(mine, Tensor) else torch.tensor(mine), expected,
                 tolerance)
    except AssertionError as error:
        raise AssertionError(f"{error}; the unweighted terms are {found}, LaMa's weights {G_WEIGHTS}") from None
    _compare("the gradient of your L_G with respect to the prediction", _gradients(mine, [prediction])[0],
             _gradients(expected, [prediction])[0], tolerance)
