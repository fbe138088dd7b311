"""The discriminator feature-matching loss (pix2pixHD; LaMa's weight 100).

With D_l the activations of the discriminator's layer l (every layer but the last, L of them), x the real
image and ŷ the prediction:

    L_FM = (1/L) Σ_l mean( (D_l(ŷ) − D_l(x))² )

The generator learns to make the discriminator's intermediate features of its prediction match those of the
real image, a perceptual loss whose feature network trains alongside. LaMa's big-lama config passes no mask
(the sum runs over the whole image), as here; this is its ``feature_matching_loss(fake, real, mask=None)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

LAMA_FEATURE_MATCHING_WEIGHT = 100.0


def feature_matching_loss(fake_features: Sequence[Tensor], real_features: Sequence[Tensor]) -> Tensor:
    """Mean over layers of the mean squared difference between matching feature maps (see the module docstring)."""
    if len(fake_features) == 0 or len(fake_features) != len(real_features):
        raise ValueError(
            f"fake_features and real_features must be equally long non-empty sequences of feature maps, got "
            f"{len(fake_features)} and {len(real_features)}"
        )
    for index, (fake, real) in enumerate(zip(fake_features, real_features)):
        if fake.shape != real.shape:
            raise ValueError(f"feature map {index}: fake shape {tuple(fake.shape)} != real shape {tuple(real.shape)}")
    return torch.stack([(fake - real).pow(2).mean() for fake, real in zip(fake_features, real_features)]).mean()
