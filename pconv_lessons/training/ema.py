"""An exponential moving average of the generator's weights (``--ema DECAY``), as LaMa's averaged generator.

After every optimizer step, for each floating-point parameter and buffer θ of the model:

    θ_ema ← decay · θ_ema + (1 − decay) · θ          (one fused ``torch._foreach_lerp_``; no host synchronisation)

Integer buffers (BatchNorm's ``num_batches_tracked``) are copied. The average starts as a copy of the initial
weights; it is what samples, held-out evaluation, ``export_model`` and ``load_model`` use.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class ModelEMA:
    """``average``: a frozen copy of ``model`` holding the moving average; ``update(model)`` after each step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ema decay must be in (0, 1), got {decay!r}")
        self.decay = decay
        self.average = copy.deepcopy(model).eval().requires_grad_(False)

    def _pairs(self, model: nn.Module) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        ours, theirs = self.average.state_dict(), model.state_dict()
        floats = [name for name, value in ours.items() if value.is_floating_point()]
        others = [name for name in ours if name not in set(floats)]
        return ([ours[n] for n in floats], [theirs[n].detach() for n in floats],
                [ours[n] for n in others], [theirs[n] for n in others])

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        averaged, current, copied, source = self._pairs(model)
        if averaged:
            torch._foreach_lerp_(averaged, current, 1.0 - self.decay)
        for target, value in zip(copied, source):
            target.copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        return self.average.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.average.load_state_dict(state)
