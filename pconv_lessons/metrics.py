"""Image-quality metrics for inpainting and the paper's evaluation by hole-ratio bucket.

Per image (every function takes (N, C, H, W) batches and returns a tensor (N,) on their device):

- ``l1``: mean absolute error, mean over C·H·W of |pred − target|, in the images' own units (for images in
  [0, 1] a fraction; the PConv paper and the tables here report it ×100 as "L1 (%)").
- ``psnr``: 10·log10(data_range² / MSE) in dB (infinite for identical images).
- ``ssim``: Wang et al. (2004),
  SSIM(x, y) = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)), with local means, variances
  and covariance under an 11×11 Gaussian window of σ = 1.5 (population covariance),
  C1 = (0.01·L)², C2 = (0.03·L)², L = data_range; the SSIM map is averaged over channels and over the
  positions where the whole window lies inside the image (Wang et al.'s "valid" filtering). This equals
  scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=L, channel_axis=...)``; scikit-image's *defaults* (7×7 uniform window, sample covariance) differ.

Inputs: ``psnr`` and ``ssim`` need finite values in [0, data_range] (images in [0, 1] by default; 8-bit images
pass ``data_range=255``), ``l1`` finite values in any unit. An empty batch (N = 0) gives an empty result.

The SSIM map and PSNR come from torchmetrics; this module fixes their settings and the per-image reduction
(torchmetrics averages the SSIM map over the reflection-padded border too, which is not Wang et al.'s).

Evaluation by bucket (NVIDIA's PConv test protocol): masks are grouped by hole ratio into the six buckets
(0.01, 0.1], (0.1, 0.2], …, (0.5, 0.6]; every method ``(image, mask) -> prediction`` sees the image with
its holes zeroed, its prediction is clipped to [0, 1] (the image a user sees) and composited (known pixels from the
ground truth, holes from the prediction), and the composite is scored against the ground truth over the whole image.

Every mean in the table comes with a 95 % percentile-bootstrap interval over the images (patches): the images
of a bucket are resampled with replacement ``resamples`` times from a fixed seed, the same draws for every
method and metric, and the interval is the middle 95 % of the resampled means. It says how much the mean
would move on another set of patches like these; it does not cover a change of data set or of training run.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import html
import io
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from tqdm.auto import tqdm

from pconv_lessons.bootstrap import percentile_bounds, resampled_means
from pconv_lessons.validation import check_batch, check_image, check_image_values, check_int, check_mask, check_not_empty
from pconv_lessons.losses import vgg16_cache_path
from pconv_lessons.masks import PAPER_BUCKETS, generate_in_bucket, hole_ratio
from pconv_lessons.models.compositing import composite

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # 2·round(3.5·σ) + 1: the Gaussian truncated at 3.5 σ, as scikit-image and torchmetrics do
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_BORDER = SSIM_WINDOW // 2

Method = Callable[[Tensor, Tensor], Tensor]
Bucket = tuple[float, float]


def _check_pair(pred: Tensor, target: Tensor, value_range: tuple[float, float] | None) -> None:
    check_batch(pred, "pred")
    check_batch(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")
    if pred.device != target.device:
        raise ValueError(f"pred is on {pred.device} but target is on {target.device}")
    check_image_values(pred, "pred", value_range)
    check_image_values(target, "target", value_range)


def _check_data_range(data_range: float) -> float:
    try:
        value = math.nan if isinstance(data_range, (str, bool)) else float(data_range)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 < value < math.inf:  # also rejects NaN
        raise ValueError(f"data_range must be a positive number (1.0 for images in [0, 1]), got {data_range!r}")
    return value


def _full_precision(x: Tensor) -> Tensor:
    """bf16/fp16 → fp32: the metrics' sums and squares need the precision."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@contextlib.contextmanager
def _no_autocast(device: torch.device) -> Iterator[None]:
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
        yield


