"""Plotting helper for the mask lesson: hole-ratio histograms."""

import numpy as np
import pytest
import torch

from pconv_lessons.viz import show_hole_ratio_histograms


def test_hole_ratio_histograms_one_panel_per_family_with_buckets_shaded():
    ratios = {"a": torch.tensor([0.05, 0.15, 0.15]), "b": np.array([0.5, 0.55])}
    figure = show_hole_ratio_histograms(ratios, buckets=[(0.0, 0.1), (0.1, 0.2)], ncols=2)
    first, second = figure.axes
    assert first.get_title().startswith("a\nmean 0.12") and second.get_title().startswith("b\nmean 0.53")
    heights = [patch.get_height() for patch in first.patches if patch.get_height() > 0 and patch.get_width() < 0.1]
    assert sorted(round(h, 3) for h in heights) == [33.333, 66.667]  # per cent of the three masks
    shaded = [patch for patch in first.patches if abs(patch.get_width() - 0.1) < 1e-9]
    assert len(shaded) == 2


def test_hole_ratio_histograms_need_data():
    with pytest.raises(ValueError):
        show_hole_ratio_histograms({})
