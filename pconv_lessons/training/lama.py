"""Training LaMa's generator with the course's losses (``--model lama``).

With x the image, m the mask (1 = known), ŷ = G(x ⊙ m, m) the prediction and ĉ = m ⊙ x + (1 − m) ⊙ ŷ:

    L1 known     = mean( |m ⊙ (ŷ − x)| )                 LaMa's weight 10; it puts no L1 on the hole
    L1 hole      = mean( |(1 − m) ⊙ (ŷ − x)| )           weight 0 in LaMa (a knob for short runs without a GAN)
    L2 known     = mean( m ⊙ (ŷ − x)² ),  L2 hole = mean( (1 − m) ⊙ (ŷ − x)² )       weight 0 in LaMa (knobs, as L1 hole)
    perceptual   = Σ_p mean |Ψ_p(ŷ) − Ψ_p(x)|            VGG16 pool1–3 (``VGG16Features``), on the whole prediction
    adversarial  = −mean(D(ĉ, m))                        SN-PatchGAN hinge (``SNPatchDiscriminator``), when its weight > 0
    L_G          = w_known·L1 known + w_hole·L1 hole + w_l2k·L2 known + w_l2h·L2 hole + w_perc·perceptual
                   + w_adv·adversarial
    L_D          = mean(relu(1 − D(x, m))) + mean(relu(1 + D(sg[ĉ], m)))       (sg = stop-gradient)

With ``gan="lama"`` the adversarial part is LaMa's own (``pconv_lessons.lama_losses``), on pix2pixHD's
``NLayerDiscriminator`` fed the raw prediction ŷ, with h = 1 − m resized to the score map:

    adversarial       = mean(softplus(−D(ŷ)))                                       LaMa's weight 10
    feature_matching  = mean_l mean((D_l(ŷ) − D_l(x))²)                            LaMa's weight 100
    L_D               = mean(softplus(−D(x))) + mean(h·softplus(D(sg[ŷ])) + (1 − h)·softplus(−D(sg[ŷ])))
                        + gp_coef · mean_batch ‖∇ₓ Σ D(x)‖²                          (R1, gp_coef 0.001)

LaMa's perceptual term is a "high receptive field" loss on a segmentation ResNet-50 (weight 30,
``pconv_lessons.lama_losses.ResNetPerceptualLoss``); the trainer keeps the course's VGG16 pool1–3 perceptual loss
(a ResNet-50 forward and backward per step is too slow for CPU runs), with LaMa's weight 30 as default.
The default ``gan="hinge"`` is the SN-PatchGAN hinge loss of lesson 08.

``loss_args`` (``--loss-arg KEY=VALUE``): ``l1_known`` (10), ``l1_hole`` (0), ``l2_known`` (0), ``l2_hole`` (0),
``lr_schedule`` (``"constant"``, LaMa's; or ``"cosine"``: the generator's rate lr·½(1 + cos(π·step/steps)), which
lesson 10's brick model trains with), ``perceptual`` (30),
``adversarial`` (10; 0 trains without a discriminator), ``gan`` (``"hinge"`` or ``"lama"``), ``feature_matching``
(100, with ``gan="lama"`` only), ``gp_coef`` (0.001), ``disc_channels`` (64), ``disc_lr`` (the discriminator's
learning rate, 1e-4 whatever ``--lr`` gives the generator, as in LaMa's ``default_optimizers.yaml``), ``vgg_weights``
(``"random"``, ``"imagenet"``, a file path or ``"none"``, read by ``pconv_lessons.training.objective.loss_network`` as for every
model). ``model_args``: ``ngf``, ``n_blocks``, ``ratio``, ``down_padding``. Adam keeps its default betas
(0.9, 0.999) for both networks, as LaMa's own ``default_optimizers.yaml`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from pconv_lessons.lama_losses import feature_matching_loss, nonsaturating_d_loss, nonsaturating_g_loss, r1_penalty
from pconv_lessons.losses import hinge_d_loss, hinge_g_loss
from pconv_lessons.models import LamaGenerator, NLayerDiscriminator, SNPatchDiscriminator, composite
from pconv_lessons.training.config import TrainConfig
from pconv_lessons.training.objective import Objective, checked_model_args, checked_weights, loss_network

DEFAULT_LOSS_ARGS: dict[str, Any] = {
    "l1_known": 10.0,
    "l1_hole": 0.0,
    "l2_known": 0.0,
    "l2_hole": 0.0,
    "lr_schedule": "constant",
    "perceptual": 30.0,
    "adversarial": 10.0,
    "gan": "hinge",
    "feature_matching": 100.0,
    "gp_coef": 0.001,
    "disc_channels": 64,
    "disc_lr": 1e-4,
    "vgg_weights": "random",
}


def build_lama(config: TrainConfig) -> LamaGenerator:
    """The generator from ``config.model_args`` (``ngf``, ``n_blocks``, ``ratio``, ``down_padding``)."""
    return LamaGenerator(**checked_model_args(LamaGenerator, config.model_args))


class LamaObjective(Objective):
    """L1 on the known region + VGG16 perceptual (+ SN-PatchGAN hinge, or LaMa's NS + R1 + feature matching)."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config)
        args = self.merged_loss_args(DEFAULT_LOSS_ARGS)
        if args["gan"] not in ("hinge", "lama"):
            raise ValueError(f"loss_args gan must be 'hinge' (SN-PatchGAN) or 'lama' (LaMa's), got {args['gan']!r}")
        self.gan = args["gan"]
        if args["lr_schedule"] not in ("constant", "cosine"):
            raise ValueError(f"loss_args lr_schedule must be 'constant' or 'cosine', got {args['lr_schedule']!r}")
        self.lr_schedule = args["lr_schedule"]
        names = ("l1_known", "l1_hole", "l2_known", "l2_hole", "perceptual", "adversarial", "feature_matching", "gp_coef")
        weights = checked_weights({name: args[name] for name in names})
        self.gp_coef = weights.pop("gp_coef")
        self.disc_lr = checked_weights({"disc_lr": args["disc_lr"]}, "learning rate")["disc_lr"]
        if self.gan == "hinge":
            weights.pop("feature_matching")
        self.weights = weights
        extractor = loss_network(args["vgg_weights"]) if self.weights["perceptual"] else None
        self.extractor = extractor.to(device) if extractor is not None else None
        width = int(args["disc_channels"])
        discriminator = SNPatchDiscriminator(width) if self.gan == "hinge" else NLayerDiscriminator(ndf=width)
        self.discriminator = discriminator.to(device) if self.weights["adversarial"] else None
        self.phases = ("discriminator", "generator") if self.discriminator is not None else ("generator",)

    def parameters(self, phase: str, model: nn.Module) -> Iterable[nn.Parameter]:
        if phase == "discriminator" and self.discriminator is not None:
            return self.discriminator.parameters()
        return super().parameters(phase, model)

    def modules(self) -> dict[str, nn.Module]:
        return {} if self.discriminator is None else {"discriminator": self.discriminator}

    def learning_rate(self, phase: str, step: int) -> float:
        if phase == "discriminator":
            return self.disc_lr
        if self.lr_schedule == "cosine":
            return self.config.lr * 0.5 * (1 + math.cos(math.pi * min(step, self.config.steps) / self.config.steps))
        return self.config.lr

    def begin_step(self, step: int, model: nn.Module) -> None:
        model.train()
        if self.discriminator is not None:
            self.discriminator.train()

    def loss(self, phase: str, model: nn.Module, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        if "prediction" not in cache:
            prediction = self.predict(model, image, mask)
            cache.update(prediction=prediction, completed=composite(prediction, image, mask, check_values=False))
        if phase == "discriminator":
            return self._discriminator_loss(image, mask, cache)
        return self._generator_loss(image, mask, cache)

    def _discriminator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        self.discriminator.requires_grad_(True)
        if self.gan == "lama":
            return self._lama_discriminator_loss(image, mask, cache)
        completed = cache["completed"].detach()
        scores = self.trained("discriminator")(torch.cat([image.to(completed.dtype), completed]), torch.cat([mask, mask]))
        real, fake = scores.float().chunk(2)
        loss = hinge_d_loss(real, fake)
        return {"total": loss, "hinge": loss, "real_score": real.mean().detach(), "fake_score": fake.mean().detach()}

    def _lama_discriminator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        discriminator = self.trained("discriminator")
        prediction = cache["prediction"].detach()
        real = image.to(prediction.dtype).detach().requires_grad_(True)
        real_scores, _ = discriminator(real)
        fake_scores, _ = discriminator(prediction)
        adversarial = nonsaturating_d_loss(real_scores.float(), fake_scores.float(), mask)
        penalty = r1_penalty(real_scores.float(), real)
        return {"total": adversarial + self.gp_coef * penalty, "nonsaturating": adversarial, "r1": penalty,
                "real_score": real_scores.float().mean().detach(), "fake_score": fake_scores.float().mean().detach()}

    def _lama_adversarial_terms(self, image: Tensor, cache: dict) -> dict[str, Tensor]:
        fake_scores, fake_features = self.discriminator(cache["prediction"])
        _, real_features = self.discriminator(image.to(cache["prediction"].dtype))
        return {"adversarial": nonsaturating_g_loss(fake_scores.float()),
                "feature_matching": feature_matching_loss([f.float() for f in fake_features],
                                                          [f.float() for f in real_features])}

    def _generator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        prediction, target = cache["prediction"].float(), image.float()
        error = (prediction - target).abs()
        terms = {"l1_known": (mask * error).mean(), "l1_hole": ((1 - mask) * error).mean()}
        for name, weight in (("l2_known", mask), ("l2_hole", 1 - mask)):
            if self.weights[name]:
                terms[name] = (weight * error.square()).mean()
        if self.extractor is not None:
            terms["perceptual"] = sum(
                (out.float() - ref.float()).abs().mean()
                for out, ref in zip(self.extractor(cache["prediction"]), self.extractor(image))
            )
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
            if self.gan == "lama":
                terms.update(self._lama_adversarial_terms(image, cache))
            else:
                terms["adversarial"] = hinge_g_loss(self.discriminator(cache["completed"], mask).float())
        terms["total"] = sum(self.weights[name] * value for name, value in terms.items())
        return terms