def l1(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error per image, in the images' units (a fraction for [0, 1] images; ×100 for "L1 (%)")."""
    _check_pair(pred, target, None)
    with _no_autocast(pred.device):
        return (_full_precision(pred) - _full_precision(target)).abs().mean(dim=(1, 2, 3))


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per image in dB, 10·log10(data_range² / MSE); ``inf`` where the images are equal."""
    data_range = _check_data_range(data_range)
    _check_pair(pred, target, (0.0, data_range))
    with _no_autocast(pred.device):
        return peak_signal_noise_ratio(
            _full_precision(pred), _full_precision(target), data_range=data_range, reduction="none", dim=(1, 2, 3)
        )


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Structural similarity per image with Wang et al.'s settings (see the module docstring); H, W ≥ 11."""
    data_range = _check_data_range(data_range)
    _check_pair(pred, target, (0.0, data_range))
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images at least {SSIM_WINDOW}×{SSIM_WINDOW}, got {tuple(pred.shape[-2:])}")
    if pred.shape[0] == 0:
        return _full_precision(pred).new_zeros(0)
    with _no_autocast(pred.device):
        _, ssim_map = structural_similarity_index_measure(
            _full_precision(pred),
            _full_precision(target),
            gaussian_kernel=True,
            sigma=SSIM_SIGMA,
            data_range=data_range,
            k1=SSIM_K1,
            k2=SSIM_K2,
            reduction="none",
            return_full_image=True,
        )
    border = _SSIM_BORDER
    return ssim_map[..., border:-border, border:-border].mean(dim=(1, 2, 3))


@dataclass(frozen=True)
class Metric:
    """A per-image metric as the evaluation table shows it: ``scale`` × ``function(pred, target)``."""

    name: str
    function: Callable[[Tensor, Tensor], Tensor]
    higher_is_better: bool
    scale: float = 1.0

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.function(pred, target) * self.scale


PAPER_METRICS: tuple[Metric, ...] = (
    Metric("L1 (%)", l1, higher_is_better=False, scale=100.0),
    Metric("PSNR (dB)", psnr, higher_is_better=True),
    Metric("SSIM", ssim, higher_is_better=True),
)


def lpips_available() -> bool:
    """Whether LPIPS can run offline: torchvision's ImageNet VGG16 weights are in the torch cache."""
    return vgg16_cache_path().is_file()


@functools.lru_cache(maxsize=2)
def _lpips_network(device: str) -> nn.Module:
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    return _NoTrainLpips(net="vgg").to(device).eval()


def lpips(pred: Tensor, target: Tensor) -> Tensor:
    """LPIPS (Zhang et al., 2018), VGG16 variant, per image (N,): a distance between deep features, lower is closer.

    Unit-normalised VGG16 features of both images at five depths, their squared differences weighted per channel
    by LPIPS's learned linear layers (shipped inside torchmetrics), averaged over positions and summed over depths.
    Images in [0, 1]. Needs the ImageNet VGG16 weights in the torch cache (``lpips_available()``); nothing is
    downloaded here.
    """
    _check_pair(pred, target, (0.0, 1.0))
    if not lpips_available():
        raise FileNotFoundError(
            f"LPIPS needs torchvision's ImageNet VGG16 weights at {vgg16_cache_path()} (the file VGG16Features("
            "'imagenet') downloads); they are not there"
        )
    from torchmetrics.functional.image.lpips import _lpips_update

    network = _lpips_network(str(pred.device))
    with _no_autocast(pred.device):
        return _lpips_update(_full_precision(pred).float(), _full_precision(target).float(), network, True).reshape(-1)


LPIPS_METRIC = Metric("LPIPS", lpips, higher_is_better=False)


def bucket_label(bucket: Bucket) -> str:
    low, high = bucket
    return f"({low:g}, {high:g}]"


def bucket_masks(
    count: int,
    size: int | tuple[int, int],
    kind: str = "free_form",
    seed: int = 0,
    device: str | torch.device = "cpu",
    buckets: Sequence[Bucket] | None = None,
) -> dict[Bucket, Tensor]:
    """``count`` masks (count, 1, H, W) per hole-ratio bucket (default: the six paper buckets), seeded."""
    chosen = PAPER_BUCKETS if buckets is None else buckets
    return {
        tuple(bucket): generate_in_bucket(kind, count, size, tuple(bucket), seed=seed * 1000 + index, device=device)
        for index, bucket in enumerate(chosen)
    }


@contextlib.contextmanager
def _evaluating(method: Method) -> Iterator[None]:
    """Run an ``nn.Module`` in eval mode (BatchNorm with running statistics), restoring its mode afterwards."""
    if not isinstance(method, nn.Module):
        yield
        return
    was_training = method.training
    method.eval()
    try:
        yield
    finally:
        method.train(was_training)


def _check_bucket_masks(masks: Tensor, bucket: Bucket, images: Tensor) -> None:
    check_mask(masks, images)
    low, high = bucket
    ratios = hole_ratio(masks)
    outside = ((ratios <= low) | (ratios > high)).nonzero().flatten().tolist()
    if outside:
        first = outside[0]
        raise ValueError(
            f"mask {first} has hole ratio {float(ratios[first]):.4f}, outside its bucket {bucket_label(bucket)}"
        )


def _predict(name: str, method: Method, images: Tensor, masks: Tensor) -> Tensor:
    with torch.no_grad():
        prediction = method(images * masks, masks)
    if not isinstance(prediction, Tensor) or prediction.shape != images.shape:
        shape = tuple(prediction.shape) if isinstance(prediction, Tensor) else type(prediction).__name__
        raise ValueError(f"method {name!r} must return a tensor shaped {tuple(images.shape)}, got {shape}")
    prediction = _full_precision(prediction).to(images.device, images.dtype)
    if not torch.isfinite(prediction).all():
        raise ValueError(f"method {name!r} returned NaN or infinite values")
    return prediction.clamp(0.0, 1.0)


@dataclass(frozen=True)
class BucketEvaluation:
    """Per-image scores of an evaluation by bucket, and the table they make.

    ``scores[method, metric, bucket, image]`` (float64, CPU), indexed like ``methods``, ``metrics``, ``buckets``.
    The table has one row per bucket and a last row "all" (the mean over every image and mask).
    """

    methods: tuple[str, ...]
    metrics: tuple[Metric, ...]
    buckets: tuple[Bucket, ...]
    scores: Tensor
    confidence: float = 0.95
    resamples: int = 1000
    bootstrap_seed: int = 0

    @property
    def row_labels(self) -> tuple[str, ...]:
        return tuple(bucket_label(bucket) for bucket in self.buckets) + ("all",)

    def table(self) -> np.ndarray:
        """Mean scores shaped (rows = buckets + "all", metrics, methods)."""
        per_bucket = self.scores.mean(dim=3)  # (methods, metrics, buckets)
        overall = self.scores.flatten(2).mean(dim=2, keepdim=True)
        return torch.cat([per_bucket, overall], dim=2).permute(2, 1, 0).numpy()

    @functools.cached_property
    def _resampled_means(self) -> Tensor:
        """Bootstrap means (methods, metrics, rows, resamples): images drawn with replacement within each bucket.

        The same draws serve every method and metric; the "all" row averages the resampled bucket means (every
        bucket holds one mask per image, so this is the mean over all pairs).
        """
        generator = torch.Generator().manual_seed(self.bootstrap_seed)
        per_bucket = torch.stack([resampled_means(self.scores[:, :, b], self.resamples, generator)
                                  for b in range(len(self.buckets))], dim=2)  # (methods, metrics, buckets, resamples)
        return torch.cat([per_bucket, per_bucket.mean(dim=2, keepdim=True)], dim=2)

    def intervals(self) -> np.ndarray:
        """Percentile-bootstrap intervals of the table's means at ``confidence``: (rows, metrics, methods, 2) = low, high."""
        tail = (1 - self.confidence) / 2
        levels = torch.tensor([tail, 1 - tail], dtype=torch.float64)
        bounds = percentile_bounds(self._resampled_means, levels)  # (2, methods, metrics, rows)
        return bounds.permute(3, 2, 1, 0).numpy()

    def interval(self, row: str | Bucket, metric: str, method: str) -> tuple[float, float]:
        """The (low, high) bootstrap interval of one cell of the table (see ``value``)."""
        r, k, m = self._cell(row, metric, method)
        low, high = self.intervals()[r, k, m]
        return float(low), float(high)

    def _cell(self, row: str | Bucket, metric: str, method: str) -> tuple[int, int, int]:
        label = row if isinstance(row, str) else bucket_label(row)
        if label not in self.row_labels:
            raise ValueError(f"unknown row {row!r}; rows are {list(self.row_labels)}")
        names = [metric_.name for metric_ in self.metrics]
        if metric not in names:
            raise ValueError(f"unknown metric {metric!r}; metrics are {names}")
        if method not in self.methods:
            raise ValueError(f"unknown method {method!r}; methods are {list(self.methods)}")
        return self.row_labels.index(label), names.index(metric), self.methods.index(method)

    def value(self, row: str | Bucket, metric: str, method: str) -> float:
        """One cell, e.g. ``value((0.5, 0.6), "PSNR (dB)", "biharmonic")`` or ``value("all", "SSIM", "pconv")``."""
        return float(self.table()[self._cell(row, metric, method)])

    def per_image(self, metric: str, method: str) -> Tensor:
        """Scores of one metric and method, shaped (buckets, images)."""
        names = [metric_.name for metric_ in self.metrics]
        return self.scores[self.methods.index(method), names.index(metric)]

    def _header(self) -> list[str]:
        return ["bucket"] + [f"{metric.name} {method}" for metric in self.metrics for method in self.methods]

    def _formatted_rows(self) -> list[list[str]]:
        """Cells "mean [low, high]" (the bootstrap interval in brackets)."""
        table, bounds = self.table(), self.intervals()
        formats = ["{:.3f}" if metric.name == "SSIM" else "{:.2f}" for metric in self.metrics]

        def cell(r: int, k: int, m: int) -> str:
            low, high = (formats[k].format(v) for v in bounds[r, k, m])
            return f"{formats[k].format(table[r, k, m])} [{low}, {high}]"

        return [
            [label] + [cell(r, k, m) for k in range(len(self.metrics)) for m in range(len(self.methods))]
            for r, label in enumerate(self.row_labels)
        ]

    def to_csv(self, path: str | Path | None = None) -> str:
        """The table as CSV (full precision), then the interval bounds, written to ``path`` if given; returns the text."""
        table, bounds = self.table(), self.intervals()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        pct = f"{100 * self.confidence:g}%"
        cells = self._header()[1:]
        writer.writerow(self._header() + [f"{c} {pct} low" for c in cells] + [f"{c} {pct} high" for c in cells])
        for r, label in enumerate(self.row_labels):
            values = list(table[r].reshape(-1)) + list(bounds[r, ..., 0].reshape(-1)) + list(bounds[r, ..., 1].reshape(-1))
            writer.writerow([label] + [repr(float(value)) for value in values])
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_markdown(self, path: str | Path | None = None) -> str:
        """The table as a Markdown (GitHub) table, the best method per metric in bold; written to ``path`` if given."""
        best = self._best()
        lines = ["| " + " | ".join(self._header()) + " |", "|" + "---|" * len(self._header())]
        for r, row in enumerate(self._formatted_rows()):
            cells = [row[0]] + [f"**{cell}**" if best[r][i] else cell for i, cell in enumerate(row[1:])]
            lines.append("| " + " | ".join(cells) + " |")
        text = "\n".join(lines) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    def _best(self) -> list[list[bool]]:
        """For each row and (metric, method) cell: is it the best method for that metric (ties all count)?"""
        table = self.table()
        flags = []
        for r in range(table.shape[0]):
            row = []
            for k, metric in enumerate(self.metrics):
                values = table[r, k]
                target = values.max() if metric.higher_is_better else values.min()
                row.extend(bool(value == target) and len(self.methods) > 1 for value in values)
            flags.append(row)
        return flags

    def __repr__(self) -> str:
        count = self.scores.shape[3]
        return (f"BucketEvaluation({len(self.methods)} methods × {len(self.metrics)} metrics × {len(self.buckets)} buckets"
                f" × {count} images; methods {', '.join(self.methods)})")

    def __str__(self) -> str:
        rows = [self._header()] + self._formatted_rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)

    def _repr_html_(self) -> str:
        best = self._best()
        head_metrics = "".join(
            f'<th colspan="{len(self.methods)}" style="text-align:center">{html.escape(metric.name)}'
            f"{' ↑' if metric.higher_is_better else ' ↓'}</th>"
            for metric in self.metrics
        )
        head_methods = "".join(f"<th>{html.escape(method)}</th>" for _ in self.metrics for method in self.methods)
        body = []
        for r, row in enumerate(self._formatted_rows()):
            cells = "".join(
                f"<td><b>{cell}</b></td>" if best[r][i] else f"<td>{cell}</td>" for i, cell in enumerate(row[1:])
            )
            body.append(f"<tr><th>{html.escape(row[0])}</th>{cells}</tr>")
        return (
            "<table><thead>"
            f'<tr><th rowspan="2">hole ratio</th>{head_metrics}</tr><tr>{head_methods}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table>"
            f"<p>mean [{100 * self.confidence:g} % bootstrap interval over the {self.scores.shape[3]} images of a "
            f"bucket, {self.resamples} resamples]</p>"
        )


