"""LaMa's adversarial loss: non-saturating GAN with the mask as the fake target, and the R1 gradient penalty.

With D the discriminator's per-patch logits, x a real image, ŷ the generator's raw prediction (LaMa feeds the
prediction, not the composite), m the course mask (1 = known) and h = 1 − m the hole, resized to the score map by
nearest-neighbour interpolation (LaMa's ``allow_scale_mask=True, mask_scale_mode="nearest"``), softplus(t) = log(1 + eᵗ):

    L_D = mean[ softplus(−D(x)) + h·softplus(D(ŷ)) + (1 − h)·softplus(−D(ŷ)) ] + γ · R1       (γ = gp_coef = 0.001)
    R1  = mean over the batch of ‖∇ₓ Σ D(x)‖²                   (squared gradient norm of each real image)
    L_G = mean[ softplus(−D(ŷ)) ]                               (× weight 10 in LaMa)

"Mask as the fake target": the discriminator must call the hole patches of a prediction fake and its known
patches real, so it learns *where* an image was inpainted, not merely whether. R1 (Mescheder et al., 2018)
penalises the discriminator's slope on real images, which keeps it from overshooting. This is advimman/lama's
``NonSaturatingWithR1(gp_coef=0.001, weight=10, mask_as_fake_target=True, allow_scale_mask=True)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pconv_lessons.validation import check_batch, check_mask_values

LAMA_ADVERSARIAL_WEIGHT = 10.0
LAMA_GP_COEF = 0.001


def _check_scores(scores: Tensor, name: str) -> None:
    check_batch(scores, name)
    if scores.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(scores.shape)}")


def hole_at_score_size(mask: Tensor, scores: Tensor) -> Tensor:
    """h = 1 − mask, resized to the score map by nearest-neighbour interpolation."""
    check_batch(mask, "mask")
    if mask.shape[0] != scores.shape[0] or mask.shape[1] != 1:
        raise ValueError(f"mask must be shaped ({scores.shape[0]}, 1, H, W), got {tuple(mask.shape)}")
    check_mask_values(mask)
    return F.interpolate(1.0 - mask.to(scores.dtype), size=scores.shape[-2:], mode="nearest")


def nonsaturating_d_loss(real_scores: Tensor, fake_scores: Tensor, mask: Tensor) -> Tensor:
    """mean[softplus(−D(x)) + h·softplus(D(ŷ)) + (1 − h)·softplus(−D(ŷ))], without the R1 term."""
    _check_scores(real_scores, "real_scores")
    _check_scores(fake_scores, "fake_scores")
    hole = hole_at_score_size(mask, fake_scores)
    fake = hole * F.softplus(fake_scores) + (1 - hole) * F.softplus(-fake_scores)
    return F.softplus(-real_scores).mean() + fake.mean()


def nonsaturating_g_loss(fake_scores: Tensor) -> Tensor:
    """mean[softplus(−D(ŷ))] (unweighted; LaMa multiplies by 10)."""
    _check_scores(fake_scores, "fake_scores")
    return F.softplus(-fake_scores).mean()


def r1_penalty(real_scores: Tensor, real_images: Tensor) -> Tensor:
    """mean over the batch of ‖∇ₓ Σ D(x)‖², differentiable (``create_graph``) so it trains the discriminator.

    ``real_images`` must have ``requires_grad=True`` and ``real_scores`` must be computed from them.
    """
    _check_scores(real_scores, "real_scores")
    check_batch(real_images, "real_images")
    if not real_images.requires_grad:
        raise ValueError("real_images must have requires_grad=True before the discriminator sees them (R1 needs ∇ₓD)")
    (gradient,) = torch.autograd.grad(real_scores.sum(), real_images, create_graph=True)
    return gradient.flatten(1).pow(2).sum(dim=1).mean()
