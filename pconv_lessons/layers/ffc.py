"""Fast Fourier Convolution (Chi et al., 2020) as used by LaMa (Suvorov et al., 2022).

Fourier unit. For a feature map x (N, C, H, W), with F the 2-D real FFT over (H, W) normalised by 1/√(HW)
("ortho", so F is unitary):

    X = F(x)                                  (N, C, H, W//2+1), complex
    Z = [Re X ; Im X]                         (N, 2C, H, W//2+1): real parts in channels 0..C−1, imaginary in C..2C−1
    Z' = ReLU(BN(W₁ₓ₁ Z))                     a 1×1 conv (2C → 2C_out, no bias) mixing channels per frequency
    y = F⁻¹(Z'[:C_out] + i·Z'[C_out:])        (N, C_out, H, W)

Every frequency depends on every pixel, so one 1×1 conv in the frequency domain gives each output pixel a
receptive field covering the whole image. The FFTs run in float32 (float64 stays float64), also inside bf16/fp16 autocast:
cuFFT has no bf16 and does half precision only for power-of-two sizes, and float32 works for any H×W.

Spectral transform (the global→global path):

    s = ReLU(BN(conv1ₓ₁(x)))                  C_in → C_out/2 (after a 2×2 average pool when stride = 2)
    y = conv1ₓ₁(s + FourierUnit(s))           C_out/2 → C_out

FFC. The channels are split into a local part (the first (1 − ratio) share) and a global part (the rest):

    y_local  = conv_l→l(x_local) + conv_g→l(x_global)
    y_global = conv_l→g(x_local) + SpectralTransform(x_global)

Tensors travel concatenated along channels, local first, so ``FFC(x)`` takes and returns ordinary (N, C, H, W)
tensors. With ratio_gin = ratio_gout = 0 an FFC is exactly its local→local convolution.

FFC ResNet block: x + FFC_BN_ReLU(FFC_BN_ReLU(x)) with two 3×3 FFCs (reflect padding) of equal width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pconv_lessons.checks import check_batch


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
    """rfft2 (ortho) → real/imag stacked as channels → 1×1 conv → BN → ReLU → irfft2, FFTs in float32 (float64 stays float64)."""

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
        stacked = torch.cat([spectrum.real, spectrum.imag], dim=1).to(x.dtype)
        mixed = torch.relu(self.bn(self.conv(stacked)))
        real, imag = mixed.to(fft_dtype).chunk(2, dim=1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = torch.fft.irfftn(torch.complex(real, imag), s=(height, width), dim=(-2, -1), norm="ortho")
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
        _check_channels(x, self.in_channels, "x")
        if self.stride == 2 and self.global_to_global is not None and (x.shape[-2] % 2 or x.shape[-1] % 2):
            raise ValueError(f"a stride-2 FFC with a global path needs even H and W, got {tuple(x.shape[-2:])}")
        x_local, x_global = x.split([self.in_local, self.in_global], dim=1)
        groups = []
        if self.out_local > 0:
            groups.append(_run(self.local_to_local, x_local) + _run(self.global_to_local, x_global))
        if self.out_global > 0:
            groups.append(_run(self.local_to_global, x_local) + _run(self.global_to_global, x_global))
        return groups[0] if len(groups) == 1 else torch.cat(groups, dim=1)


def _run(path: nn.Module | None, x: Tensor) -> Tensor | int:
    """A path's output, or 0 for a path that does not exist (no channels on one side)."""
    return 0 if path is None else path(x)


class FFCBNAct(nn.Sequential):
    """FFC → BatchNorm → ReLU (BN over the concatenated channels equals separate local and global BNs)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 padding: int = 0, dilation: int = 1, padding_mode: str = "reflect") -> None:
        super().__init__(
            FFC(channels_in, channels_out, kernel_size, ratio_gin, ratio_gout, padding=padding, dilation=dilation,
                padding_mode=padding_mode),
            nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
        )


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
