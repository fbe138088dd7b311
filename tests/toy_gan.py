"""A toy two-phase model for trainer tests: a 3×3 "blend" generator and a linear critic.

No batch statistics and no power iterations, so gradient accumulation and DDP are exact for it; it plugs in
like a GAN (a critic step, then a generator step) through ``register_model`` / ``MODELS``.
"""

import torch
from torch import nn

from pconv_lessons.training import Objective


class Critic(Objective):
    """A critic step (fake − real score), then a generator step (L1 − 0.01 · critic score)."""

    phases = ("critic", "generator")

    def __init__(self, config, device):
        super().__init__(config)
        self.critic = nn.Conv2d(3, 1, 3, padding=1)

    def modules(self):
        return {"critic": self.critic}

    def parameters(self, phase, model):
        return self.critic.parameters() if phase == "critic" else model.parameters()

    def loss(self, phase, model, image, mask, cache):
        if "output" not in cache:
            cache["output"] = self.predict(model, image, mask)
        if phase == "critic":
            fake = self.trained("critic")(cache["output"].detach()).mean()
            return {"fake": fake, "total": fake - self.trained("critic")(image).mean()}
        l1 = (cache["output"] - image).abs().mean()
        return {"l1": l1, "total": l1 - 0.01 * self.critic(cache["output"]).mean()}


class Blend(nn.Module):
    """(image, mask) → sigmoid(conv3×3([image, mask])), a prediction shaped like the image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, image, mask):
        return torch.sigmoid(self.conv(torch.cat([image, mask], 1)))
