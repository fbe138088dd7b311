"""Fast Fourier Convolution (Chi et al., 2020) as LaMa (Suvorov et al., 2022) computes it.

Every equation below is what advimman/lama's ``saicinpainting/training/modules/ffc.py`` computes with the settings
of its released generators (``enable_lfu=False``, no ``spectral_pos_encoding``, no squeeze-excitation,
``fft_norm="ortho"``, reflect padding in every FFC conv); ``pconv_lessons.pretrained.lama`` loads its weights.

Fourier unit. For a feature map x (N, C, H, W), with F the 2-D real FFT over (H, W) normalised by 1/√(HW)
("ortho", so F is unitary):

    X = F(x)                                  (N, C, H, W//2+1), complex
    Z[2c] = Re X[c],  Z[2c+1] = Im X[c]       (N, 2C, H, W//2+1): real and imaginary parts interleaved per channel
    Z' = ReLU(BN(W₁ₓ₁ Z))                     a 1×1 conv (2C → 2C_out, no bias) mixing channels per frequency
    y[c] = F⁻¹(Z'[2c] + i·Z'[2c+1])           (N, C_out, H, W)

Every frequency depends on every pixel, so one 1×1 conv in the frequency domain gives each output pixel a
receptive field covering the whole image. The FFTs run in float32 (float64 stays float64), also inside bf16/fp16 autocast:
``torch.fft`` refuses bf16 (cuFFT itself has bf16 and fp16 only for power-of-two sizes), and float32 works for any H×W.

Spectral transform (the global→global path):

    s = ReLU(BN(conv1ₓ₁(x)))                  C_in → C_out/2 (after a 2×2 average pool when stride = 2)
    y = conv1ₓ₁(s + FourierUnit(s))           C_out/2 → C_out

FFC. The channels are split into a local part (the first (1 − ratio) share) and a global part (the rest):

    y_local  = conv_l→l(x_local) + conv_g→l(x_global)
    y_global = conv_l→g(x_local) + SpectralTransform(x_global)

Tensors travel concatenated along channels, local first, so ``FFC(x)`` takes and returns ordinary (N, C, H, W)
tensors (LaMa passes (local, global) tuples; the arithmetic is the same). With ratio_gin = ratio_gout = 0 an FFC
is exactly its local→local convolution.

FFC-BN-ReLU: y_local and y_global each get their own BatchNorm (LaMa's ``bn_l``, ``bn_g``), then ReLU.

FFC ResNet block: x + FFC_BN_ReLU(FFC_BN_ReLU(x)) with two 3×3 FFCs (reflect padding) of equal width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pconv_lessons.validation import check_batch


def _check_channels(x: Tensor, channels: int, name: str) -> None:
    check_batch(x, name)
    if x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(x.shape)}")


def _check_ratio(ratio: float, name: str) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {ratio}")


def global_channels(channels: int, ratio: float) -> int:
    """Number of global channels for a split ratio: int(channels · ratio) (the local part gets the rest)."""
    return int(channels * ratio)


class FourierUnit(nn.Module):
    """rfft2 (ortho) → real/imag interleaved as channels (Re c, Im c, …) → 1×1 conv → BN → ReLU → irfft2,
    FFTs in float32 (float64 stays float64)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv = nn.Conv2d(2 * in_channels, 2 * out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * out_channels)

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.in_channels, "x")
        height, width = x.shape[-2:]
        if x.shape[0] == 0:  # MKL and cuFFT reject an empty batch
            return x.new_zeros(0, self.out_channels, height, width)
        fft_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32  # raise lower precisions only
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfftn(x.to(fft_dtype), dim=(-2, -1), norm="ortho")
        stacked = torch.stack([spectrum.real, spectrum.imag], dim=2).flatten(1, 2).to(x.dtype)  # Re 0, Im 0, Re 1, …
        mixed = torch.relu(self.bn(self.conv(stacked))).to(fft_dtype).unflatten(1, (self.out_channels, 2))
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = torch.fft.irfftn(torch.complex(mixed[:, :, 0], mixed[:, :, 1]), s=(height, width), dim=(-2, -1),
                                   norm="ortho")
        return out.to(x.dtype)


