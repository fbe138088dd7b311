"""Bootstrap intervals: degenerate for a constant sample, close to the normal-theory interval for a large one."""

import math

import pytest
import torch

from pconv_lessons.bootstrap import bootstrap_interval


def test_constant_values_give_a_zero_width_interval():
    assert bootstrap_interval(torch.full((10,), 0.25)) == pytest.approx((0.25, 0.25, 0.25))


def test_large_normal_sample_matches_mean_plus_minus_1_96_standard_errors():
    values = torch.randn(2000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 + 1
    mean, low, high = bootstrap_interval(values, resamples=4000)
    half_width = 1.96 * float(values.std()) / math.sqrt(values.numel())
    assert mean == pytest.approx(float(values.mean()))
    assert low == pytest.approx(mean - half_width, abs=0.15 * half_width)
    assert high == pytest.approx(mean + half_width, abs=0.15 * half_width)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_interval(torch.ones(2, 2))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval(torch.ones(3), confidence=95)
