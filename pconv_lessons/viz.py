"""Plotting helpers for the lessons, so notebooks hold ideas rather than matplotlib boilerplate.

Images are tensors (3, H, W) / (1, 3, H, W) in [0, 1], masks (1, H, W) / (1, 1, H, W) / (H, W) with
1 = known and 0 = hole; NumPy arrays (H, W) or (H, W, 3) are accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

HOLE_COLOUR = (1.0, 0.0, 1.0)


def to_numpy_image(image: Tensor | np.ndarray) -> np.ndarray:
    """A single image or mask → an (H, W) or (H, W, 3) float array clipped to [0, 1] for ``imshow``."""
    if isinstance(image, Tensor):
        array = image.detach().float().cpu()
        while array.dim() > 3 and array.shape[0] == 1:
            array = array[0]
        if array.dim() == 3:
            array = array[0] if array.shape[0] == 1 else array.permute(1, 2, 0)
        array = array.numpy()
    else:
        array = np.asarray(image, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ValueError(f"expected one image or mask, got an array shaped {array.shape}")
    return np.clip(array, 0.0, 1.0)


def overlay_holes(image: Tensor, mask: Tensor, colour: Sequence[float] = HOLE_COLOUR, alpha: float = 0.6) -> Tensor:
    """The image (3, H, W) with its holes tinted in ``colour`` (mask: 1 = known, 0 = hole)."""
    image = image.detach().float().cpu().reshape(3, *image.shape[-2:])
    hole = 1.0 - mask.detach().float().cpu().reshape(1, *mask.shape[-2:])
    tint = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1)
    return image * (1 - alpha * hole) + tint * alpha * hole


def show_images(
    images: Sequence[Tensor | np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 3.0,
    cmap: str = "gray",
) -> Figure:
    """Show images (or masks) in a grid with optional titles; returns the figure."""
    count = len(images)
    if count == 0:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != count:
        raise ValueError(f"got {count} images but {len(titles)} titles")
    ncols = min(count, ncols or count)
    nrows = -(-count // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= count:
            axis.axis("off")
            continue
        axis.set_xticks([])
        axis.set_yticks([])
        array = to_numpy_image(images[index])
        axis.imshow(array, cmap=cmap if array.ndim == 2 else None, vmin=0.0, vmax=1.0)
        if titles is not None:
            axis.set_title(titles[index], fontsize=10)
    figure.tight_layout()
    return figure


def show_values(values: Tensor | np.ndarray, title: str = "", fmt: str = "{:.2f}", cmap: str = "viridis") -> Figure:
    """Show a small 2-D array as a heat map with every value written in its cell (for hand-worked examples)."""
    array = values.detach().float().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, dtype=float)
    array = array.reshape(array.shape[-2:])
    height, width = array.shape
    figure, axis = plt.subplots(figsize=(0.55 * width + 1.0, 0.55 * height + 0.8))
    axis.imshow(array, cmap=cmap)
    middle = (np.nanmax(array) + np.nanmin(array)) / 2
    for row in range(height):
        for col in range(width):
            colour = "black" if array[row, col] > middle else "white"
            axis.text(col, row, fmt.format(array[row, col]), ha="center", va="center", fontsize=8, color=colour)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def inpainting_grid(
    images: Tensor, masks: Tensor, predictions: Tensor, title: str = "", size: float = 2.0
) -> Figure:
    """One row per example: input with holes tinted, raw prediction, composite (prediction in the holes), original.

    ``images`` and ``predictions`` are (N, 3, H, W), ``masks`` (N, 1, H, W) with 1 = known, 0 = hole.
    """
    images, masks, predictions = (t.detach().float().cpu() for t in (images, masks, predictions))
    composites = masks * images + (1 - masks) * predictions.clamp(0, 1)
    columns = ("input (holes in magenta)", "prediction", "composite", "original")
    figure, axes = plt.subplots(len(images), 4, figsize=(4 * size, len(images) * size), squeeze=False)
    for row in range(len(images)):
        pictures = (overlay_holes(images[row], masks[row]), predictions[row], composites[row], images[row])
        for col, picture in enumerate(pictures):
            axes[row, col].imshow(to_numpy_image(picture), vmin=0.0, vmax=1.0)
            axes[row, col].axis("off")
            if row == 0:
                axes[row, col].set_title(columns[col], fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


LOG_SPAN = 10.0


def plot_loss_curves(
    history: Sequence[dict[str, float]], marks: dict[str, float] | None = None, smooth: int = 0
) -> Figure:
    """One panel per loss term of a training history (a list of ``{"step": s, term: value}``): on a log scale
    where the term is positive and spans more than ``LOG_SPAN`` (a factor of 10), else linear — a log axis over
    less than a decade has only minor ticks, labelled unreadably (e.g. a hinge loss hovering around 2).

    Terms that are 0 throughout (e.g. a loss switched off) get no panel. ``marks`` draws labelled vertical
    lines (e.g. ``{"fine-tune": 800}``); ``smooth`` > 1 adds a moving average over that many steps.
    """
    if not history:
        raise ValueError("plot_loss_curves needs a non-empty history")
    terms = [name for name in history[-1] if name != "step" and any(entry.get(name, 0.0) != 0.0 for entry in history)]
    if not terms:
        raise ValueError("plot_loss_curves: every loss term in the history is 0")
    steps = np.array([entry["step"] for entry in history])
    ncols = min(3, len(terms))
    nrows = -(-len(terms) // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.8 * nrows), squeeze=False)
    for axis in axes.flat[len(terms):]:
        axis.axis("off")
    for axis, name in zip(axes.flat, terms):
        values = np.array([entry.get(name, np.nan) for entry in history])
        axis.plot(steps, values, linewidth=0.8, alpha=0.5 if smooth > 1 else 1.0, label="per step")
        if smooth > 1 and len(values) >= smooth:
            kernel = np.ones(smooth) / smooth
            axis.plot(steps[smooth - 1 :], np.convolve(values, kernel, mode="valid"), label=f"mean of {smooth}")
        for label, step in (marks or {}).items():
            if steps[0] <= step <= steps[-1]:
                axis.axvline(step, color="grey", linestyle="--", linewidth=0.8)
                axis.text(step, 1.0, f" {label}", transform=axis.get_xaxis_transform(), fontsize=8, va="top")
        finite = values[np.isfinite(values)]
        if np.all(finite > 0) and finite.max() > LOG_SPAN * finite.min():
            axis.set_yscale("log")
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("step")
    if smooth > 1:
        axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def show_gate_maps(
    gates: Mapping[str, Tensor], index: int = 0, ncols: int = 6, size: float = 1.8, title: str = ""
) -> Figure:
    """One panel per gated layer: the gate σ(g) of example ``index`` averaged over channels, on a fixed 0–1 scale.

    ``gates`` maps layer names to (N, C, H, W) gates (as ``pconv_lessons.layers.collect_gates`` returns them).
    Dark = gate closed (the layer suppresses its features there), bright = open.
    """
    if not gates:
        raise ValueError("show_gate_maps needs at least one layer's gates")
    count = len(gates)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.8, size * nrows + 0.4), squeeze=False)
    image = None
    for axis in axes.flat:
        axis.axis("off")
    for axis, (name, gate) in zip(axes.flat, gates.items()):
        mean_gate = gate[index].detach().float().mean(dim=0).cpu().numpy()
        image = axis.imshow(mean_gate, cmap="magma", vmin=0.0, vmax=1.0)
        axis.set_title(f"{name} ({mean_gate.shape[0]}×{mean_gate.shape[1]})", fontsize=7)
    figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean gate σ(g)")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def plot_functions(
    x: Tensor | np.ndarray, curves: Mapping[str, Tensor | np.ndarray], xlabel: str, ylabel: str, title: str = ""
) -> Figure:
    """Line plot of several functions of the same ``x``, one labelled line per entry of ``curves``."""
    if not curves:
        raise ValueError("plot_functions needs at least one curve")
    xs = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=float)
    figure, axis = plt.subplots(figsize=(5.5, 3.5))
    for label, values in curves.items():
        ys = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=float)
        if ys.shape != xs.shape:
            raise ValueError(f"curve {label!r} has shape {ys.shape}, x has shape {xs.shape}")
        axis.plot(xs, ys, label=label)
    axis.axhline(0.0, color="grey", linewidth=0.6)
    axis.axvline(0.0, color="grey", linewidth=0.6)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def show_hole_ratio_histograms(
    ratios: dict[str, Tensor | np.ndarray],
    buckets: Sequence[tuple[float, float]] = (),
    ncols: int = 3,
    bins: int = 40,
    size: float = 3.0,
) -> Figure:
    """One histogram of hole ratios per entry of ``ratios`` (name → values in [0, 1]), buckets shaded in grey.

    Each panel is titled with its name, mean and standard deviation; the x axis is the hole ratio
    from 0 to 1, the y axis the share of masks per bin (in %).
    """
    if not ratios:
        raise ValueError("show_hole_ratio_histograms needs at least one set of hole ratios")
    count = len(ratios)
    ncols = min(count, ncols)
    nrows = -(-count // ncols)
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * 1.3 * ncols, size * nrows), squeeze=False)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for axis in axes.flat[count:]:
        axis.axis("off")
    for axis, (name, values) in zip(axes.flat, ratios.items()):
        values = values.detach().double().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, float)
        for index, (low, high) in enumerate(buckets):
            axis.axvspan(low, high, color="0.85" if index % 2 == 0 else "0.93", zorder=0)
        weights = np.full(len(values), 100.0 / max(len(values), 1))
        axis.hist(values, bins=edges, weights=weights, color="tab:blue", zorder=1)
        axis.set_xlim(0, 1)
        axis.set_title(f"{name}\nmean {values.mean():.2f}, std {values.std():.2f}", fontsize=10)
        axis.set_xlabel("hole ratio", fontsize=9)
        axis.set_ylabel("% of masks", fontsize=9)
    figure.tight_layout()
    return figure


def compare_methods(
    images: Tensor,
    masks: Tensor,
    predictions: Mapping[str, Tensor],
    row_titles: Sequence[str] | None = None,
    size: float = 2.2,
) -> Figure:
    """One row per example: input with holes tinted, each method's composite (titled with its PSNR), original.

    The input and original columns are titled in the first row only; ``row_titles`` label the rows.

    ``images`` (N, 3, H, W) in [0, 1], ``masks`` (N, 1, H, W) with 1 = known, ``predictions`` name → (N, 3, H, W).
    """
    from pconv_lessons.metrics import psnr

    images, masks = images.detach().float().cpu(), masks.detach().float().cpu()
    composites = {
        name: masks * images + (1 - masks) * prediction.detach().float().cpu().clamp(0, 1)
        for name, prediction in predictions.items()
    }
    scores = {name: psnr(composite, images) for name, composite in composites.items()}
    if row_titles is not None and len(row_titles) != len(images):
        raise ValueError(f"got {len(images)} examples but {len(row_titles)} row titles")
    ncols = len(composites) + 2
    figure, axes = plt.subplots(len(images), ncols, figsize=(ncols * size, len(images) * (size + 0.3)), squeeze=False)
    for row in range(len(images)):
        first = row == 0
        cells = [(overlay_holes(images[row], masks[row]), "input (holes in magenta)" if first else "")]
        cells += [(composites[name][row], f"{name}\nPSNR {scores[name][row]:.1f} dB") for name in composites]
        cells.append((images[row], "original" if first else ""))
        for col, (picture, title) in enumerate(cells):
            axes[row, col].imshow(to_numpy_image(picture), vmin=0.0, vmax=1.0, interpolation="nearest")
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            axes[row, col].set_title(title, fontsize=8)
        if row_titles is not None:
            axes[row, 0].set_ylabel(row_titles[row], fontsize=8)
    figure.tight_layout()
    return figure


def plot_bucket_scores(evaluation, metric_names: Sequence[str] | None = None) -> Figure:
    """One panel per metric of a ``metrics.BucketEvaluation``: mean score per hole-ratio bucket, one line per
    method, with its bootstrap interval as an error bar."""
    names = [metric.name for metric in evaluation.metrics] if metric_names is None else list(metric_names)
    labels = evaluation.row_labels[:-1]
    bounds = evaluation.intervals()[:-1]  # (buckets, metrics, methods, 2)
    all_names = [metric.name for metric in evaluation.metrics]
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes.flat, names):
        for m, method in enumerate(evaluation.methods):
            means = evaluation.per_image(name, method).mean(dim=1).numpy()
            low, high = bounds[:, all_names.index(name), m].T
            axis.errorbar(range(len(labels)), means, yerr=[means - low, high - means], marker="o", capsize=3,
                          label=method)
        axis.set_xticks(range(len(labels)))
        axis.set_xticklabels(labels, rotation=30, fontsize=8)
        axis.set_xlabel("hole ratio")
        axis.set_title(name, fontsize=10)
        axis.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def show_heatmaps(
    maps: Sequence[Tensor | np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 3.0,
    cmap: str = "magma",
    shared_scale: bool = False,
) -> Figure:
    """Show 2-D maps of any range (error maps, feature maps, Gram matrices), each with its colour bar.

    Maps are (H, W) or anything that squeezes to it. Each panel gets its own colour range unless
    ``shared_scale``, which puts every panel on the range of all maps together (to compare magnitudes).
    """
    arrays = [np.asarray(m.detach().float().cpu().squeeze() if isinstance(m, Tensor) else m, dtype=float) for m in maps]
    if not arrays:
        raise ValueError("show_heatmaps needs at least one map")
    if any(a.ndim != 2 for a in arrays):
        raise ValueError(f"every map must be 2-D, got shapes {[a.shape for a in arrays]}")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"got {len(arrays)} maps but {len(titles)} titles")
    ncols = min(len(arrays), ncols or len(arrays))
    nrows = -(-len(arrays) // ncols)
    low = min(a.min() for a in arrays) if shared_scale else None
    high = max(a.max() for a in arrays) if shared_scale else None
    figure, axes = plt.subplots(nrows, ncols, figsize=(size * ncols * 1.2, size * nrows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index >= len(arrays):
            axis.axis("off")
            continue
        shown = axis.imshow(arrays[index], cmap=cmap, vmin=low, vmax=high)
        axis.set_xticks([])
        axis.set_yticks([])
        if titles is not None:
            axis.set_title(titles[index], fontsize=10)
        figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.04)
    figure.tight_layout()
    return figure
