"""Partial convolution (Liu et al., 2018, "Image Inpainting for Irregular Holes Using Partial Convolutions").

For every output position, with X the input window, M the binary mask window, W the weights and b the bias:

    x' = Wᵀ(X ⊙ M) · sum(1) / sum(M) + b    if sum(M) > 0
    x' = 0                                  otherwise

    m' = 1 if sum(M) > 0 else 0

``sum(1)`` is the number of entries in the window: k_h·k_w for a single-channel mask (N, 1, H, W),
C_in·k_h·k_w for a multi-channel mask (N, C_in, H, W). Zero padding pads the mask with zeros, so
pixels beyond the border count as holes. The mask path is one convolution of the mask with a
ones kernel of one output channel, run without autograd; it is far cheaper than the feature conv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons.validation import check_batch, check_dtype, check_image_values, check_mask


class PartialConv2d(nn.Conv2d):
    """A 2-D convolution that sees only the known pixels and re-weights by how many it saw.

    ``forward(x, mask)`` returns ``(out, new_mask)``. With ``multi_channel=False`` the mask is
    shaped (N, 1, H, W) and the new mask (N, 1, H', W'); with ``multi_channel=True`` the mask is
    (N, in_channels, H, W) and the new mask (N, out_channels, H', W'). The mask may be soft
    (values in [0, 1]); ``sum(M)`` is then the sum of mask values in the window.

    Hole entries of ``x`` (mask 0) are never read, so NaN or inf there is harmless; in known entries it is an error.
    Set ``check_mask_values = False`` on a layer whose masks come from another partial conv, to
    skip the value checks of mask and ``x`` (each a device sync on a GPU); shape and dtype checks always run.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        multi_channel: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias)
        self.multi_channel = multi_channel
        self.check_mask_values = True
        mask_channels = in_channels if multi_channel else 1
        kernel_h, kernel_w = self.kernel_size
        self.register_buffer("mask_kernel", torch.ones(1, mask_channels, kernel_h, kernel_w), persistent=False)
        self.window_size = float(mask_channels * kernel_h * kernel_w)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", multi_channel={self.multi_channel}"

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        check_batch(x, "x")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        check_mask(mask, x, self.in_channels if self.multi_channel else 1, values=self.check_mask_values)
        check_dtype(x, self, "x")
        if self.check_mask_values:
            check_image_values(x, "x", value_range=None, known=mask)

        scale, new_mask = self.mask_scale(mask, x.dtype)
        # Select, don't multiply: NaN or inf in a hole would survive 0 · x. Zeroed in place (the product is a new
        # tensor that mul's backward does not need): one temporary the size of x instead of two.
        out = self._conv_forward((x * mask.to(x.dtype)).masked_fill_(mask <= 0, 0.0), self.weight, None)
        # In place: the conv's backward needs its input and weights, not its output.
        out = out.mul_(scale)
        if self.bias is not None:
            out = out.addcmul_(self.bias.view(1, -1, 1, 1), new_mask)
        if self.multi_channel:
            new_mask = new_mask.expand(-1, self.out_channels, -1, -1)
        return out, new_mask.to(mask.dtype)

    @torch.no_grad()
    def mask_scale(self, mask: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """Per output position: ``sum(1)/sum(M)`` where the window saw a known pixel (else 0), and the new mask.

        Both are shaped (N, 1, H', W') and computed in float32, also under autocast, so the counts are exact;
        in float64 when ``dtype`` (the features' dtype) is float64.
        """
        precision = torch.float64 if dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=mask.device.type, enabled=False):
            known = F.conv2d(
                mask.to(precision), self.mask_kernel.to(precision), None, self.stride, self.padding, self.dilation
            )
        saw_known = known > 0
        scale = torch.where(saw_known, self.window_size / known, 0.0)
        return scale, saw_known.to(precision)
