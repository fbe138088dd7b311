"""The PConv paper's objective (Liu et al. 2018): ``InpaintingLoss`` and the two-phase schedule.

    L = 1·L_valid + 6·L_hole + 0.05·L_perceptual + 120·(L_style_out + L_style_comp) + 0.1·L_tv

Adam at lr 2e-4, then from ``finetune_step`` on lr 5e-5 with the encoder's batch norms frozen (they use their
running statistics and stop learning), because holes distort the batch statistics of the encoder and the fine-tune
phase lets the decoder adapt to fixed ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from pconv_lessons.models import PConvUNet
from pconv_lessons.training.config import TrainConfig
from pconv_lessons.training.objective import NoFeatures, Objective, checked_model_args, checked_weights, loss_network

DEFAULT_LOSS_ARGS: dict[str, Any] = {"vgg_weights": "random", "weights": {}}


def build_pconv(config: TrainConfig) -> PConvUNet:
    """The U-Net from ``config.model_args`` (``layer_size``, ``base_channels``, ``conv``: ``"partial"`` by default,
    ``"plain"`` or ``"gated"`` for the papers' ablations, e.g. ``--model-arg conv=plain``)."""
    return PConvUNet(**checked_model_args(PConvUNet, config.model_args))


class PConvObjective(Objective):
    """The PConv paper's loss (``InpaintingLoss``) and two-phase schedule (BN frozen in the encoder).

    ``loss_args``: ``vgg_weights`` — ``"imagenet"`` (the paper's choice; cached or downloaded once),
    a weights file, ``"random"`` (default: random-init VGG16, offline, announced by a warning) or
    ``"none"`` (no loss network: only the valid, hole and TV terms, much cheaper on a CPU) — and
    ``weights``, overrides of the paper's loss weights, e.g. ``{"style": 250}``.
    """

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        from pconv_lessons.losses import LOSS_TERMS, InpaintingLoss

        super().__init__(config)
        args = self.merged_loss_args(DEFAULT_LOSS_ARGS)
        weights = args["weights"]
        if not isinstance(weights, dict) or set(weights) - set(LOSS_TERMS):
            raise ValueError(f"loss_args weights must be a dict with keys among {list(LOSS_TERMS)}, got {weights!r}")
        extractor = loss_network(args["vgg_weights"])
        self.criterion = InpaintingLoss(
            extractor if extractor is not None else NoFeatures(), weights=checked_weights(weights)
        ).to(device)
        self.criterion.check_mask_values = False  # the data's masks are 0/1; the check would synchronise each step

    def finetuning(self, step: int) -> bool:
        return step >= self.config.resolved_finetune_step()

    def learning_rate(self, phase: str, step: int) -> float:
        return self.config.finetune_lr if self.finetuning(step) else self.config.lr

    def begin_step(self, step: int, model: nn.Module) -> None:
        model.freeze_encoder_batchnorm(self.finetuning(step))
        model.train()

    def loss(self, phase: str, model: nn.Module, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        return self.criterion(self.predict(model, image, mask), image, mask)
