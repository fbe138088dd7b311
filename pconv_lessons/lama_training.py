"""Training LaMa's generator with the course's losses (``--model lama``).

With x the image, m the mask (1 = known), ŷ = G(x ⊙ m, m) the prediction and ĉ = m ⊙ x + (1 − m) ⊙ ŷ:

    L1 known     = mean( |m ⊙ (ŷ − x)| )                 LaMa's weight 10; it puts no L1 on the hole
    L1 hole      = mean( |(1 − m) ⊙ (ŷ − x)| )           weight 0 in LaMa (a knob for short runs without a GAN)
    perceptual   = Σ_p mean |Ψ_p(ŷ) − Ψ_p(x)|            VGG16 pool1–3 (``VGG16Features``), on the whole prediction
    adversarial  = −mean(D(ĉ, m))                        SN-PatchGAN hinge (``SNPatchDiscriminator``), when its weight > 0
    L_G          = w_known·L1 known + w_hole·L1 hole + w_perc·perceptual + w_adv·adversarial
    L_D          = mean(relu(1 − D(x, m))) + mean(relu(1 + D(sg[ĉ], m)))       (sg = stop-gradient)

LaMa itself uses a "high receptive field" perceptual loss on a segmentation ResNet-50 (weight 30), a
non-saturating PatchGAN loss with an R1 penalty (weight 10) and discriminator feature matching; the course
swaps in its own VGG16 perceptual loss and SN-PatchGAN hinge loss, keeping LaMa's weights as defaults.

``loss_args`` (``--loss-arg KEY=VALUE``): ``l1_known`` (10), ``l1_hole`` (0), ``perceptual`` (30),
``adversarial`` (10; 0 trains without a discriminator), ``disc_channels`` (64), ``vgg_weights``
(``"random"``, ``"imagenet"``, a file path or ``"none"``, read by ``pconv_lessons.train.loss_network`` as for every
model). ``model_args``: ``ngf``, ``n_blocks``, ``ratio``, ``down_padding``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from pconv_lessons.losses import hinge_d_loss, hinge_g_loss
from pconv_lessons.models import LamaGenerator, SNPatchDiscriminator, composite
from pconv_lessons.train import Objective, TrainConfig, loss_network

DEFAULT_LOSS_ARGS: dict[str, Any] = {
    "l1_known": 10.0,
    "l1_hole": 0.0,
    "perceptual": 30.0,
    "adversarial": 10.0,
    "disc_channels": 64,
    "vgg_weights": "random",
}


def build_lama(config: TrainConfig) -> LamaGenerator:
    """The generator from ``config.model_args`` (``ngf``, ``n_blocks``, ``ratio``, ``down_padding``)."""
    return LamaGenerator(**config.model_args)


class LamaObjective(Objective):
    """L1 on the known region + VGG16 perceptual (+ SN-PatchGAN hinge): see the module docstring."""

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config)
        args = self.merged_loss_args(DEFAULT_LOSS_ARGS)
        self.weights = {name: float(args[name]) for name in ("l1_known", "l1_hole", "perceptual", "adversarial")}
        negative = [name for name, weight in self.weights.items() if weight < 0]
        if negative:
            raise ValueError(f"loss weights must be >= 0, got negative {negative}")
        extractor = loss_network(args["vgg_weights"]) if self.weights["perceptual"] else None
        self.extractor = extractor.to(device) if extractor is not None else None
        self.discriminator = (
            SNPatchDiscriminator(int(args["disc_channels"])).to(device) if self.weights["adversarial"] else None
        )
        self.phases = ("discriminator", "generator") if self.discriminator is not None else ("generator",)

    def parameters(self, phase: str, model: nn.Module) -> Iterable[nn.Parameter]:
        if phase == "discriminator" and self.discriminator is not None:
            return self.discriminator.parameters()
        return super().parameters(phase, model)

    def modules(self) -> dict[str, nn.Module]:
        return {} if self.discriminator is None else {"discriminator": self.discriminator}

    def begin_step(self, step: int, model: nn.Module) -> None:
        model.train()
        if self.discriminator is not None:
            self.discriminator.train()

    def loss(self, phase: str, model: nn.Module, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        if "prediction" not in cache:
            prediction = self.predict(model, image, mask)
            cache.update(prediction=prediction, completed=composite(prediction, image, mask))
        if phase == "discriminator":
            return self._discriminator_loss(image, mask, cache)
        return self._generator_loss(image, mask, cache)

    def _discriminator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        self.discriminator.requires_grad_(True)
        completed = cache["completed"].detach()
        scores = self.discriminator(torch.cat([image.to(completed.dtype), completed]), torch.cat([mask, mask]))
        real, fake = scores.float().chunk(2)
        loss = hinge_d_loss(real, fake)
        return {"total": loss, "hinge": loss, "real_score": real.mean().detach(), "fake_score": fake.mean().detach()}

    def _generator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        prediction, target = cache["prediction"].float(), image.float()
        error = (prediction - target).abs()
        terms = {"l1_known": (mask * error).mean(), "l1_hole": ((1 - mask) * error).mean()}
        if self.extractor is not None:
            terms["perceptual"] = sum(
                (out.float() - ref.float()).abs().mean()
                for out, ref in zip(self.extractor(cache["prediction"]), self.extractor(image))
            )
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
            terms["adversarial"] = hinge_g_loss(self.discriminator(cache["completed"], mask).float())
        terms["total"] = sum(self.weights[name] * value for name, value in terms.items())
        return terms
