"""Input checks shared by layers, models, losses and metrics.

Every check raises ``ValueError`` with a message that says what was expected and what arrived,
so a wrong mask never turns into a silent wrong answer or a NaN further down.
"""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor, nn


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
    if mask.numel() == 0:
        return
    low, high = torch.aminmax(mask.detach())
    low, high = float(low), float(high)
    if not (0.0 <= low and high <= 1.0):  # also false for NaN
        raise ValueError(
            f"mask values must lie in [0, 1] (1 = known pixel, 0 = hole), got min {low:g}, max {high:g}"
        )


def check_not_empty(x: Tensor, name: str) -> None:
    """A batch that a loss or an evaluation averages over must hold at least one image."""
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got batch size 0 (shape {tuple(x.shape)})")


def check_image_values(
    x: Tensor,
    name: str = "image",
    value_range: tuple[float, float] | None = (0.0, 1.0),
    known: Tensor | None = None,
) -> None:
    """Every value of ``x`` (only where ``known > 0``, if a mask is given) must be finite and lie in ``value_range``.

    ``value_range=None`` checks finiteness only (feature maps). ``known`` is a mask (N, 1 or C, H, W) with
    1 = known pixel: hole pixels are never read, so NaN, inf or any value there is fine. An empty batch passes.
    One reduction over the tensor (a device sync on a GPU).
    """
    if x.numel() == 0:
        return
    values = x.detach()
    if known is not None:
        fill = 0.0 if value_range is None else value_range[0]
        values = torch.where(known.detach() > 0, values, fill)
    low, high = (float(v) for v in torch.aminmax(values))
    if not (math.isfinite(low) and math.isfinite(high)):
        where = " in its known pixels (mask > 0)" if known is not None else ""
        raise ValueError(f"{name} must be finite{where}, got NaN or inf (min {low:g}, max {high:g})")
    if value_range is not None and not (value_range[0] <= low and high <= value_range[1]):
        where = "known " if known is not None else ""
        raise ValueError(
            f"{name}'s {where}pixel values must lie in [{value_range[0]:g}, {value_range[1]:g}], "
            f"got min {low:g}, max {high:g}"
            + ("; divide 8-bit images by 255" if high > 1.0 and value_range == (0.0, 1.0) else "")
        )


def check_image(
    x: Tensor,
    name: str = "image",
    channels: int | None = None,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    known: Tensor | None = None,
    values: bool = True,
) -> None:
    """A floating (N, C, H, W) batch with ``channels`` channels (any if None) whose values pass
    ``check_image_values`` (skipped with ``values=False``: no device sync)."""
    check_batch(x, name)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(x.shape)}")
    if values:
        check_image_values(x, name, value_range, known)


def _parameter_dtype(module: nn.Module) -> torch.dtype | None:
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return None


def check_dtype(x: Tensor, module: nn.Module, name: str = "image") -> None:
    """Outside autocast, ``x`` must have the dtype of ``module``'s parameters (float64 input needs ``module.double()``)."""
    expected = _parameter_dtype(module)
    if expected is None or x.dtype == expected or torch.is_autocast_enabled(x.device.type):
        return
    raise ValueError(
        f"{name} has dtype {x.dtype} but {type(module).__name__}'s parameters are {expected}; convert the input "
        f"with .to({expected}) or the model with .to({x.dtype}) (or run under torch.autocast)"
    )


def check_inpainting_input(
    model: nn.Module, image: Tensor, mask: Tensor, mask_channels: int | tuple[int, ...] = 1, values: bool = True
) -> None:
    """What every inpainting model checks at its input: an RGB batch (N, 3, H, W) in the model's dtype, a mask
    (see ``check_mask``) and, unless ``values=False``, finite known pixels in [0, 1] (hole pixels are never read)."""
    check_image(image, "image", channels=3, values=False)
    check_mask(mask, image, mask_channels, values=values)
    check_dtype(image, model, "image")
    if values:
        check_image_values(image, "image", (0.0, 1.0), known=mask)


def check_int(value: object, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (Python, NumPy or a 0-d integer tensor; not bool, not 32.0) within [minimum, maximum]; returns it as int."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {value!r} ({type(value).__name__})") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = (
            f"in [{minimum}, {maximum}]" if minimum is not None and maximum is not None
            else f">= {minimum}" if minimum is not None else f"<= {maximum}"
        )
        raise ValueError(f"{name} must be an int {bounds}, got {number}")
    return number


def check_size(size: object, name: str = "size", minimum: int = 1) -> tuple[int, int]:
    """An image size: one int (square) or a pair (H, W) of ints, each >= ``minimum``; returns (H, W).

    NumPy integers and 0-d integer tensors count as ints; floats (even 32.0), bools and strings do not.
    """
    is_pair = isinstance(size, (tuple, list)) or (isinstance(size, Tensor) and size.dim() == 1)
    sides = tuple(size) if is_pair else (size, size)
    try:
        if len(sides) != 2:
            raise ValueError
        height, width = (check_int(side, name, minimum) for side in sides)
    except ValueError:
        raise ValueError(
            f"{name} must be an int or a pair (H, W) of ints, each "
            f"{'positive (>= 1)' if minimum == 1 else f'>= {minimum}'}, got {size!r} ({type(size).__name__})"
        ) from None
    return height, width
