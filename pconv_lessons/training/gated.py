"""Training the gated generator as DeepFill v2 does: L1 reconstruction + SN-PatchGAN hinge loss, D and G alternating.

One training step (``Trainer`` calls the phases in this order, each with its own Adam optimizer):

    coarse, out = G(x ⊙ m, m (, s))               once per step, shared by both phases
    comp        = m ⊙ x + (1 − m) ⊙ out            the completed image the discriminator judges
    discriminator: L_D = mean(relu(1 − D(x, m))) + mean(relu(1 + D(sg[comp], m)))     sg = stop-gradient
    generator:     L_G = λ_l1 · (|coarse − x|₁ + |out − x|₁) + λ_gan · (−mean(D(comp, m)))

Real and completed images go through D as one batch. While the generator phase runs, D's parameters do
not require gradients (no wasted weight gradients); D is still differentiated with respect to its input
(through the plain module, not its DistributedDataParallel wrapper: no gradient of D is reduced then).
Adam's β1 is 0.5 for both networks, as in nipponjo/deepfillv2-pytorch's training configurations. The
discriminator has its own learning rate ``disc_lr``, 1e-4 as in DeepFill v2, whatever ``--lr`` gives the generator.
Adam moves every weight by about the learning rate per step, whatever its gradient's size; at 1e-3 those steps
build up a spike in one direction of a spectral-normalised weight, normalisation divides all other directions by
it, and the scores stay at 0. Measured on a 32-wide discriminator (128 × 3,200 weights; lesson 08 shows the spike):
five steps at 1e-3 raise the largest singular value of the last layer from 0.68 to 1.47 while the second stays at
0.84; trained against fixed blurred fills of 32² crops of scikit-image's brick, its hinge loss stays at 2.000 for
400 steps at 1e-3, and falls to 1.74 at 1e-4.

User guidance (a generator built with ``sketch=True``): the sketch s is the Sobel edge map of the
training image (``pconv_lessons.sketch.edge_sketch``), given for a random fraction ``sketch_probability``
of the batch and all zeros for the rest, so the model also learns to inpaint without guidance.

``loss_args`` (``--loss-arg KEY=VALUE``): ``l1_weight`` (1.0), ``gan_weight`` (0.1), ``disc_channels``
(64, the discriminator's width knob), ``disc_lr`` (1e-4), ``sketch_probability`` (0.5), ``sketch_threshold`` (0.25).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from pconv_lessons.losses import hinge_d_loss, hinge_g_loss
from pconv_lessons.models.compositing import composite
from pconv_lessons.models.gated import GatedGenerator, SNPatchDiscriminator
from pconv_lessons.sketch import edge_sketch
from pconv_lessons.training.config import TrainConfig
from pconv_lessons.training.objective import Objective, checked_model_args, checked_weights

DEFAULT_LOSS_ARGS = {
    "l1_weight": 1.0,
    "gan_weight": 0.1,
    "disc_channels": 64,
    "disc_lr": 1e-4,
    "sketch_probability": 0.5,
    "sketch_threshold": 0.25,
}


def build_gated(config: TrainConfig) -> GatedGenerator:
    """The generator from ``config.model_args`` (``base_channels``, ``sketch``, ``rates``, ``attention``, ``fuse``)."""
    return GatedGenerator(**checked_model_args(GatedGenerator, config.model_args))


class GatedGANObjective(Objective):
    """DeepFill v2's objective for ``--model gated``: a discriminator phase, then a generator phase."""

    phases = ("discriminator", "generator")
    adam_betas = (0.5, 0.999)

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        super().__init__(config)
        args = self.merged_loss_args(DEFAULT_LOSS_ARGS)
        weights = checked_weights({name: args[name] for name in ("l1_weight", "gan_weight")})
        self.l1_weight, self.gan_weight = weights["l1_weight"], weights["gan_weight"]
        self.disc_lr = checked_weights({"disc_lr": args["disc_lr"]}, "learning rate")["disc_lr"]
        self.sketch_probability = float(args["sketch_probability"])
        self.sketch_threshold = float(args["sketch_threshold"])
        self.sketch = bool(config.model_args.get("sketch", False))
        self.discriminator = SNPatchDiscriminator(int(args["disc_channels"]), sketch=self.sketch).to(device)

    def parameters(self, phase: str, model: nn.Module) -> Iterable[nn.Parameter]:
        if phase == "discriminator":
            return self.discriminator.parameters()
        return super().parameters(phase, model)

    def modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def learning_rate(self, phase: str, step: int) -> float:
        return self.disc_lr if phase == "discriminator" else self.config.lr

    def begin_step(self, step: int, model: nn.Module) -> None:
        model.train()
        self.discriminator.train()

    def training_sketch(self, image: Tensor) -> Tensor | None:
        """Edge sketches of ``image`` for a random ``sketch_probability`` of the batch, zeros for the rest."""
        if not self.sketch:
            return None
        edges = edge_sketch(image.float(), self.sketch_threshold)
        keep = torch.rand(image.shape[0], 1, 1, 1, device=image.device) < self.sketch_probability
        return edges * keep

    def loss(self, phase: str, model: nn.Module, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        if "completed" not in cache:
            sketch = self.training_sketch(image)
            coarse, prediction = model(image * mask, mask, sketch, return_coarse=True)
            cache.update(sketch=sketch, coarse=coarse, prediction=prediction,
                         completed=composite(prediction, image, mask, check_values=False))
        if phase == "discriminator":
            return self._discriminator_loss(image, mask, cache)
        return self._generator_loss(image, mask, cache)

    def _discriminator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        self.discriminator.requires_grad_(True)
        sketch = cache["sketch"]
        scores = self.trained("discriminator")(
            torch.cat([image.to(cache["completed"].dtype), cache["completed"].detach()]),
            torch.cat([mask, mask]),
            None if sketch is None else torch.cat([sketch, sketch]),
        )
        real, fake = scores.float().chunk(2)
        loss = hinge_d_loss(real, fake)
        return {"total": loss, "hinge": loss, "real_score": real.mean().detach(), "fake_score": fake.mean().detach()}

    def _generator_loss(self, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        self.discriminator.requires_grad_(False)
        target = image.float()
        l1_coarse = (cache["coarse"].float() - target).abs().mean()
        l1_refined = (cache["prediction"].float() - target).abs().mean()
        adversarial = hinge_g_loss(self.discriminator(cache["completed"], mask, cache["sketch"]).float())
        total = self.l1_weight * (l1_coarse + l1_refined) + self.gan_weight * adversarial
        return {"total": total, "l1_coarse": l1_coarse, "l1_refined": l1_refined, "adversarial": adversarial}
