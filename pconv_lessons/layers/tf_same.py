"""TensorFlow's "SAME" padding and align-corners nearest down-sampling, which DeepFill v2 was trained with.

TensorFlow pads a convolution so that the output has ⌈H / s⌉ rows, splitting the padding with the smaller half on
top (left) and the larger half at the bottom (right):

    out   = ⌈H / s⌉
    total = max((out − 1)·s + (k − 1)·d + 1 − H, 0)        k kernel, s stride, d dilation
    top   = ⌊total / 2⌋,   bottom = total − top             (the same along the width)

For stride 1 and an odd kernel this is PyTorch's symmetric ``padding=(k − 1)·d / 2``. For a 3×3 stride-2
convolution on an even H it is (0, 1): the windows start on the first row, not one row above it, so output i sees
rows 2i … 2i + 2 where PyTorch's ``padding=1`` would show it rows 2i − 1 … 2i + 1. Weights trained with one do not
fit the other.

``nearest_downsample`` is TensorFlow 1's ``resize_nearest_neighbor(align_corners=True)`` to ⌊H / n⌋ rows, as
DeepFill v2's contextual attention uses it: output row i reads input row round(i·(H − 1) / (out − 1)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def same_padding(height: int, width: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int, int, int]:
    """The (left, right, top, bottom) padding of TensorFlow's "SAME" for an H×W input (``F.pad`` order)."""

    def along(size: int) -> tuple[int, int]:
        out = -(-size // stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        return total // 2, total - total // 2

    return (*along(width), *along(height))


def pad_same(x: Tensor, kernel: int, stride: int = 1, dilation: int = 1) -> Tensor:
    """``x`` zero-padded with TensorFlow's "SAME" padding for the given convolution."""
    return F.pad(x, same_padding(x.shape[-2], x.shape[-1], kernel, stride, dilation))


def nearest_downsample(x: Tensor, factor: int) -> Tensor:
    """Nearest-neighbour down-sampling to ⌊H / factor⌋ × ⌊W / factor⌋ with TensorFlow's align-corners rounding."""

    def rows(size: int) -> Tensor:
        return torch.linspace(0, size - 1, size // factor, device=x.device).add_(0.5).floor_().long()

    return x[:, :, rows(x.shape[-2])][..., rows(x.shape[-1])]