def evaluate_by_bucket(
    methods: Mapping[str, Method],
    images: Tensor,
    masks: Mapping[Bucket, Tensor] | None = None,
    *,
    kind: str = "free_form",
    seed: int = 0,
    batch_size: int = 8,
    metrics: Sequence[Metric] = PAPER_METRICS,
    progress: bool = False,
    confidence: float = 0.95,
    resamples: int = 1000,
    bootstrap_seed: int = 0,
) -> BucketEvaluation:
    """Score every method on every image with one mask per bucket; returns per-image scores and the table.

    ``methods``: name → callable ``(image (B,3,H,W) with holes zeroed, mask (B,1,H,W)) -> prediction (B,3,H,W)``;
    models (put on the images' device) and the ``pconv_lessons.baselines`` alike. ``images``: ground truth
    (N, 3, H, W) in [0, 1]. ``masks``: bucket → masks (N, 1, H, W) whose hole ratios lie in that bucket,
    paired with the images in order; by default ``bucket_masks(N, (H, W), kind, seed)`` on the images' device.
    The result is deterministic given the masks (hence the seed) and deterministic methods. ``progress`` shows a
    tqdm bar over (method, bucket) pairs. A pair whose composite equals the ground truth has PSNR ``inf``.
    Each mean gets a ``confidence`` percentile-bootstrap interval over the images, ``resamples`` draws seeded by
    ``bootstrap_seed`` (``BucketEvaluation.intervals``).
    """
    check_image(images, "images", channels=3)
    check_not_empty(images, "images")
    if not methods:
        raise ValueError("evaluate_by_bucket needs at least one method, e.g. {'biharmonic': baselines.biharmonic}")
    batch_size = check_int(batch_size, "batch_size", 1)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), e.g. 0.95, got {confidence!r}")
    if not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be an int ≥ 1, e.g. 1000, got {resamples!r}")
    if masks is None:
        masks = bucket_masks(images.shape[0], tuple(images.shape[-2:]), kind=kind, seed=seed, device=images.device)
    if not masks:
        raise ValueError("masks must hold at least one bucket")
    buckets = tuple(tuple(bucket) for bucket in masks)
    for bucket, bucket_set in masks.items():
        _check_bucket_masks(bucket_set, tuple(bucket), images)

    scores = torch.empty(len(methods), len(metrics), len(buckets), images.shape[0], dtype=torch.float64)
    bar = tqdm(total=len(methods) * len(buckets), desc="evaluating", disable=not progress)
    for m, (name, method) in enumerate(methods.items()):
        with _evaluating(method):
            for b, bucket_set in enumerate(masks.values()):
                bar.set_postfix_str(f"{name}, {bucket_label(buckets[b])}")
                for start in range(0, images.shape[0], batch_size):
                    batch = slice(start, start + batch_size)
                    image, mask = images[batch], bucket_set[batch].to(images.device, images.dtype)
                    result = composite(_predict(name, method, image, mask), image, mask)
                    for k, metric in enumerate(metrics):
                        scores[m, k, b, batch] = metric(result, image).double().cpu()
                bar.update()
    bar.close()
    return BucketEvaluation(methods=tuple(methods), metrics=tuple(metrics), buckets=buckets, scores=scores,
                            confidence=confidence, resamples=resamples, bootstrap_seed=bootstrap_seed)
