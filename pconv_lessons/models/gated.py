"""DeepFill v2's generator and SN-PatchGAN discriminator (Yu et al., 2019, "Free-Form Image Inpainting with Gated Convolution").

The generator is layer for layer the released DeepFill v2 (JiahuiYu/generative_inpainting v2.0.0, as converted to
PyTorch by nipponjo/deepfillv2-pytorch's ``networks_tf.py``): its official weights load into
``GatedGenerator(base_channels=48)`` (``pconv_lessons.pretrained``). Every layer is a ``GatedConv2d`` with
TensorFlow "SAME" padding, φ = ELU, except where noted. With c = ``base_channels`` (DeepFill's ``cnum``, 48):

    hole       = 1 − m                       m = mask (1 = known), binarised at 0.5
    x̃          = (2·image − 1)·(1 − hole)    image in [−1, 1], holes at 0
    input      = [x̃, 1, hole (, s)]          a ones channel (the image extent under zero padding), the hole mask,
                                             optionally a user sketch s (edges, inside the hole only)
    coarse     = tanh(C(input))              C: encoder (5×5 → c/2, 3×3 stride 2 → c, 3×3 → c, stride 2 → 2c, → 2c),
                                             3×3, dilated 3×3 at rates 2, 4, 8, 16, two 3×3, decoder (nearest ×2 +
                                             3×3 → c, 3×3, ×2 → c/2, 3×3 → c/4, plain 3×3 → 3: no gate, no φ)
    merged     = coarse·hole + x̃·(1 − hole)  three channels: the refine stage sees no mask channel
    hallu      = D(merged)                   dilated-conv branch: encoder (c/2, c/2, c, c, 2c), 3×3, rates 2…16
    pm         = A(CA(E(merged), m))         attention branch: encoder (c/2, c/2, c, 2c, 2c), 3×3 with φ = ReLU,
                                             ``ContextualAttention`` (3×3 patches at half resolution, scale 10),
                                             two 3×3
    refined    = tanh(R([hallu, pm]))        the branches concatenated (4c channels), then the decoder as in C
    prediction = (refined + 1) / 2           in [0, 1], full size

``attention=False`` drops the attention branch (R then sees 2c channels); ``fuse`` switches contextual attention's
score propagation (on in the TensorFlow original; off in nipponjo's ``networks_tf.py``). H and W are padded
(replicate) to a multiple of 8, which the two stride-2 layers and the attention's half resolution need, and the
prediction is cropped back; the original's scripts instead crop the input to a multiple of 8.

Where this differs from the original: contextual attention uses each sample's own mask (the original uses the
first sample's for the whole batch); the optional sketch channel goes to the coarse stage only.

Discriminator (SN-PatchGAN): six 5×5 stride-2 convolutions with spectral normalisation and LeakyReLU(0.2),
widths 64/128/256/256/256/256 at ``base_channels=64``, on [image, m (, s)]. Every element of its output
map scores one image patch; it is trained with the hinge loss (``pconv_lessons.losses``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from pconv_lessons.validation import check_batch, check_image_values, check_inpainting_input, check_int, check_mask
from pconv_lessons.layers.contextual_attention import ContextualAttention
from pconv_lessons.layers.gated_conv import GatedConv2d, GatedUpsample

DILATION_RATES = (2, 4, 8, 16)
PAD_MULTIPLE = 8  # two stride-2 layers, then contextual attention at half resolution


def _check_sketch(sketch: Tensor, image: Tensor) -> None:
    check_batch(sketch, "sketch")
    if sketch.shape[1] != 1 or sketch.shape[0] != image.shape[0] or sketch.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"sketch must be shaped (N, 1, H, W) like the image {tuple(image.shape)}, got {tuple(sketch.shape)}"
        )


def _conv(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, **kwargs) -> GatedConv2d:
    return GatedConv2d(in_channels, out_channels, 3, stride, "same", dilation, **kwargs)


def _encoder(in_channels: int, widths: tuple[int, int, int, int, int]) -> list[nn.Module]:
    """5×5, 3×3 stride 2, 3×3, 3×3 stride 2, 3×3: full, half and quarter resolution."""
    w1, w2, w3, w4, w5 = widths
    return [GatedConv2d(in_channels, w1, 5, padding="same"), _conv(w1, w2, stride=2), _conv(w2, w3),
            _conv(w3, w4, stride=2), _conv(w4, w5)]


def _dilated(width: int, rates: tuple[int, ...]) -> list[nn.Module]:
    """A 3×3 convolution, then one dilated 3×3 convolution per rate."""
    return [_conv(width, width)] + [_conv(width, width, dilation=rate) for rate in rates]


def _decoder(in_channels: int, c: int) -> list[nn.Module]:
    """Two 3×3 at quarter resolution, two gated up-samplings, and the plain 3-channel output convolution."""
    return [_conv(in_channels, 2 * c), _conv(2 * c, 2 * c), GatedUpsample(2 * c, c), _conv(c, c),
            GatedUpsample(c, c // 2), _conv(c // 2, c // 4), _conv(c // 4, 3, activation=None, gated=False)]


class RefineStage(nn.Module):
    """DeepFill v2's second stage: the dilated-conv branch and the contextual-attention branch, merged, decoded."""

    def __init__(self, c: int, rates: tuple[int, ...], attention: bool = True, fuse: bool = True) -> None:
        super().__init__()
        self.dilated = nn.Sequential(*_encoder(3, (c // 2, c // 2, c, c, 2 * c)), *_dilated(2 * c, rates))
        self.attention = ContextualAttention(fuse=fuse) if attention else None
        if attention:
            self.attention_encoder = nn.Sequential(*_encoder(3, (c // 2, c // 2, c, 2 * c, 2 * c)),
                                                   _conv(2 * c, 2 * c, activation=nn.ReLU))
            self.attention_decoder = nn.Sequential(_conv(2 * c, 2 * c), _conv(2 * c, 2 * c))
        self.decoder = nn.Sequential(*_decoder((4 if attention else 2) * c, c))

    def forward(self, merged: Tensor, mask: Tensor) -> Tensor:
        """``merged`` (N, 3, H, W) in [−1, 1], ``mask`` (N, 1, H, W) with 1 = known; returns the pre-tanh output."""
        features = self.dilated(merged)
        if self.attention is not None:
            copied = self.attention(self.attention_encoder(merged), mask)
            features = torch.cat([features, self.attention_decoder(copied)], dim=1)
        return self.decoder(features)


class GatedGenerator(nn.Module):
    """DeepFill v2's coarse → refine inpainting generator built from gated convolutions (module docstring).

    ``forward(image, mask, sketch=None)`` takes images (N, 3, H, W) in [0, 1], masks (N, 1, H, W) with
    1 = known, 0 = hole, and, for a model built with ``sketch=True``, an optional sketch (N, 1, H, W)
    with 1 on the user's strokes (``None`` = no guidance, all zeros). It returns the full-size prediction
    (N, 3, H, W) in [0, 1]; with ``return_coarse=True`` it returns ``(coarse, prediction)``.

    ``base_channels`` is DeepFill v2's ``cnum`` (48 in the released model, a multiple of 4); small models use 8–16.
    """

    def __init__(self, base_channels: int = 48, sketch: bool = False, rates: tuple[int, ...] = DILATION_RATES,
                 attention: bool = True, fuse: bool = True) -> None:
        super().__init__()
        if check_int(base_channels, "base_channels", 4) % 4:
            raise ValueError(f"base_channels must be a multiple of 4 (DeepFill v2: 48), got {base_channels!r}")
        rates = tuple(check_int(rate, "every dilation rate in rates", 1) for rate in rates)
        self.base_channels = base_channels
        self.sketch = sketch
        c, rates = base_channels, tuple(rates)
        self.coarse = nn.Sequential(*_encoder(3 + 1 + 1 + int(sketch), (c // 2, c, c, 2 * c, 2 * c)),
                                    *_dilated(2 * c, rates), *_decoder(2 * c, c))
        self.refine = RefineStage(c, rates, attention, fuse)

    def extra_repr(self) -> str:
        return f"base_channels={self.base_channels}, sketch={self.sketch}"

    def forward(
        self, image: Tensor, mask: Tensor, sketch: Tensor | None = None, return_coarse: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        check_inpainting_input(self, image, mask)
        guidance = self._guidance(image, mask, sketch)

        height, width = image.shape[-2:]
        pad = (0, -width % PAD_MULTIPLE, 0, -height % PAD_MULTIPLE)
        if any(pad):
            image, mask = F.pad(image, pad, mode="replicate"), F.pad(mask, pad, mode="replicate")
            guidance = [F.pad(channel, pad, mode="replicate") for channel in guidance]

        hole = (mask < 0.5).to(image.dtype)
        known = torch.where(hole > 0, 0.0, 2 * image - 1)  # select: NaN/inf in a hole never leaks
        ones = torch.ones_like(hole)
        coarse = torch.tanh(self.coarse(torch.cat([known, ones, hole, *guidance], dim=1)))
        merged = torch.where(hole > 0, coarse, known)
        refined = torch.tanh(self.refine(merged, 1 - hole))

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
