"""Fourier units and FFCs: a hand-worked constant input, NumPy's FFT, the plain-conv limit, global reach, autocast."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.layers import FFC, FFCResnetBlock, FourierUnit, SpectralTransform
from pconv_lessons.layers.ffc import FFCBNAct
from pconv_lessons.course.receptive import effective_receptive_field


def test_fourier_unit_on_a_constant_input_keeps_only_the_dc_component():
    # x = 2 everywhere on 4×6. The orthonormal rfft2 puts all of it at frequency (0, 0): X = 2·√24, real.
    # The 1×1 conv maps [Re, Im] = [2√24, 0] at DC to [0.5·2√24, −1·2√24] = [√24, −2√24] and 0 elsewhere;
    # BN (eval, fresh statistics) divides by √(1 + eps); ReLU keeps [√24, 0]. The inverse orthonormal FFT of a
    # lone DC value √24 is √24/√24 = 1 at every pixel, so the output is the constant 1/√(1 + eps).
    unit = FourierUnit(1, 1).eval()
    with torch.no_grad():
        unit.conv.weight.copy_(torch.tensor([[0.5, 3.0], [-1.0, 2.0]]).view(2, 2, 1, 1))
    out = unit(torch.full((1, 1, 4, 6), 2.0))
    expected = 1.0 / math.sqrt(1.0 + unit.bn.eps)
    assert out.shape == (1, 1, 4, 6)
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)
    with torch.no_grad():
        unit.conv.weight[0, 0] = -0.5  # the real part at DC turns negative and ReLU removes everything
    assert torch.allclose(unit(torch.full((1, 1, 4, 6), 2.0)), torch.zeros(1, 1, 4, 6), atol=1e-6)


def test_fourier_unit_matches_numpy_fft():
    torch.manual_seed(1)
    unit = FourierUnit(3, 2).eval()
    x = torch.randn(2, 3, 7, 10)
    weight = unit.conv.weight.detach().double().numpy()[:, :, 0, 0]  # (4, 6)
    spectrum = np.fft.rfft2(x.double().numpy(), norm="ortho")  # (2, 3, 7, 6)
    stacked = np.empty((2, 6, 7, 6))
    stacked[:, 0::2], stacked[:, 1::2] = spectrum.real, spectrum.imag  # LaMa's order: Re 0, Im 0, Re 1, Im 1, …
    mixed = np.maximum(np.einsum("oc,nchw->nohw", weight, stacked) / math.sqrt(1 + unit.bn.eps), 0.0)
    expected = np.fft.irfft2(mixed[:, 0::2] + 1j * mixed[:, 1::2], s=(7, 10), norm="ortho")
    assert np.allclose(unit(x).detach().double().numpy(), expected, atol=1e-5)


def test_ffc_with_ratio_zero_is_its_plain_conv():
    ffc = FFC(5, 7, 3, ratio_gin=0.0, ratio_gout=0.0, stride=2, padding=1, dilation=1)
    assert ffc.local_to_global is None and ffc.global_to_local is None and ffc.global_to_global is None
    x = torch.randn(2, 5, 13, 12)
    plain = F.conv2d(x, ffc.local_to_local.weight, None, stride=2, padding=1)
    assert torch.allclose(ffc(x), plain, atol=1e-6)


def test_ffc_paths_add_up():
    ffc = FFC(8, 8, 3, ratio_gin=0.5, ratio_gout=0.75, padding=1).eval()
    assert (ffc.in_local, ffc.in_global, ffc.out_local, ffc.out_global) == (4, 4, 2, 6)
    x = torch.randn(1, 8, 12, 12)
    x_local, x_global = x[:, :4], x[:, 4:]
    expected_local = ffc.local_to_local(x_local) + ffc.global_to_local(x_global)
    expected_global = ffc.local_to_global(x_local) + ffc.global_to_global(x_global)
    assert torch.allclose(ffc(x), torch.cat([expected_local, expected_global], 1), atol=1e-6)


@pytest.mark.parametrize("train", [False, True])
def test_separate_local_and_global_batch_norms_equal_one_over_all_channels(train):
    # LaMa keeps bn_l and bn_g apart (their keys must map); per-channel normalisation makes that the same as one
    # BatchNorm over the concatenated channels whose parameters and statistics are the two concatenated.
    torch.manual_seed(3)
    layer = FFCBNAct(8, 8, 3, 0.5, 0.75, padding=1)
    assert (layer.bn_local.num_features, layer.bn_global.num_features) == (2, 6)
    for bn in (layer.bn_local, layer.bn_global):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    joint = nn.BatchNorm2d(8)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(joint, name).data.copy_(torch.cat([getattr(layer.bn_local, name), getattr(layer.bn_global, name)]))
    layer.train(train), joint.train(train)
    x = torch.randn(2, 8, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), torch.relu(joint(layer.ffc(x))))
    assert layer.ffc.local_to_local.padding_mode == "reflect"  # LaMa pads every FFC conv by reflection


def test_spectral_transform_stride_two_halves_the_size():
    assert SpectralTransform(4, 6, stride=2)(torch.randn(1, 4, 10, 14)).shape == (1, 6, 5, 7)
    ffc = FFC(4, 4, 3, 0.5, 0.5, stride=2, padding=1)
    with pytest.raises(ValueError, match="even"):
        ffc(torch.randn(1, 4, 9, 10))


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="ratio_gin"):
        FFC(4, 4, 3, 1.5, 0.5)
    with pytest.raises(ValueError, match="channels"):
        FFCResnetBlock(8)(torch.randn(1, 6, 8, 8))
    with pytest.raises(ValueError, match="channels"):
        FourierUnit(2, 2)(torch.randn(1, 3, 8, 8))


def test_ffc_block_reaches_the_corners_and_a_plain_stack_does_not():
    # An FFC ResNet block has two 3×3 FFCs; the plain stack of the same depth is two 3×3 convs (field 5×5).
    torch.manual_seed(0)
    size = 24
    block = FFCResnetBlock(8, ratio=0.75)
    plain = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    erf_ffc = effective_receptive_field(block, (8, size, size), n_samples=4)
    erf_plain = effective_receptive_field(plain, (8, size, size), n_samples=4)
    corners = [(0, 0), (0, size - 1), (size - 1, 0), (size - 1, size - 1)]
    for row, col in corners:
        assert erf_ffc[row, col] > 0
        assert erf_plain[row, col] == 0
    assert (erf_plain > 0).sum() == 25
    assert (erf_ffc > 0).all()


@pytest.mark.parametrize("size", [(250, 250), (528, 422)])
def test_bf16_autocast_matches_float32(size):
    torch.manual_seed(0)
    block = FFCResnetBlock(8, ratio=0.75).eval()
    x = torch.randn(1, 8, *size)
    with torch.no_grad():
        reference = block(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = block(x)
    assert low.shape == reference.shape
    # the whole block, and its FFC path without the residual x (which would hide errors of the FFC path)
    for low_part, reference_part in ((low, reference), (low - x, reference - x)):
        relative = ((low_part.float() - reference_part).norm() / reference_part.norm()).item()
        assert 0 < relative < 1e-2  # > 0: autocast did run the convs in bf16


def test_ffts_run_in_float32_under_autocast(monkeypatch):
    seen = []
    for name in ("rfftn", "irfftn"):
        original = getattr(torch.fft, name)

        def recording(tensor, *args, _original=original, **kwargs):
            seen.append(tensor.dtype)
            return _original(tensor, *args, **kwargs)

        monkeypatch.setattr(torch.fft, name, recording)
    unit = FourierUnit(4, 4)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = unit(torch.randn(1, 4, 25, 17).bfloat16())
    assert out.dtype == torch.bfloat16
    assert seen == [torch.float32, torch.complex64]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_any_size(dtype):
    block = FFCResnetBlock(16).cuda().eval().to(memory_format=torch.channels_last)
    x = torch.randn(2, 16, 250, 211, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad():
        reference = block(x)
        with torch.autocast("cuda", dtype=dtype):
            low = block(x)
    assert ((low.float() - reference).norm() / reference.norm()).item() < 1e-2