class SpectralTransform(nn.Module):
    """The global path of an FFC: 1×1 conv (halving) → BN → ReLU → residual FourierUnit → 1×1 conv.

    ``stride=2`` average-pools 2×2 first, so the output is half the size like a stride-2 conv.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if out_channels < 2:
            raise ValueError(f"out_channels must be at least 2 (the Fourier unit gets half), got {out_channels}")
        hidden = out_channels // 2
        self.in_channels = in_channels
        self.downsample = nn.AvgPool2d(kernel_size=2, stride=2) if stride == 2 else nn.Identity()
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)
        )
        self.fourier = FourierUnit(hidden, hidden)
        self.expand = nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.in_channels, "x")
        reduced = self.reduce(self.downsample(x))
        return self.expand(reduced + self.fourier(reduced))


class FFC(nn.Module):
    """Fast Fourier Convolution: local and global channel groups exchanging information (see module docstring).

    ``in_channels``/``out_channels`` count both groups; ``ratio_gin``/``ratio_gout`` are the global shares of
    the input and output channels. Input and output are concatenated (local first) (N, C, H, W) tensors.
    ``padding_mode`` applies to the spatial convs ("reflect" in LaMa's ResNet blocks).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        ratio_gin: float,
        ratio_gout: float,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = False,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        _check_ratio(ratio_gin, "ratio_gin")
        _check_ratio(ratio_gout, "ratio_gout")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_global = global_channels(in_channels, ratio_gin)
        self.out_global = global_channels(out_channels, ratio_gout)
        self.in_local = in_channels - self.in_global
        self.out_local = out_channels - self.out_global

        def conv(c_in: int, c_out: int) -> nn.Module | None:
            if c_in == 0 or c_out == 0:
                return None
            return nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation, bias=bias, padding_mode=padding_mode)

        self.stride = stride
        self.local_to_local = conv(self.in_local, self.out_local)
        self.local_to_global = conv(self.in_local, self.out_global)
        self.global_to_local = conv(self.in_global, self.out_local)
        self.global_to_global = (
            SpectralTransform(self.in_global, self.out_global, stride)
            if self.in_global > 0 and self.out_global > 0
            else None
        )

    def extra_repr(self) -> str:
        return f"local {self.in_local}→{self.out_local}, global {self.in_global}→{self.out_global}"

    def forward(self, x: Tensor) -> Tensor:
        groups = self.groups(x)
        return groups[0] if len(groups) == 1 else torch.cat(groups, dim=1)

    def groups(self, x: Tensor) -> list[Tensor]:
        """[y_local, y_global] before concatenation (a group without channels left out), for ``FFCBNAct``."""
        _check_channels(x, self.in_channels, "x")
        if self.stride == 2 and self.global_to_global is not None and (x.shape[-2] % 2 or x.shape[-1] % 2):
            raise ValueError(f"a stride-2 FFC with a global path needs even H and W, got {tuple(x.shape[-2:])}")
        x_local, x_global = x.split([self.in_local, self.in_global], dim=1)
        groups = []
        if self.out_local > 0:
            groups.append(_run(self.local_to_local, x_local) + _run(self.global_to_local, x_global))
        if self.out_global > 0:
            groups.append(_run(self.local_to_global, x_local) + _run(self.global_to_global, x_global))
        return groups


def _run(path: nn.Module | None, x: Tensor) -> Tensor | int:
    """A path's output, or 0 for a path that does not exist (no channels on one side)."""
    return 0 if path is None else path(x)


class FFCBNAct(nn.Module):
    """FFC → a BatchNorm for the local and one for the global output channels (LaMa's ``bn_l``, ``bn_g``) → ReLU.

    A group without channels gets no BatchNorm (``None``). ``padding_mode`` is "reflect" as in every LaMa FFC.
    """

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0, dilation: int = 1, padding_mode: str = "reflect") -> None:
        super().__init__()
        self.ffc = FFC(channels_in, channels_out, kernel_size, ratio_gin, ratio_gout, stride=stride, padding=padding,
                       dilation=dilation, padding_mode=padding_mode)
        self.bn_local = nn.BatchNorm2d(self.ffc.out_local) if self.ffc.out_local else None
        self.bn_global = nn.BatchNorm2d(self.ffc.out_global) if self.ffc.out_global else None

    def forward(self, x: Tensor) -> Tensor:
        norms = [bn for bn in (self.bn_local, self.bn_global) if bn is not None]
        groups = [bn(y) for bn, y in zip(norms, self.ffc.groups(x))]  # one concatenation per layer, after the norms
        return torch.relu_(groups[0] if len(groups) == 1 else torch.cat(groups, dim=1))  # in place: a new tensor


class FFCResnetBlock(nn.Module):
    """x + FFC-BN-ReLU(FFC-BN-ReLU(x)) with two 3×3 FFCs (reflect padding), ``ratio`` global share in and out."""

    def __init__(self, channels: int, ratio: float = 0.75, dilation: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.body = nn.Sequential(
            FFCBNAct(channels, channels, 3, ratio, ratio, padding=dilation, dilation=dilation),
            FFCBNAct(channels, channels, 3, ratio, ratio, padding=dilation, dilation=dilation),
        )

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(x, self.channels, "x")
        return x + self.body(x)
