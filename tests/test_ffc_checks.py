"""The lesson-09 check helpers: the DFT by its sums equals NumPy's FFT, correct student code passes, and a planted
wrong implementation of each step fails."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pconv_lessons.course.ffc_checks import (
    batch_norm_eval,
    check_ffc,
    check_fourier_unit,
    check_spectral_transform,
    fourier_unit_by_formula,
    irfft2_by_formula,
    randomise,
    rfft2_by_formula,
)
from pconv_lessons.layers import FourierUnit


def fourier_unit(x, weight, bn, order="interleaved", norm="ortho", give_size=True):
    spectrum = torch.fft.rfftn(x, dim=(-2, -1), norm=norm)
    if order == "interleaved":
        stacked = torch.stack([spectrum.real, spectrum.imag], dim=2).flatten(1, 2)
    else:  # all real parts, then all imaginary parts
        stacked = torch.cat([spectrum.real, spectrum.imag], dim=1)
    mixed = torch.relu(F.batch_norm(F.conv2d(stacked, weight), bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                    training=False, eps=bn.eps))
    size = x.shape[-2:] if give_size else None
    return torch.fft.irfftn(torch.complex(mixed[:, 0::2], mixed[:, 1::2]), s=size, dim=(-2, -1), norm=norm)


def spectral_transform(x, layer, residual=True, unit=fourier_unit):
    x = F.avg_pool2d(x, 2) if layer.downsample.__class__.__name__ == "AvgPool2d" else x
    reduce_conv, reduce_bn = layer.reduce[0], layer.reduce[1]
    s = torch.relu(batch_norm_eval(F.conv2d(x, reduce_conv.weight), reduce_bn))
    inner = unit(s, layer.fourier.conv.weight, layer.fourier.bn)
    return F.conv2d(s + inner if residual else inner, layer.expand.weight)


def ffc(x, layer, local_first=True):
    x_local, x_global = x.split([layer.in_local, layer.in_global], dim=1)
    if not local_first:
        x_global, x_local = x.split([layer.in_global, layer.in_local], dim=1)

    def conv(path, inp):
        return F.conv2d(F.pad(inp, [1] * 4, mode="reflect"), path.weight)

    y_local = conv(layer.local_to_local, x_local) + conv(layer.global_to_local, x_global)
    y_global = conv(layer.local_to_global, x_local) + spectral_transform(x_global, layer.global_to_global)
    return torch.cat([y_local, y_global], dim=1)


def test_dft_by_its_sums_equals_numpy_fft_forward_and_back():
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    spectrum = rfft2_by_formula(x)
    assert np.allclose(spectrum.numpy(), np.fft.rfft2(x.numpy(), norm="ortho"), atol=1e-12)
    for width in (7, 8):
        half = torch.randn(2, 3, 5, width // 2 + 1, dtype=torch.complex128)  # not Hermitian: c2r drops some parts
        expected = np.fft.irfft2(half.numpy(), s=(5, width), norm="ortho")
        assert np.allclose(irfft2_by_formula(half, width).numpy(), expected, atol=1e-12)


def test_fourier_unit_by_formula_equals_the_package_unit():
    unit = randomise(FourierUnit(3, 2), seed=0)
    x = torch.randn(2, 3, 6, 9, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(fourier_unit_by_formula(x, unit.conv.weight, unit.bn), unit(x), atol=1e-10)


def test_correct_student_code_passes_every_check():
    check_fourier_unit(fourier_unit)
    check_spectral_transform(spectral_transform)
    check_ffc(ffc)


@pytest.mark.parametrize("wrong", [
    lambda x, w, bn: fourier_unit(x, w, bn, order="concatenated"),
    lambda x, w, bn: fourier_unit(x, w, bn, norm="backward"),
    lambda x, w, bn: fourier_unit(x, w, bn, give_size=False),
], ids=["real-parts-first", "unnormalised-fft", "irfft-without-size"])
def test_check_fourier_unit_fails_on_planted_mistakes(wrong):
    with pytest.raises(AssertionError, match="Fourier unit"):
        check_fourier_unit(wrong)


@pytest.mark.parametrize("wrong", [
    lambda x, layer: spectral_transform(x, layer, residual=False),
    lambda x, layer: spectral_transform(x, layer, unit=lambda s, w, bn: fourier_unit(s, w, bn, order="concatenated")),
], ids=["no-residual", "real-parts-first-inside"])
def test_check_spectral_transform_fails_on_planted_mistakes(wrong):
    with pytest.raises(AssertionError, match="spectral transform"):
        check_spectral_transform(wrong)


def test_check_spectral_transform_fails_without_the_stride_2_pooling():
    def never_pools(x, layer):
        reduced = torch.relu(batch_norm_eval(F.conv2d(x, layer.reduce[0].weight), layer.reduce[1]))
        return F.conv2d(reduced + fourier_unit(reduced, layer.fourier.conv.weight, layer.fourier.bn), layer.expand.weight)

    with pytest.raises(AssertionError, match="stride 2"):
        check_spectral_transform(never_pools)


def test_check_ffc_fails_when_the_split_puts_global_channels_first():
    with pytest.raises(AssertionError, match="FFC"):
        check_ffc(lambda x, layer: ffc(x, layer, local_first=False))


def test_check_ffc_fails_with_zero_padding_instead_of_reflect():
    def zero_padded(x, layer):
        x_local, x_global = x.split([layer.in_local, layer.in_global], dim=1)
        y_local = F.conv2d(x_local, layer.local_to_local.weight, padding=1) + \
            F.conv2d(x_global, layer.global_to_local.weight, padding=1)
        y_global = F.conv2d(x_local, layer.local_to_global.weight, padding=1) + \
            spectral_transform(x_global, layer.global_to_global)
        return torch.cat([y_local, y_global], dim=1)

    with pytest.raises(AssertionError, match="FFC"):
        check_ffc(zero_padded)
