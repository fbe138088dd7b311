"""Percentile bootstrap confidence intervals for a mean (Efron & Tibshirani, 1993).

For values v_1 … v_n (one per test image), draw B resamples of n values with replacement, compute each one's
mean m*_b, and report the sample mean with the (1 − c)/2 and (1 + c)/2 quantiles of the m*_b as the interval
at confidence c. For a paired comparison of two methods on the same images, bootstrap the per-image
differences: an interval that excludes 0 says the ordering holds beyond the spread of these test images.

Infinite values are kept: an exact fill has PSNR = +inf, so a mean can be +inf, and a quantile that falls between
two equal infinities is that infinity (plain linear interpolation would give inf − inf = NaN).
"""

from __future__ import annotations

import torch
from torch import Tensor


def resampled_means(values: Tensor, resamples: int, generator: torch.Generator) -> Tensor:
    """Means m*_b of ``resamples`` bootstrap resamples along the last dimension of ``values``: shape (..., resamples).

    One draw of indices serves every leading entry, so methods scored on the same images are resampled alike.
    """
    count = values.shape[-1]
    draws = torch.randint(0, count, (resamples, count), generator=generator)
    return values[..., draws].mean(dim=-1)


def percentile_bounds(means: Tensor, levels: Tensor, dim: int = -1) -> Tensor:
    """Quantiles ``levels`` of ``means`` along ``dim`` (linear interpolation), exact where they meet infinities."""
    bounds = torch.quantile(means, levels, dim=dim)
    undefined = torch.isnan(bounds) & ~torch.isnan(means).any(dim=dim)  # interpolated between two equal infinities
    if undefined.any():
        bounds = torch.where(undefined, torch.quantile(means, levels, dim=dim, interpolation="nearest"), bounds)
    return bounds


def bootstrap_interval(values: Tensor, confidence: float = 0.95, resamples: int = 10_000,
                       seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of the percentile bootstrap interval of the mean of a 1-D tensor of per-image values."""
    if not isinstance(values, Tensor) or values.dim() != 1 or values.numel() < 2:
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(f"values must be a 1-D tensor with at least 2 entries, got {shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    values = values.detach().double().cpu()
    means = resampled_means(values, resamples, torch.Generator().manual_seed(seed))
    tail = (1.0 - confidence) / 2
    low, high = percentile_bounds(means, torch.tensor([tail, 1.0 - tail], dtype=torch.float64)).tolist()
    return float(values.mean()), low, high
