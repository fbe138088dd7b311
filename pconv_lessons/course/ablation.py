"""Ablations: several methods scored on the same held-out images, with bootstrap intervals and a verdict in words.

Each method m gets one score per test image i, the mean absolute error inside the hole,

    e_m,i = Σ_p |pred_i,p − image_i,p| · (1 − mask_i,p)  /  (3 · Σ_p (1 − mask_i,p))        (× 100 in the tables)

and a 95 % percentile-bootstrap interval of its mean over images (``pconv_lessons.bootstrap``). Two methods are
compared on the per-image *differences* e_a,i − e_b,i: paired, so that the spread between easy and hard images
(which both methods share) does not hide a consistent gap. The verdict says "lower" or "higher" only when the
interval of the difference excludes 0, and "not distinguishable" otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from torch import Tensor

from pconv_lessons.bootstrap import bootstrap_interval
from pconv_lessons.validation import check_image, check_mask


class Interval(NamedTuple):
    mean: float
    low: float
    high: float


def hole_l1_per_image(prediction: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """(N,) mean absolute error inside each image's hole; ``mask`` (N, 1, H, W), 1 = known. Every mask needs a hole."""
    check_image(image, "image", values=False)
    check_mask(mask, image)
    if prediction.shape != image.shape:
        raise ValueError(f"prediction must have the image's shape {tuple(image.shape)}, got {tuple(prediction.shape)}")
    hole = 1 - mask
    hole_pixels = hole.sum(dim=(1, 2, 3))
    if bool((hole_pixels == 0).any()):
        raise ValueError(f"every mask needs a hole; masks {(hole_pixels == 0).nonzero().flatten().tolist()} have none")
    return ((prediction - image).abs() * hole).sum(dim=(1, 2, 3)) / (image.shape[1] * hole_pixels)


def verdict(first: str, second: str, difference: Interval, count: int, measure: str = "error") -> str:
    """One sentence on ``first`` − ``second``: lower / higher beyond the spread of the images, or not distinguishable.

    ``measure`` names the score in the sentence ("error", or e.g. "PSNR" for a score where higher is better)."""
    if difference.high < 0:
        finding = f"lower than {second}'s"
    elif difference.low > 0:
        finding = f"higher than {second}'s"
    else:
        finding = f"not distinguishable from {second}'s on these {count} images"
    return (f"{first}: {measure} {finding} (difference {difference.mean:+.2f}, "
            f"95 % interval [{difference.low:+.2f}, {difference.high:+.2f}]).")


class Comparison(NamedTuple):
    """Per-method intervals and paired differences; ``str()`` is the table followed by the verdicts."""

    methods: dict[str, Interval]
    differences: dict[tuple[str, str], Interval]
    count: int
    label: str = "hole L1 ×100"
    measure: str = "error"

    def __str__(self) -> str:
        width = max(len(name) for name in self.methods) + 2
        width = max(width, len(self.label) + 2)
        lines = [f"{self.label:{width}s}{'mean':>7s}   95 % interval ({self.count} images)"]
        lines += [f"{name:{width}s}{i.mean:7.2f}   [{i.low:.2f}, {i.high:.2f}]" for name, i in self.methods.items()]
        lines += [verdict(first, second, d, self.count, self.measure) for (first, second), d in self.differences.items()]
        return "\n".join(lines)


def compare(errors: Mapping[str, Tensor], pairs: Iterable[tuple[str, str]] = (), scale: float = 100.0,
            label: str = "hole L1 ×100", measure: str = "error") -> Comparison:
    """Intervals of each method's mean error (× ``scale``) and of the paired differences for ``pairs`` (first − second).

    ``errors``: method name → (N,) per-image errors on the same N images, in the same order. Any other per-image
    score works too: ``compare(psnrs, pairs, scale=1, label="PSNR (dB)", measure="PSNR")``.
    """
    if len(errors) == 0:
        raise ValueError("errors must name at least one method")
    counts = {name: tuple(e.shape) for name, e in errors.items()}
    if len(set(counts.values())) != 1 or len(next(iter(counts.values()))) != 1:
        raise ValueError(f"errors must be 1-D tensors over the same images, got shapes {counts}")
    pairs = list(pairs)
    unknown = sorted({name for pair in pairs for name in pair} - set(errors))
    if unknown:
        raise ValueError(f"pairs name methods that are not in errors: {unknown}; known: {list(errors)}")
    scaled = {name: e.detach().double().cpu() * scale for name, e in errors.items()}
    methods = {name: Interval(*bootstrap_interval(e)) for name, e in scaled.items()}
    differences = {(a, b): Interval(*bootstrap_interval(scaled[a] - scaled[b])) for a, b in pairs}
    return Comparison(methods, differences, len(next(iter(scaled.values()))), label, measure)
