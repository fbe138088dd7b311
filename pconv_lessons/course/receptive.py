"""Receptive fields: the theoretical one of a conv stack and the effective one of any model.

Theoretical receptive field (a chain of convolutions, layer l with kernel k_l, stride s_l, dilation d_l).
With r_0 = 1 and j_0 = 1 (the "jump": input pixels between neighbouring outputs of the layer),

    r_l = r_{l-1} + d_l · (k_l − 1) · j_{l-1}
    j_l = j_{l-1} · s_l

so r_L input pixels (along one axis) can influence one output of the last layer. It counts every path,
however weak, and it ignores what the weights do.

Effective receptive field (Luo et al., 2016, "Understanding the Effective Receptive Field in Deep
Convolutional Neural Networks"). For an input x and the output y of a model, take the centre output
position c and measure how strongly each input pixel p moves it:

    ERF(p) = E_x [ Σ_channels | ∂(Σ_k y_k[c]) / ∂x[p] | ]

estimated by back-propagating a gradient of 1 at the centre output (0 elsewhere) for random inputs
x ~ N(0, 1) and averaging. In practice the ERF is a roughly Gaussian blob much smaller than the
theoretical receptive field — unless the model has a global path such as a Fourier unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn


@dataclass(frozen=True)
class ConvSpec:
    """One convolution along one axis: kernel size, stride and dilation."""

    kernel: int
    stride: int = 1
    dilation: int = 1

    def __post_init__(self) -> None:
        for name in ("kernel", "stride", "dilation"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")


def receptive_field_table(layers: Sequence[ConvSpec | tuple[int, int, int]]) -> list[tuple[int, int]]:
    """``(receptive field, jump)`` after each layer of a conv chain, using the recurrence in the module docstring.

    ``layers`` holds ``ConvSpec`` or ``(kernel, stride, dilation)`` tuples, in the order data flows.
    """
    field, jump = 1, 1
    table = []
    for layer in layers:
        spec = layer if isinstance(layer, ConvSpec) else ConvSpec(*layer)
        field += spec.dilation * (spec.kernel - 1) * jump
        jump *= spec.stride
        table.append((field, jump))
    return table


def receptive_field(layers: Sequence[ConvSpec | tuple[int, int, int]]) -> int:
    """Theoretical receptive field (pixels along one axis) of a chain of convolutions; 1 for an empty chain."""
    table = receptive_field_table(layers)
    return table[-1][0] if table else 1


def conv_specs(model: nn.Module, axis: int = 0) -> list[ConvSpec]:
    """``model``'s ``nn.Conv2d`` layers in registration order, as ``ConvSpec`` along ``axis`` (0 = height, 1 = width).

    This treats the model as one chain of convolutions, which is exact for plain sequential stacks; for models
    with branches or skips it gives the receptive field of the path that runs through every conv.
    """
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (height) or 1 (width), got {axis}")
    return [
        ConvSpec(module.kernel_size[axis], module.stride[axis], module.dilation[axis])
        for module in model.modules()
        if isinstance(module, nn.Conv2d)
    ]


def model_receptive_field(model: nn.Module, axis: int = 0) -> int:
    """Theoretical receptive field of the chain formed by ``model``'s ``nn.Conv2d`` layers (see ``conv_specs``)."""
    return receptive_field(conv_specs(model, axis))


def _first_output(output: Tensor | Sequence[Tensor]) -> Tensor:
    if isinstance(output, Tensor):
        return output
    if isinstance(output, Sequence) and output and isinstance(output[0], Tensor):
        return output[0]
    raise ValueError(f"the model must return a tensor (N, C, H, W) or a tuple starting with one, got {type(output)}")


def effective_receptive_field(
    model: nn.Module | Callable[[Tensor], Tensor],
    input_shape: tuple[int, int, int],
    n_samples: int = 16,
    batch_size: int = 8,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Mean |∂ centre output / ∂ input| over ``n_samples`` random inputs N(0, 1) shaped ``input_shape`` = (C, H, W).

    Returns an (H, W) float32 tensor (summed over input channels), not normalised. The centre output is
    position (H'//2, W'//2) of the model's output map, summed over output channels. An ``nn.Module`` is run
    in eval mode (restored afterwards), so batch norm does not mix the samples of a batch; wrap models that
    need more inputs, e.g. ``lambda x: generator(x, mask)``.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be positive, got {n_samples} and {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training if isinstance(model, nn.Module) else None
    if isinstance(model, nn.Module):
        model.eval()
    total = torch.zeros(input_shape[1:], dtype=torch.float32)
    try:
        done = 0
        while done < n_samples:
            count = min(batch_size, n_samples - done)
            x = torch.randn((count, *input_shape), generator=generator).to(device).requires_grad_(True)
            y = _first_output(model(x))
            if y.dim() != 4:
                raise ValueError(f"the model output must be shaped (N, C, H, W), got {tuple(y.shape)}")
            centre = y[:, :, y.shape[-2] // 2, y.shape[-1] // 2].sum()
            (grad,) = torch.autograd.grad(centre, x)
            total += grad.detach().abs().sum(dim=(0, 1)).float().cpu()
            done += count
    finally:
        if was_training is not None:
            model.train(was_training)
    return total / n_samples


def fraction_within(erf: Tensor, radius: int) -> float:
    """Share of the ERF's total mass inside the (2·radius+1)² square around the image centre."""
    height, width = erf.shape[-2:]
    cy, cx = height // 2, width // 2
    inner = erf[..., max(cy - radius, 0) : cy + radius + 1, max(cx - radius, 0) : cx + radius + 1]
    total = float(erf.sum())
    if total == 0.0:
        raise ValueError("the ERF is zero everywhere; the model output does not depend on its input")
    return float(inner.sum()) / total


def plot_erfs(
    erfs: Sequence[Tensor], titles: Sequence[str], log: bool = True, size: float = 3.0, floor: float = 1e-6
) -> Figure:
    """ERF maps side by side, each normalised to its maximum; ``log=True`` shows log10 so faint long-range
    influence is visible (values below ``floor`` of the maximum, exact zeros included, show as the floor)."""
    if len(erfs) != len(titles):
        raise ValueError(f"got {len(erfs)} ERF maps but {len(titles)} titles")
    figure, axes = plt.subplots(1, len(erfs), figsize=(size * len(erfs) + 0.8, size), squeeze=False)
    image = None
    for axis, erf, title in zip(axes[0], erfs, titles):
        array = erf.detach().float().cpu().numpy()
        peak = array.max()
        array = array / peak if peak > 0 else array
        if log:
            array = np.log10(np.maximum(array, floor))
            image = axis.imshow(array, cmap="magma", vmin=np.log10(floor), vmax=0.0)
        else:
            image = axis.imshow(array, cmap="magma", vmin=0.0, vmax=1.0)
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    label = "log10(ERF / max)" if log else "ERF / max"
    figure.colorbar(image, ax=list(axes[0]), shrink=0.8, label=label)
    return figure
