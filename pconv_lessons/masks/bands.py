"""Measured hole-ratio band of every family: where the mean of a batch of ≥ 150 masks lies.

(kind, side) -> (low, high): the mean over 2,000 masks at 256² / 600 at 512² (NumPy path, seeds 1000…1003)
± 0.04 (1.9 standard errors of a 150-mask mean for the widest family, lama_thick at 512²; more for the others).
Measured (mean, std, 5th–95th percentile):

- 256²: shapes 0.271, 0.094, 0.11–0.42; free_form 0.150, 0.080, 0.04–0.29; lama_thin 0.296, 0.133, 0.07–0.49;
  lama_medium 0.240, 0.135, 0.02–0.44; lama_thick 0.400, 0.222, 0.07–0.78; box 0.244, 0.117, 0.06–0.44; mixed 0.352,
  0.202, 0.07–0.74
- 512²: shapes 0.254, 0.088, 0.11–0.40; free_form 0.157, 0.081, 0.04–0.30; lama_thin 0.298, 0.134, 0.07–0.49;
  lama_medium 0.302, 0.158, 0.04–0.55; lama_thick 0.458, 0.258, 0.05–0.87; box 0.248, 0.115, 0.07–0.44; mixed 0.355,
  0.212, 0.06–0.76

LaMa's evaluation data sets also drop masks with more than 50 % hole (``max_tamper_area``); these generators keep
them — use ``generate_in_bucket`` to control the hole ratio.
"""

from __future__ import annotations

HOLE_RATIO_BANDS: dict[tuple[str, int], tuple[float, float]] = {
    ("shapes", 256): (0.231, 0.311),
    ("free_form", 256): (0.110, 0.190),
    ("lama_thin", 256): (0.256, 0.336),
    ("lama_medium", 256): (0.200, 0.280),
    ("lama_thick", 256): (0.360, 0.440),
    ("box", 256): (0.204, 0.284),
    ("mixed", 256): (0.312, 0.392),
    ("shapes", 512): (0.214, 0.294),
    ("free_form", 512): (0.117, 0.197),
    ("lama_thin", 512): (0.258, 0.338),
    ("lama_medium", 512): (0.262, 0.342),
    ("lama_thick", 512): (0.418, 0.498),
    ("box", 512): (0.208, 0.288),
    ("mixed", 512): (0.315, 0.395),
}
