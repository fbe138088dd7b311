"""Receptive fields: the recurrence on hand-worked stacks, and the gradient ERF against what the layers allow."""

import pytest
import torch
from torch import nn

from pconv_lessons.course.receptive import (
    ConvSpec,
    conv_specs,
    effective_receptive_field,
    fraction_within,
    model_receptive_field,
    plot_erfs,
    receptive_field,
    receptive_field_table,
)


def test_hand_worked_stack():
    # 3×3 s1 -> 3×3 s2 -> 3×3 s1 d2 -> 5×5 s1:
    # r = 1 + 2·1 = 3, j = 1;  r = 3 + 2·1 = 5, j = 2;  r = 5 + 2·2·2 = 13, j = 2;  r = 13 + 4·2 = 21
    layers = [(3, 1, 1), (3, 2, 1), ConvSpec(3, 1, 2), (5, 1, 1)]
    assert receptive_field_table(layers) == [(3, 1), (5, 2), (13, 2), (21, 2)]
    assert receptive_field(layers) == 21
    assert receptive_field([]) == 1


def test_pconv_encoder_stack():
    # the PConv U-Net encoder kernels 7, 5, 5, 3, 3, 3, 3, all stride 2: 1+6=7, +4·2=15, +4·4=31, +2·8=47, +2·16=79,
    # +2·32=143, +2·64=271
    layers = [(k, 2, 1) for k in (7, 5, 5, 3, 3, 3, 3)]
    assert receptive_field(layers) == 271


def test_walks_the_conv_layers_of_a_module():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2),
        nn.Sequential(nn.Conv2d(4, 1, (3, 5), dilation=2)),
    )
    assert conv_specs(model) == [ConvSpec(3, 1, 1), ConvSpec(3, 2, 1), ConvSpec(3, 1, 2)]
    assert model_receptive_field(model, axis=0) == 1 + 2 + 2 + 2 * 2 * 2
    assert model_receptive_field(model, axis=1) == 1 + 2 + 2 + 2 * 4 * 2


def test_bad_spec_is_rejected():
    with pytest.raises(ValueError, match="kernel"):
        ConvSpec(0)
    with pytest.raises(ValueError, match="axis"):
        conv_specs(nn.Conv2d(1, 1, 3), axis=2)


def test_erf_support_equals_theoretical_field_for_a_linear_stack():
    # Without nonlinearities and with positive weights nothing cancels, so the ERF is non-zero exactly on the
    # theoretical receptive field (a 1 + 2 + 4 + 8 = 15-pixel square for 3×3 convs with dilations 1, 2, 4).
    layers = [nn.Conv2d(1, 1, 3, padding=d, dilation=d, bias=False) for d in (1, 2, 4)]
    for layer in layers:
        nn.init.uniform_(layer.weight, 0.1, 1.0)
    model = nn.Sequential(*layers)
    erf = effective_receptive_field(model, (1, 31, 31), n_samples=2)
    support = (erf > 0).nonzero()
    assert erf.shape == (31, 31)
    rows, cols = support[:, 0], support[:, 1]
    field = model_receptive_field(model)
    assert field == 15
    assert (rows.max() - rows.min() + 1).item() == field
    assert (cols.max() - cols.min() + 1).item() == field


def test_erf_of_a_single_conv_is_its_kernel_magnitude():
    conv = nn.Conv2d(2, 1, 3, padding=1, bias=False)
    erf = effective_receptive_field(conv, (2, 9, 9), n_samples=3)
    expected = torch.zeros(9, 9)
    expected[3:6, 3:6] = conv.weight.detach().abs().sum(dim=(0, 1))
    assert torch.allclose(erf, expected, atol=1e-6)


def test_erf_restores_training_mode_and_accepts_callables():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2))
    model.train()
    effective_receptive_field(model, (1, 8, 8), n_samples=2)
    assert model.training
    erf = effective_receptive_field(lambda x: (model(x), None), (1, 8, 8), n_samples=2)
    assert erf.shape == (8, 8)


def test_erf_rejects_bad_arguments():
    conv = nn.Conv2d(1, 1, 3)
    with pytest.raises(ValueError, match="input_shape"):
        effective_receptive_field(conv, (8, 8))
    with pytest.raises(ValueError, match="positive"):
        effective_receptive_field(conv, (1, 8, 8), n_samples=0)
    with pytest.raises(ValueError, match="tensor"):
        effective_receptive_field(lambda x: "not a tensor", (1, 8, 8))


def test_fraction_within_and_plot():
    erf = torch.zeros(9, 9)
    erf[4, 4] = 3.0
    erf[0, 0] = 1.0
    assert fraction_within(erf, 1) == pytest.approx(0.75)
    assert fraction_within(erf, 4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="zero everywhere"):
        fraction_within(torch.zeros(5, 5), 1)
    figure = plot_erfs([erf, erf], ["a", "b"])
    assert len(figure.axes) == 3  # two maps and a colour bar
    shown = figure.axes[0].images[0].get_array()
    # log10 of the normalised map, zeros at the floor (in float32 the floor reads -6.0000005)
    assert shown.max() == 0.0 and shown.min() == pytest.approx(-6.0)
    linear = plot_erfs([erf], ["a"], log=False).axes[0].images[0].get_array()
    assert linear.max() == 1.0 and linear[0, 0] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="titles"):
        plot_erfs([erf], ["a", "b"])
