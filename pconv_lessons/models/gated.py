"""DeepFill v2's generator and SN-PatchGAN discriminator (Yu et al., 2019, "Free-Form Image Inpainting with Gated Convolution").

Generator, two stages, every layer a gated convolution (``GatedConv2d``, φ = ELU):

    input      = [x̃, 1, m (, s)]          x̃ = (2·image − 1)·m   (holes at 0, mid-grey), 1 = a ones channel that
                                            marks the image extent under zero padding, m = mask (1 = known),
                                            s = optional user sketch (edges), used inside the hole only
    coarse     = tanh(C(input))            C: 5×5, two stride-2 downs, dilated 3×3 convs at rates 2, 4, 8, 16,
                                            two nearest-×2 gated ups, last layer linear
    merged     = x̃·m + coarse·(1 − m)
    refined    = tanh(R([merged, 1, m (, s)]))   R: the same encoder/dilated/decoder layout on the merged image
    prediction = (refined + 1) / 2          in [0, 1], full size

The refinement network here is DeepFill v2's dilated-convolution branch only: its second branch,
*contextual attention* (copying features from the known region into the hole by patch similarity), is
not built; lesson 08 explains it with a figure. Any H×W works: inputs are padded (replicate) to a
multiple of 4 and the prediction cropped back.

Discriminator (SN-PatchGAN): six 5×5 stride-2 convolutions with spectral normalisation and LeakyReLU(0.2),
widths 64/128/256/256/256/256 at ``base_channels=64``, on [image, m (, s)]. Every element of its output
map scores one image patch; it is trained with the hinge loss (``pconv_lessons.losses``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from pconv_lessons.checks import check_batch, check_image_values, check_inpainting_input, check_int, check_mask
from pconv_lessons.layers.gated_conv import GatedConv2d, GatedUpsample

DILATION_RATES = (2, 4, 8, 16)
DOWNSAMPLING = 4  # two stride-2 layers per stage


def _check_sketch(sketch: Tensor, image: Tensor) -> None:
    check_batch(sketch, "sketch")
    if sketch.shape[1] != 1 or sketch.shape[0] != image.shape[0] or sketch.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"sketch must be shaped (N, 1, H, W) like the image {tuple(image.shape)}, got {tuple(sketch.shape)}"
        )


def _stage(in_channels: int, width: int, first_widths: tuple[int, int, int], rates: tuple[int, ...]) -> nn.Sequential:
    """One DeepFill v2 stage: 5×5 conv, down, conv, down, two convs, dilated convs, two convs, up, conv, up, conv, out."""
    w1, w2, w3 = first_widths
    layers: list[nn.Module] = [
        GatedConv2d(in_channels, w1, 5, padding=2),
        GatedConv2d(w1, w2, 3, stride=2, padding=1),
        GatedConv2d(w2, 2 * width, 3, padding=1),
        GatedConv2d(2 * width, w3, 3, stride=2, padding=1),
        GatedConv2d(w3, 4 * width, 3, padding=1),
        GatedConv2d(4 * width, 4 * width, 3, padding=1),
    ]
    layers += [GatedConv2d(4 * width, 4 * width, 3, padding=rate, dilation=rate) for rate in rates]
    layers += [
        GatedConv2d(4 * width, 4 * width, 3, padding=1),
        GatedConv2d(4 * width, 4 * width, 3, padding=1),
        GatedUpsample(4 * width, 2 * width),
        GatedConv2d(2 * width, 2 * width, 3, padding=1),
        GatedUpsample(2 * width, width),
        GatedConv2d(width, width // 2, 3, padding=1),
        GatedConv2d(width // 2, 3, 3, padding=1, activation=None),
    ]
    return nn.Sequential(*layers)


class GatedGenerator(nn.Module):
    """DeepFill v2-style coarse → refine inpainting generator built from gated convolutions.

    ``forward(image, mask, sketch=None)`` takes images (N, 3, H, W) in [0, 1], masks (N, 1, H, W) with
    1 = known, 0 = hole, and, for a model built with ``sketch=True``, an optional sketch (N, 1, H, W)
    with 1 on the user's strokes (``None`` = no guidance, all zeros). It returns the full-size prediction
    (N, 3, H, W) in [0, 1]; with ``return_coarse=True`` it returns ``(coarse, prediction)``.

    ``base_channels`` is DeepFill v2's ``cnum`` (48 in the paper's code); small models use 8–16.
    """

    def __init__(self, base_channels: int = 48, sketch: bool = False, rates: tuple[int, ...] = DILATION_RATES) -> None:
        super().__init__()
        if check_int(base_channels, "base_channels", 2) % 2:
            raise ValueError(f"base_channels must be an even number >= 2, got {base_channels}")
        rates = tuple(check_int(rate, "every dilation rate in rates", 1) for rate in rates)
        self.base_channels = base_channels
        self.sketch = sketch
        in_channels = 3 + 1 + 1 + int(sketch)
        c = base_channels
        self.coarse = _stage(in_channels, c, (c, 2 * c, 4 * c), tuple(rates))
        self.refine = _stage(in_channels, c, (c, c, 2 * c), tuple(rates))

    def extra_repr(self) -> str:
        return f"base_channels={self.base_channels}, sketch={self.sketch}"

    def forward(
        self, image: Tensor, mask: Tensor, sketch: Tensor | None = None, return_coarse: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        check_inpainting_input(self, image, mask)
        guidance = self._guidance(image, mask, sketch)

        height, width = image.shape[-2:]
        pad = (0, -width % DOWNSAMPLING, 0, -height % DOWNSAMPLING)
        mask = mask.to(image.dtype)
        if any(pad):
            image, mask = F.pad(image, pad, mode="replicate"), F.pad(mask, pad, mode="replicate")
            guidance = [F.pad(channel, pad, mode="replicate") for channel in guidance]

        known = torch.where(mask > 0, (2 * image - 1) * mask, 0.0)  # select: NaN/inf in a hole never leaks
        ones = torch.ones_like(mask)
        coarse = torch.tanh(self.coarse(torch.cat([known, ones, mask, *guidance], dim=1)))
        merged = known + coarse * (1 - mask)
        refined = torch.tanh(self.refine(torch.cat([merged, ones, mask, *guidance], dim=1)))

        prediction = ((refined + 1) / 2)[..., :height, :width]
        if return_coarse:
            return ((coarse + 1) / 2)[..., :height, :width], prediction
        return prediction

    def _guidance(self, image: Tensor, mask: Tensor, sketch: Tensor | None) -> list[Tensor]:
        """The sketch channel (strokes inside the hole only) as a one-element list, or [] for a model without one."""
        if not self.sketch:
            if sketch is not None:
                raise ValueError("this GatedGenerator was built without a sketch channel; build it with sketch=True")
            return []
        if sketch is None:
            return [torch.zeros_like(mask, dtype=image.dtype)]
        _check_sketch(sketch, image)
        check_image_values(sketch, "sketch", (0.0, 1.0), known=mask < 1)  # read inside the hole only
        return [torch.where(mask < 1, sketch.to(image.dtype) * (1 - mask.to(image.dtype)), 0.0)]


class SNPatchDiscriminator(nn.Module):
    """SN-PatchGAN: spectral-normalised 5×5 stride-2 convolutions + LeakyReLU(0.2) on [image, mask (, sketch)].

    ``forward(image, mask, sketch=None)`` returns a score map (N, 4·base_channels, ⌈H/64⌉, ⌈W/64⌉) for six
    layers; every element judges one image patch (see ``receptive_field``). Images are in [0, 1].
    """

    def __init__(self, base_channels: int = 64, n_layers: int = 6, sketch: bool = False) -> None:
        super().__init__()
        check_int(base_channels, "base_channels (the discriminator width; disc_channels in the trainer)", 1)
        check_int(n_layers, "n_layers", 1)
        self.sketch = sketch
        widths = [base_channels * min(2**index, 4) for index in range(n_layers)]
        layers: list[nn.Module] = []
        previous = 3 + 1 + int(sketch)
        for width in widths:
            layers += [spectral_norm(nn.Conv2d(previous, width, 5, stride=2, padding=2)), nn.LeakyReLU(0.2)]
            previous = width
        self.layers = nn.Sequential(*layers)

    def forward(self, image: Tensor, mask: Tensor, sketch: Tensor | None = None) -> Tensor:
        check_batch(image, "image")
        check_mask(mask, image, values=False)
        channels = [2 * image - 1, mask.to(image.dtype)]
        if self.sketch:
            if sketch is None:
                sketch = torch.zeros_like(channels[1])
            _check_sketch(sketch, image)
            channels.append(sketch.to(image.dtype))
        elif sketch is not None:
            raise ValueError("this SNPatchDiscriminator was built without a sketch channel; build it with sketch=True")
        return self.layers(torch.cat(channels, dim=1))

    def convolutions(self) -> list[nn.Conv2d]:
        """The spectral-normalised convolutions, first to last."""
        return [module for module in self.layers if isinstance(module, nn.Conv2d)]

    def receptive_field(self) -> int:
        """Side length in input pixels of the patch that one output element sees: r ← r + (k − 1)·j, j ← j·s."""
        size, jump = 1, 1
        for conv in self.convolutions():
            size += (conv.kernel_size[0] - 1) * conv.dilation[0] * jump
            jump *= conv.stride[0]
        return size
