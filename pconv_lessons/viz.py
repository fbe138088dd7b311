"""Plotting helpers for the lessons, so notebooks hold ideas rather than matplotlib boilerplate.

Images are tensors (3, H, W) / (1, 3, H, W) in [0, 1], masks (1, H, W) / (1, 1, H, W) / (H, W) with
1 = known and 0 = hole; NumPy arrays (H, W) or (H, W, 3) are accepted too.
"""

from __future__ import annotations

from collections.abc import Sequence

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
