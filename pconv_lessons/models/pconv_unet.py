"""The PConv U-Net of Liu et al. (2018), "Image Inpainting for Irregular Holes Using Partial Convolutions".

Every convolution is a partial convolution (see ``pconv_lessons.layers.partial_conv``), so each layer passes
on a feature map *and* an updated mask. With ``layer_size = L`` and ``b = base_channels`` (64 in the paper):

    encoder  enc_k = ReLU(BN(PConv_k(enc_{k-1}, m_{k-1})))     stride 2,   k = 1 … L
             kernels 7, 5, 5, then 3;  channels b, 2b, 4b, then 8b;  no BN on enc_1
    decoder  dec_k = LeakyReLU_0.2(BN(PConv_k(cat[up(dec_{k+1}), enc_{k-1}],
                                           cat[up(m_dec_{k+1}), m_enc_{k-1}])))   3×3, stride 1, k = L … 1
             up = nearest-neighbour ×2 (features and masks alike); enc_0 is the input image, m_enc_0 its mask;
             dec_1 (3 output channels) is a plain partial convolution: no BN, no activation.

The decoder's partial convolutions take multi-channel masks: the skip connection concatenates masks exactly
as it concatenates features, so a decoder window counts known entries over both halves. The paper uses
``layer_size`` 7 at 256² (bottleneck 2×2) and 8 at 512².

Any H×W works: the input is padded at the bottom and right to a multiple of 2^L with the padding marked as
hole (so no partial convolution ever reads it), and the prediction is cropped back.

``convention`` says how the network's own inputs relate to the course's (``CONVENTIONS``): image RGB in [0, 1],
mask 1 = known.

    network image = low + (high − low) · image[channels]
    network mask  = mask, or (mask == 1) where the convention binarises it
    prediction    = (network output − low) / (high − low), channels put back, clamped to [0, 1] if it says so

``"course"`` (the default) is the identity: RGB in [0, 1], masks as given (soft ones too), prediction not
clamped. ``"mmagic"`` is what mmagic's inference does for its released PConv weights: BGR (images loaded by
OpenCV), (v − 127.5) / 127.5 on 0…255 values, i.e. [-1, 1]; a mask is a hole wherever it is not fully known (its
``LoadMask`` turns every hole value > 0 into 1); the prediction clamped as its ``DataPreprocessor.destruct`` clamps
it to [0, 255].

The same skeleton with other convolutions (``conv``), for the papers' ablations; widths, kernels, strides, padding,
nearest up-sampling, skip concatenation, BatchNorm placement and activations stay as above, only the convolution
Conv_k of each level and the network's input x_0 change (I: image, M: mask, both padded as above):

    "partial"  (the paper's)  x_0 = I, m_0 = M;  Conv_k(x, m) = PConv_k(x, m) with its mask update, as above
    "plain"    x_0 = I ⊙ M (the holes filled with 0), no mask anywhere;  Conv_k(x) = W_k ∗ x + b_k,
               an ``nn.Conv2d`` of PConv_k's shape — the PConv paper's "Conv" baseline, except that the paper
               filled the holes with 127.5 or the ImageNet mean rather than 0
    "gated"    x_0 = cat[I ⊙ M, M] (4 channels, as DeepFill v2 feeds its generator the mask), no mask after;
               each level  φ_k(BN_k(W_f ∗ x + b_f)) · σ(W_g ∗ x + b_g),  a ``GatedConv2d`` (one fused conv of
               2× the width) whose φ is the level's BatchNorm then activation (ReLU / LeakyReLU 0.2 / none as
               above; the BatchNorm normalises the features, not the gates); dec_1 is gated too, with φ = identity

The hole content of I is never read by any of them (``plain`` and ``gated`` select 0 there, NaN-safe). ``gated``
takes a single-channel mask (its mask is one input channel); the others a 1- or 3-channel one.

Training follows the paper's two phases: Adam at 2e-4 with BatchNorm everywhere, then fine-tuning at 5e-5
with the encoder's BatchNorm frozen (``freeze_encoder_batchnorm()``), because the hole pixels distort the
batch statistics the encoder sees.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons.validation import check_inpainting_input, check_int
from pconv_lessons.layers import GatedConv2d, PartialConv2d


class Convention(NamedTuple):
    """How the network's inputs and output relate to the course's (see the module docstring)."""

    channels: tuple[int, int, int]  # the course's (RGB) channel that feeds network channel 0, 1, 2
    low: float  # the network's value for black
    high: float  # the network's value for white
    binary_mask: bool  # known only where the mask is 1
    clamp_output: bool


CONVENTIONS = {
    "course": Convention(channels=(0, 1, 2), low=0.0, high=1.0, binary_mask=False, clamp_output=False),
    "mmagic": Convention(channels=(2, 1, 0), low=-1.0, high=1.0, binary_mask=True, clamp_output=True),
}


CONVS = ("partial", "plain", "gated")
"""The convolutions the U-Net can be built with (see the module docstring)."""


class LayerOutput(NamedTuple):
    """What one level of the U-Net hands on: its name, feature map and mask (at the padded size; ``None`` where the
    network carries no mask: ``conv="plain"`` and ``"gated"``)."""

    name: str
    features: Tensor
    mask: Tensor | None


class UNetBlock(nn.Module):
    """One level of the U-Net: convolution → optional BatchNorm → optional activation; ``forward(x, mask) -> (x, mask)``.

    ``conv="partial"``: a ``PartialConv2d`` that passes on its new mask. ``"plain"``: an ``nn.Conv2d`` of the same
    shape; the mask stays ``None``. ``"gated"``: a ``GatedConv2d`` whose φ is the BatchNorm then the activation
    (``self.conv.activation``), so ``self.norm`` and ``self.activation`` are identities; the mask stays ``None``.
    """

    def __init__(
        self,
        conv: str,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        batch_norm: bool,
        activation: nn.Module | None,
        multi_channel: bool,
    ) -> None:
        super().__init__()
        norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()
        activation = activation if activation is not None else nn.Identity()
        shape = dict(in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, stride=stride,
                     padding=kernel_size // 2)
        if conv == "gated":
            self.conv = GatedConv2d(**shape, activation=nn.Sequential(norm, activation))
            norm, activation = nn.Identity(), nn.Identity()
        elif conv == "plain":
            self.conv = nn.Conv2d(**shape, bias=not batch_norm)
        else:
            self.conv = PartialConv2d(**shape, bias=not batch_norm, multi_channel=multi_channel)
            self.conv.check_mask_values = False  # the model validates its input mask once
        self.norm = norm
        self.activation = activation

    def forward(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if mask is None:
            out = self.conv(x)
        else:
            out, mask = self.conv(x, mask)
            mask = mask[:, :1]  # every channel of a partial convolution's new mask is the same; pass one on
        return self.activation(self.norm(out)), mask


def encoder_channels(layer_size: int, base_channels: int) -> list[int]:
    """Output channels of enc_1 … enc_L: b, 2b, 4b, then 8b."""
    return [base_channels * min(2**index, 8) for index in range(layer_size)]


def encoder_kernel(level: int) -> int:
    """Kernel size of enc_level (1-based): 7, 5, 5, then 3."""
    return {1: 7, 2: 5, 3: 5}.get(level, 3)


def _expand(mask: Tensor | None, channels: int) -> Tensor | None:
    return mask if mask is None or mask.shape[1] == channels else mask.expand(-1, channels, -1, -1)


def _joined(features: Tensor, mask: Tensor | None, skip: LayerOutput) -> tuple[Tensor, Tensor | None]:
    """The decoder's input: cat[up(dec_{k+1}), enc_{k-1}] and its mask cat[up(m_dec_{k+1}), m_enc_{k-1}], each mask
    repeated per channel as the features are joined (``None`` for a network without masks)."""
    up_features = F.interpolate(features, scale_factor=2.0, mode="nearest")
    # Under autocast the skip may be float32 while up_features is bfloat16: join in one dtype.
    joined = torch.cat([up_features, skip.features.to(up_features.dtype)], dim=1)
    if mask is None:
        return joined, None
    up_mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
    return joined, torch.cat([_expand(up_mask, up_features.shape[1]), _expand(skip.mask, skip.features.shape[1])], dim=1)


class PConvUNet(nn.Module):
    """The paper's PConv U-Net (or its skeleton with plain or gated convolutions: ``conv``); ``forward(image, mask)``
    returns the prediction I_out (N, 3, H, W).

    ``image``: (N, 3, H, W), any H and W. ``mask``: (N, 1, H, W) or (N, 3, H, W) (``conv="gated"``: (N, 1, H, W)
    only), 1 = known, 0 = hole, validated once here (inner layers skip the value check; set
    ``check_mask_values = False`` to skip it here too, e.g. for ``torch.compile`` without a graph break, when the
    masks are known to be valid; it skips the image value check too). The hole content of ``image`` is never read
    (NaN or inf there is fine); known pixels must be finite and in [0, 1], and ``image`` must have the parameters'
    dtype (float64 needs ``model.double()``).

    ``layer_size``: number of stride-2 encoder levels (7 for 256², 8 for 512²); ``base_channels``: width of
    enc_1 (64 in the paper; 8 or 16 give small models for CPU lessons and tests). ``convention``: the network's
    own input convention, a key of ``CONVENTIONS`` (``"course"``; ``"mmagic"`` for its released weights). Whatever
    it is, ``forward`` takes and returns the course's; ``forward_layers`` shows the network's own values.

    ``conv``: the convolution every level uses, one of ``CONVS``: ``"partial"`` (the paper's), ``"plain"``
    (``nn.Conv2d`` on the zero-filled image, no mask) or ``"gated"`` (``GatedConv2d`` on the zero-filled image and
    the mask); see the module docstring. Only ``"partial"`` has masks in ``forward_layers``.

    ``freeze_encoder_batchnorm()`` puts the encoder's BatchNorm layers in eval mode and keeps them there
    across ``.train()`` calls (the paper's fine-tune phase); ``freeze_encoder_batchnorm(False)`` undoes it.
    ``forward_layers(image, mask)`` returns every level's features and mask, for inspection.
    """

    def __init__(
        self, layer_size: int = 7, base_channels: int = 64, convention: str = "course", conv: str = "partial"
    ) -> None:
        super().__init__()
        layer_size = check_int(layer_size, "layer_size (inputs are padded to a multiple of 2**layer_size)", 1, 12)
        base_channels = check_int(base_channels, "base_channels", 1)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(map(repr, CONVENTIONS))}, got {convention!r}")
        if conv not in CONVS:
            raise ValueError(f"conv must be one of {', '.join(map(repr, CONVS))}, got {conv!r}")
        self.layer_size = layer_size
        self.base_channels = base_channels
        self.convention = convention
        self.conv = conv
        self._encoder_batchnorm_frozen = False
        self.check_mask_values = True
        # widths[k]: channels of enc_k; enc_0 is the network's input (the image, plus the mask for "gated")
        widths = [4 if conv == "gated" else 3] + encoder_channels(layer_size, base_channels)
        self.encoder = nn.ModuleList(
            UNetBlock(
                conv,
                widths[level - 1],
                widths[level],
                encoder_kernel(level),
                stride=2,
                batch_norm=level > 1,
                activation=nn.ReLU(),
                multi_channel=level == 1,  # the input mask may have 3 different channels
            )
            for level in range(1, layer_size + 1)
        )
        # decoder[i] is dec_{L-i}: input up(dec_{k+1}) (widths[k] channels) and enc_{k-1} (widths[k-1] channels);
        # output widths[k-1] channels, 3 for dec_1 (the prediction).
        self.decoder = nn.ModuleList(
            UNetBlock(
                conv,
                widths[level] + widths[level - 1],
                widths[level - 1] if level > 1 else 3,
                3,
                stride=1,
                batch_norm=level > 1,
                activation=nn.LeakyReLU(0.2) if level > 1 else None,
                multi_channel=True,
            )
            for level in range(layer_size, 0, -1)
        )

    @property
    def mask_channels(self) -> tuple[int, ...]:
        """The mask channel counts ``forward`` accepts (``"gated"`` reads the mask as one input channel)."""
        return (1,) if self.conv == "gated" else (1, 3)

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (2^layer_size)."""
        return 2**self.layer_size

    @property
    def encoder_batchnorm_frozen(self) -> bool:
        return self._encoder_batchnorm_frozen

    def freeze_encoder_batchnorm(self, frozen: bool = True) -> PConvUNet:
        """Keep the encoder's BatchNorm layers in eval mode (running statistics fixed) from now on, even in ``.train()``."""
        self._encoder_batchnorm_frozen = frozen
        return self.train(self.training)

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self._encoder_batchnorm_frozen:
            for module in self.encoder.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        prediction = self._levels(image, mask, keep=False)[-1].features  # checks image and mask first
        height, width = image.shape[-2:]
        return self._from_network(prediction[..., :height, :width])

    def forward_layers(self, image: Tensor, mask: Tensor) -> list[LayerOutput]:
        """Every level in order: ``input``, ``enc1`` … ``encL``, ``decL`` … ``dec1``, at the padded size, in the
        network's own convention (``input`` is the image and mask as the network sees them, ``dec1`` its raw
        prediction).

        Masks are single-channel after the first layer (all channels of a partial convolution's new mask agree);
        ``None`` for ``conv="plain"`` and ``"gated"``, whose ``input`` is I ⊙ M or cat[I ⊙ M, M].
        """
        return self._levels(image, mask, keep=True)

    def _levels(self, image: Tensor, mask: Tensor, keep: bool) -> list[LayerOutput]:
        """``forward_layers``'s levels (``keep=True``), or only ``dec1`` (``keep=False``: each level is released as
        soon as the decoder has used it, so inference holds about one level's activations less; same values)."""
        check_inpainting_input(self, image, mask, self.mask_channels, values=self.check_mask_values)
        image, mask = self._pad(*self._to_network(image, mask.to(image.dtype)))

        layers: list[LayerOutput | None] = [self._input_layer(image, mask)]
        features, current_mask = layers[0].features, _expand(layers[0].mask, 3)
        for level, block in enumerate(self.encoder, start=1):
            features, current_mask = block(features, current_mask)
            layers.append(LayerOutput(f"enc{level}", features, current_mask))

        for level, block in zip(range(self.layer_size, 0, -1), self.decoder):
            skip = layers[level - 1]  # enc_{level-1}; layers[0] is the input
            joined, joined_mask = _joined(features, current_mask, skip)
            if not keep:
                layers[level - 1] = skip = features = current_mask = None  # dec_{k+1} and enc_{k-1}: used
            features, current_mask = block(joined, joined_mask)
            if keep:
                layers.append(LayerOutput(f"dec{level}", features, current_mask))
        return layers if keep else [LayerOutput("dec1", features, current_mask)]

    def _input_layer(self, image: Tensor, mask: Tensor) -> LayerOutput:
        """x_0: the image and its mask (``"partial"``), I ⊙ M (``"plain"``) or cat[I ⊙ M, M] (``"gated"``)."""
        if self.conv == "partial":
            return LayerOutput("input", image, mask)
        zero_filled = torch.where(mask > 0, image * mask, 0.0)  # select, don't multiply: NaN in a hole stays out
        if self.conv == "plain":
            return LayerOutput("input", zero_filled, None)
        return LayerOutput("input", torch.cat([zero_filled, mask], dim=1), None)

    def _to_network(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        convention = CONVENTIONS[self.convention]
        image = image[:, list(convention.channels)] * (convention.high - convention.low) + convention.low
        return image, (mask == 1).to(mask.dtype) if convention.binary_mask else mask

    def _from_network(self, prediction: Tensor) -> Tensor:
        convention = CONVENTIONS[self.convention]
        back = [convention.channels.index(channel) for channel in range(3)]
        rgb = (prediction[:, back] - convention.low) / (convention.high - convention.low)
        return rgb.clamp(0.0, 1.0) if convention.clamp_output else rgb

    def _pad(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        multiple = self.size_multiple
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h == 0 and pad_w == 0:
            return image, mask
        padding = (0, pad_w, 0, pad_h)
        return F.pad(image, padding), F.pad(mask, padding)  # zeros: the padding is a hole

