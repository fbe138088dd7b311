"""LaMa's training losses (Suvorov et al., 2022; ``configs/training/big-lama.yaml``), one module per idea:

- ``adversarial``: the non-saturating GAN loss with the mask as the fake target, and the R1 gradient penalty;
- ``feature_matching``: the discriminator feature-matching loss;
- ``perceptual``: the high-receptive-field perceptual loss on a dilated ResNet-50 (ADE20k segmentation encoder).

The discriminator they use is ``pconv_lessons.models.NLayerDiscriminator`` (pix2pixHD's, returning its scores
and the activations of every layer before the last). Every function takes the course's mask (1 = known).
"""

from pconv_lessons.lama_losses.adversarial import (
    LAMA_ADVERSARIAL_WEIGHT,
    LAMA_GP_COEF,
    nonsaturating_d_loss,
    nonsaturating_g_loss,
    r1_penalty,
)
from pconv_lessons.lama_losses.feature_matching import LAMA_FEATURE_MATCHING_WEIGHT, feature_matching_loss
from pconv_lessons.lama_losses.perceptual import LAMA_RESNET_PL_WEIGHT, DilatedResNet50, ResNetPerceptualLoss

__all__ = [
    "LAMA_ADVERSARIAL_WEIGHT",
    "LAMA_FEATURE_MATCHING_WEIGHT",
    "LAMA_GP_COEF",
    "LAMA_RESNET_PL_WEIGHT",
    "DilatedResNet50",
    "ResNetPerceptualLoss",
    "feature_matching_loss",
    "nonsaturating_d_loss",
    "nonsaturating_g_loss",
    "r1_penalty",
]
