"""Checks for the Fourier-convolution code a student writes in lesson 09, against references independent of it.

The Fourier unit is checked against ``fourier_unit_by_formula``, which evaluates the discrete Fourier transform
by its defining sums as matrix products (no FFT anywhere). With x (H, W), k < H, l ≤ W//2:

    X[k, l] = 1/√(HW) · Σ_h Σ_w x[h, w] · exp(−2πi (k h / H + l w / W))                   (orthonormal rfft2)
    Y[h, l] = 1/√H · Σ_k X[k, l] · exp(+2πi k h / H)                                       (inverse along H)
    x[h, w] = 1/√W · Σ_l c_l · Re(Y[h, l] · exp(+2πi l w / W)),  c_0 = 1, c_W/2 = 1 (W even), else c_l = 2

(the inverse rfft: the imaginary parts at l = 0 and l = W/2 are dropped, as every c2r FFT does). The spectral
transform and the FFC are checked against the package's layers with random weights and BatchNorm statistics:
the student's function reads the layer's parameters and computes the result in its own code, so the two
computations share the weights and nothing else. Every check runs in float64 on shapes that are not powers of
two (odd widths too), where a missing ``s=`` in ``irfftn`` or a wrong normalisation shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from pconv_lessons.layers.ffc import FFC, FourierUnit, SpectralTransform

TOLERANCE = 1e-8
SHAPES = ((2, 3, 6, 7), (1, 3, 5, 8))


def dft_matrix(size: int, inverse: bool = False) -> Tensor:
    """The orthonormal DFT matrix exp(∓2πi k n / size) / √size, shaped (size, size), complex128."""
    k = torch.arange(size, dtype=torch.float64)
    sign = 1.0 if inverse else -1.0
    angle = sign * 2 * math.pi * torch.outer(k, k) / size
    return torch.polar(torch.ones_like(angle), angle) / math.sqrt(size)


def rfft2_by_formula(x: Tensor) -> Tensor:
    """The orthonormal half spectrum X[k, l], l ≤ W//2, of the last two axes by the DFT sums (module docstring)."""
    height, width = x.shape[-2:]
    rows, cols = dft_matrix(height), dft_matrix(width)[:, : width // 2 + 1]
    return rows @ x.to(torch.complex128) @ cols


def irfft2_by_formula(spectrum: Tensor, width: int) -> Tensor:
    """The real image (…, H, ``width``) of a half spectrum, by the inverse DFT sums (module docstring)."""
    height = spectrum.shape[-2]
    along_rows = dft_matrix(height, inverse=True) @ spectrum
    weights = torch.full((width // 2 + 1,), 2.0, dtype=torch.float64)
    weights[0] = 1.0
    if width % 2 == 0:
        weights[-1] = 1.0
    waves = dft_matrix(width, inverse=True)[: width // 2 + 1, :]  # (l, w)
    return torch.einsum("...hl,lw->...hw", along_rows * weights, waves).real


def batch_norm_eval(x: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    """(x − running mean) / √(running var + eps) · γ + β, per channel."""
    shape = (1, -1, 1, 1)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean.view(shape)) * scale.view(shape) + bn.bias.view(shape)


def fourier_unit_by_formula(x: Tensor, weight: Tensor, bn: nn.BatchNorm2d) -> Tensor:
    """LaMa's Fourier unit (``pconv_lessons.layers.ffc``) with the DFT by its sums and BN by its formula.

    ``weight`` (2C_out, 2C, 1, 1) mixes the channels Re 0, Im 0, Re 1, Im 1, …; ``bn`` is used in eval mode.
    """
    spectrum = rfft2_by_formula(x)
    stacked = torch.stack([spectrum.real, spectrum.imag], dim=2).flatten(1, 2)
    mixed = torch.relu(batch_norm_eval(torch.einsum("oc,nchw->nohw", weight[:, :, 0, 0], stacked), bn))
    return irfft2_by_formula(torch.complex(mixed[:, 0::2], mixed[:, 1::2]), x.shape[-1])


def randomise(module: nn.Module, seed: int) -> nn.Module:
    """``module`` in float64 and eval mode with random weights and random BatchNorm statistics and affines."""
    generator = torch.Generator().manual_seed(seed)
    module = module.double().eval()
    with torch.no_grad():
        for child in module.modules():
            if isinstance(child, nn.BatchNorm2d):
                child.running_mean.normal_(0.0, 0.5, generator=generator)
                child.running_var.uniform_(0.5, 2.0, generator=generator)
                child.weight.uniform_(0.5, 1.5, generator=generator)
                child.bias.normal_(0.0, 0.5, generator=generator)
            elif isinstance(child, (nn.Conv2d, nn.ConvTranspose2d)):
                child.weight.normal_(0.0, 0.5, generator=generator)
    return module


def _compare(name: str, mine: Tensor, expected: Tensor) -> None:
    if not isinstance(mine, Tensor) or mine.shape != expected.shape:
        got = tuple(mine.shape) if isinstance(mine, Tensor) else type(mine).__name__
        raise AssertionError(f"{name}: expected a tensor shaped {tuple(expected.shape)}, got {got}")
    error = float((mine.detach().double() - expected).abs().max())
    if not error <= TOLERANCE:
        raise AssertionError(f"{name} differs from the reference by up to {error:.3g} (allowed {TOLERANCE:g})")


def _inputs(seed: int) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator, dtype=torch.float64) for shape in SHAPES]


def check_fourier_unit(my_fourier_unit: Callable[[Tensor, Tensor, nn.BatchNorm2d], Tensor]) -> None:
    """``my_fourier_unit(x, weight, bn)`` must equal ``fourier_unit_by_formula`` (DFT sums, no FFT).

    Raises AssertionError saying by how much it differs.
    """
    for index, x in enumerate(_inputs(seed=1)):
        unit = randomise(FourierUnit(x.shape[1], 2), seed=index)
        with torch.no_grad():
            expected = fourier_unit_by_formula(x, unit.conv.weight, unit.bn)
            mine = my_fourier_unit(x, unit.conv.weight, unit.bn)
        _compare(f"your Fourier unit on a {tuple(x.shape[-2:])} input", mine, expected)


def check_spectral_transform(my_spectral_transform: Callable[[Tensor, SpectralTransform], Tensor]) -> None:
    """``my_spectral_transform(x, layer)``, computed from ``layer``'s weights, must equal ``layer(x)`` (eval mode,
    random weights and BN statistics), for stride 1 and stride 2."""
    for stride in (1, 2):
        for index, x in enumerate(_inputs(seed=2)):
            if stride == 2:
                x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
            layer = randomise(SpectralTransform(x.shape[1], 6, stride=stride), seed=10 * stride + index)
            with torch.no_grad():
                _compare(f"your spectral transform (stride {stride}) on a {tuple(x.shape[-2:])} input",
                         my_spectral_transform(x, layer), layer(x))


def check_ffc(my_ffc: Callable[[Tensor, FFC], Tensor]) -> None:
    """``my_ffc(x, layer)``, computed from ``layer``'s weights, must equal ``layer(x)`` for 3×3 FFCs with several
    local/global splits (input and output concatenated along channels, local first)."""
    splits = ((0.5, 0.75), (0.75, 0.75), (0.25, 0.5))
    for index, (ratio_in, ratio_out) in enumerate(splits):
        generator = torch.Generator().manual_seed(index)
        x = torch.randn(2, 8, 7, 9, generator=generator, dtype=torch.float64)
        layer = randomise(FFC(8, 8, 3, ratio_in, ratio_out, padding=1, padding_mode="reflect"), seed=20 + index)
        with torch.no_grad():
            _compare(f"your FFC (ratio_gin {ratio_in}, ratio_gout {ratio_out})", my_ffc(x, layer), layer(x))
