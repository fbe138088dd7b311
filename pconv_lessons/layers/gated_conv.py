"""Gated convolution (Yu et al., 2019, "Free-Form Image Inpainting with Gated Convolution", DeepFill v2).

A partial convolution gates every output with a hard rule (0 where the window saw no known pixel, 1
elsewhere). A gated convolution *learns* the gate instead, softly, per pixel and per channel:

    feature = W_f ∗ x + b_f
    gate    = W_g ∗ x + b_g
    out     = φ(feature) · σ(gate)          (φ = ELU by default, σ = logistic sigmoid)

Both convolutions see the same input window, so they are computed as ONE convolution with 2·C_out
output channels whose first C_out channels are the features and last C_out the gates (one kernel
launch instead of two). ``σ(gate)`` lies in (0, 1): a gate near 0 switches the feature off at that
pixel (e.g. inside a hole), near 1 passes it through.

Gates for visualisation: set ``layer.keep_gates = True`` and every forward stores the detached gates
σ(gate), shaped (N, C_out, H', W'), in ``layer.last_gates``; ``collect_gates(model, ...)`` does this for
every gated layer in a model at once. Off by default, so training keeps no extra tensors.

Initialisation: feature weights ~ N(0, 2.6²/fan_in), gate weights ~ N(0, 1/fan_in), biases 0. With
E[φ(f)²] ≈ Var(f)/2 for ELU and E[σ(g)²] ≈ 0.3, this keeps the activation variance roughly constant from
layer to layer. PyTorch's default convolution init shrinks it about threefold per gated layer, so a
17-layer DeepFill stage would start out all but ignoring its input.

``padding="same"`` is TensorFlow's "SAME" padding (``pconv_lessons.layers.tf_same``), which DeepFill v2 was
trained with: for a stride-2 layer it pads (0, 1) rather than (1, 1). ``gated=False`` drops the gate (out =
φ(conv(x)) with C_out channels), as DeepFill v2's last layer of each stage does (TensorFlow's ``gen_conv``
returns the plain convolution for its 3-channel output).

The gated up-sampling block (``GatedUpsample``) is DeepFill v2's decoder step: nearest-neighbour ×2,
then a stride-1 gated convolution with "same" padding.
"""

from __future__ import annotations

from collections.abc import Callable

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons.validation import check_batch
from pconv_lessons.layers.tf_same import pad_same

IntPair = int | tuple[int, int]
FEATURE_GAIN = 2.6
Activation = type[nn.Module] | nn.Module | Callable[[Tensor], Tensor] | None


class GatedConv2d(nn.Module):
    """``out = φ(conv_f(x)) · σ(conv_g(x))`` with conv_f and conv_g fused into one ``nn.Conv2d``.

    ``activation`` is φ: a module class (instantiated here; ``nn.ELU`` by default), a module or callable, or
    ``None`` for the identity. The fused convolution is ``self.conv`` with ``2·out_channels`` outputs:
    weight rows ``[:out_channels]`` are W_f and ``[out_channels:]`` are W_g. ``padding`` is an int (pair) or
    ``"same"`` (TensorFlow's, square kernel and stride only); ``gated=False``: a plain convolution, out = φ(conv(x)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: IntPair | str = 0,
        dilation: IntPair = 1,
        activation: Activation = nn.ELU,
        gated: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.gated = gated
        self.same = padding == "same"
        if self.same and not all(isinstance(value, int) for value in (kernel_size, stride, dilation)):
            raise ValueError(f"padding='same' needs int kernel_size, stride and dilation, got "
                             f"{kernel_size!r}, {stride!r}, {dilation!r}")
        if isinstance(padding, str) and not self.same:
            raise ValueError(f"padding must be an int, a pair of ints or 'same', got {padding!r}")
        self.conv = nn.Conv2d(in_channels, (1 + gated) * out_channels, kernel_size, stride,
                              0 if self.same else padding, dilation)
        self.activation = activation() if isinstance(activation, type) else activation
        self.keep_gates = False
        self.last_gates: Tensor | None = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Variance-preserving init (see the module docstring)."""
        weight = self.conv.weight
        std = 1.0 / math.sqrt(weight[0].numel())
        weight[: self.out_channels].normal_(0.0, FEATURE_GAIN * std if self.gated else std)
        weight[self.out_channels :].normal_(0.0, std)
        self.conv.bias.zero_()

    def extra_repr(self) -> str:
        return f"{'padding=same, ' if self.same else ''}gated={self.gated}, keep_gates={self.keep_gates}"

    def forward(self, x: Tensor) -> Tensor:
        check_batch(x, "x")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        if self.same:
            x = pad_same(x, self.conv.kernel_size[0], self.conv.stride[0], self.conv.dilation[0])
        if not self.gated:
            out = self.conv(x)
            return out if self.activation is None else self.activation(out)
        feature, gate = self.conv(x).chunk(2, dim=1)
        gates = torch.sigmoid(gate)
        if self.keep_gates:
            self.last_gates = gates.detach()
        if self.activation is not None:
            feature = self.activation(feature)
        return feature * gates


class GatedUpsample(nn.Module):
    """Nearest-neighbour ×2 up-sampling followed by a stride-1 ``GatedConv2d`` (``self.conv``) with "same" padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: Activation = nn.ELU,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.conv = GatedConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


@torch.no_grad()
def collect_gates(model: nn.Module, *inputs, **kwargs) -> dict[str, Tensor]:
    """Run ``model(*inputs, **kwargs)`` once and return ``{layer name: σ(gate)}`` for every ``GatedConv2d`` in it.

    The gates are detached tensors shaped (N, C_out, H', W'), in the order the layers were created.
    Each layer's ``keep_gates`` flag is restored afterwards.
    """
    layers = {name: module for name, module in model.named_modules() if isinstance(module, GatedConv2d)}
    if not layers:
        raise ValueError(f"{type(model).__name__} holds no GatedConv2d layer")
    previous = {name: layer.keep_gates for name, layer in layers.items()}
    try:
        for layer in layers.values():
            layer.keep_gates = True
            layer.last_gates = None
        model(*inputs, **kwargs)
        return {name: layer.last_gates for name, layer in layers.items() if layer.last_gates is not None}
    finally:
        for name, layer in layers.items():
            layer.keep_gates = previous[name]
            layer.last_gates = None
