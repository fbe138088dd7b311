"""The lesson-11 figures: method comparison grid and per-bucket score plot."""

import pytest
import torch

from pconv_lessons import metrics, viz
from pconv_lessons.baselines import fill_with_mean


def test_compare_methods_titles_each_composite_with_its_psnr():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    masks = torch.ones(2, 1, 16, 16)
    masks[..., 4:10, 4:12] = 0
    predictions = {"mean": fill_with_mean(images * masks, masks), "grey": torch.full_like(images, 0.5)}
    figure = viz.compare_methods(images, masks, predictions, row_titles=["a", "b"])
    axes = figure.axes
    assert len(axes) == 2 * 4
    expected = metrics.psnr(masks * images + (1 - masks) * 0.5, images)
    assert axes[2].get_title() == f"grey\nPSNR {expected[0]:.1f} dB"
    assert axes[4].get_ylabel() == "b" and axes[3].get_title() == "original" and axes[7].get_title() == ""
    with pytest.raises(ValueError, match="row titles"):
        viz.compare_methods(images, masks, predictions, row_titles=["a"])


def test_plot_bucket_scores_draws_one_line_per_method_per_metric():
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    masks = {}
    for rows, bucket in ((2, (0.1, 0.2)), (4, (0.2, 0.3))):  # hole ratios 2/16 and 4/16
        masks[bucket] = torch.ones(2, 1, 16, 16)
        masks[bucket][..., :rows, :] = 0
    methods = {"mean": fill_with_mean, "grey": lambda i, m: torch.full_like(i, 0.5)}
    evaluation = metrics.evaluate_by_bucket(methods, images, masks)
    figure = viz.plot_bucket_scores(evaluation)
    assert [axis.get_title() for axis in figure.axes] == ["L1 (%)", "PSNR (dB)", "SSIM"]
    line = [line for line in figure.axes[1].get_lines() if line.get_marker() == "o"][1]
    assert list(line.get_ydata()) == pytest.approx(evaluation.per_image("PSNR (dB)", "grey").mean(dim=1).tolist())
    assert len(figure.axes[1].containers) == 2  # one error-bar container (bootstrap intervals) per method
