"""Input checks shared by layers, models, losses and metrics.

Every check raises ``ValueError`` with a message that says what was expected and what arrived,
so a wrong mask never turns into a silent wrong answer or a NaN further down.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_batch(x: Tensor, name: str = "image") -> None:
    """``x`` must be a floating tensor shaped (N, C, H, W)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor shaped (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be shaped (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}; convert with .float()")


def check_mask(mask: Tensor, like: Tensor, channels: int | tuple[int, ...] = 1, values: bool = True) -> None:
    """``mask`` must match ``like`` in batch and spatial size, have an allowed channel count and hold values in [0, 1].

    ``channels`` is the allowed channel count (or counts). ``values=False`` skips the value-range check,
    which reads the tensor (a device sync on a GPU).
    """
    check_batch(mask, "mask")
    allowed = (channels,) if isinstance(channels, int) else tuple(channels)
    if mask.shape[1] not in allowed:
        wanted = " or ".join(str(c) for c in allowed)
        raise ValueError(
            f"mask must have {wanted} channel(s) (1 = known pixel, 0 = hole), got shape {tuple(mask.shape)}"
        )
    if mask.shape[0] != like.shape[0]:
        raise ValueError(f"mask batch size {mask.shape[0]} does not match the image batch size {like.shape[0]}")
    if mask.shape[-2:] != like.shape[-2:]:
        raise ValueError(
            f"mask spatial size {tuple(mask.shape[-2:])} does not match the image's {tuple(like.shape[-2:])}"
        )
    if values:
        check_mask_values(mask)


def check_mask_values(mask: Tensor) -> None:
    """Every mask value must lie in [0, 1] (1 = known, 0 = hole); NaN is rejected too."""
    low, high = torch.aminmax(mask.detach())
    low, high = float(low), float(high)
    if not (0.0 <= low and high <= 1.0):  # also false for NaN
        raise ValueError(
            f"mask values must lie in [0, 1] (1 = known pixel, 0 = hole), got min {low:g}, max {high:g}"
        )
