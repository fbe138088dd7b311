"""show_heatmaps keeps each map's own range (nothing clipped to [0, 1]) unless asked to share one."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from pconv_lessons.viz import show_heatmaps


def test_each_panel_keeps_its_own_range_with_a_colour_bar():
    maps = [torch.linspace(-3, 5, 12).view(3, 4), np.full((2, 2), 0.25) + np.eye(2)]
    figure = show_heatmaps(maps, ["a", "b"])
    images = [axis.images[0] for axis in figure.axes if axis.images]
    assert [image.get_clim() for image in images] == [(-3.0, 5.0), (0.25, 1.25)]
    assert len(figure.axes) == 4  # two panels, two colour bars
    plt.close(figure)


def test_shared_scale_uses_the_range_of_all_maps():
    figure = show_heatmaps([torch.zeros(1, 1, 3, 3), torch.full((3, 3), 7.0)], shared_scale=True)
    assert {axis.images[0].get_clim() for axis in figure.axes if axis.images} == {(0.0, 7.0)}
    plt.close(figure)


@pytest.mark.parametrize("maps, titles, message", [([], None, "at least one"), ([torch.zeros(2, 3, 3)], None, "2-D"),
                                                   ([torch.zeros(3, 3)], ["a", "b"], "titles")])
def test_bad_arguments_are_rejected(maps, titles, message):
    with pytest.raises(ValueError, match=message):
        show_heatmaps(maps, titles)
