"""plot_loss_curves: log axes only where a term spans more than a decade, so every axis has readable ticks."""

import matplotlib

matplotlib.use("Agg")

from pconv_lessons.viz import plot_loss_curves  # noqa: E402


def test_log_scale_only_for_terms_spanning_more_than_a_decade():
    history = [{"step": s, "falling": 1.0 / (1 + s), "hinge": 2.0 - 0.001 * s, "signed": -0.5 + 0.01 * s}
               for s in range(100)]
    figure = plot_loss_curves(history)
    scales = {axis.get_title(): axis.get_yscale() for axis in figure.axes if axis.get_title()}
    assert scales == {"falling": "log", "hinge": "linear", "signed": "linear"}
