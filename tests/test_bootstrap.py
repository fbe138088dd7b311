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


def test_an_exact_fill_gives_an_infinite_mean_and_a_defined_interval():
    """PSNR is +inf where a fill is exact: the mean is +inf and the bounds are numbers or +inf, never NaN."""
    import math

    values = torch.tensor([30.0, 31.0, math.inf, 29.5, 32.0, 30.5])
    mean, low, high = bootstrap_interval(values)
    assert mean == math.inf
    assert not math.isnan(low) and not math.isnan(high)
    assert 29.5 <= low <= high == math.inf


def test_a_nan_value_stays_visible():
    import math

    _, low, high = bootstrap_interval(torch.tensor([1.0, math.nan, 2.0, 3.0]))
    assert math.isnan(low) or math.isnan(high)


def test_finite_bounds_are_the_plain_linear_quantiles():
    from pconv_lessons.bootstrap import percentile_bounds

    means = torch.randn(3, 1000, dtype=torch.float64)
    levels = torch.tensor([0.025, 0.975], dtype=torch.float64)
    assert torch.equal(percentile_bounds(means, levels), torch.quantile(means, levels, dim=-1))
