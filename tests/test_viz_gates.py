"""Plot helpers of lesson 08: gate maps per layer and curves of functions."""

import numpy as np
import pytest
import torch

from pconv_lessons.viz import plot_functions, show_gate_maps


def test_gate_maps_show_the_channel_mean_of_each_layer():
    gates = {"coarse.0": torch.rand(2, 4, 8, 10), "coarse.1": torch.rand(2, 6, 4, 5), "refine.0": torch.rand(2, 3, 8, 10)}
    figure = show_gate_maps(gates, index=1, ncols=2)
    panels = [axis for axis in figure.axes if axis.images and axis.get_title()]
    assert [axis.get_title() for axis in panels] == ["coarse.0 (8×10)", "coarse.1 (4×5)", "refine.0 (8×10)"]
    for axis, gate in zip(panels, gates.values()):
        np.testing.assert_allclose(axis.images[0].get_array(), gate[1].mean(dim=0).numpy(), rtol=1e-6)
        assert axis.images[0].get_clim() == (0.0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        show_gate_maps({})


def test_plot_functions_draws_one_line_per_curve():
    x = np.linspace(-2, 2, 9)
    figure = plot_functions(x, {"square": x**2, "identity": torch.tensor(x)}, "s", "f(s)")
    lines = [line for line in figure.axes[0].get_lines() if line.get_label() in ("square", "identity")]
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), x**2)
    with pytest.raises(ValueError, match="shape"):
        plot_functions(x, {"bad": x[:3]}, "s", "f(s)")
