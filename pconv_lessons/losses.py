"""Loss functions for training the inpainting models.

GAN hinge losses (Lim & Ye, 2017; used by SN-PatchGAN in DeepFill v2), on discriminator scores of any shape:

    L_D = mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))
    L_G = −mean(D(fake))
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def hinge_d_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Discriminator hinge loss: zero once real scores are ≥ 1 and fake scores ≤ −1."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: Tensor) -> Tensor:
    """Generator hinge loss: the negated mean score the discriminator gives the generator's images."""
    return -fake_scores.mean()
