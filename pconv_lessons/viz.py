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


def plot_loss_curves(
    history: Sequence[dict[str, float]], marks: dict[str, float] | None = None, smooth: int = 0
) -> Figure:
    """One log-scale panel per loss term of a training history (a list of ``{"step": s, term: value}``).

    ``marks`` draws labelled vertical lines (e.g. ``{"fine-tune": 800}``); ``smooth`` > 1 adds a moving
    average over that many steps on top of the raw curve.
    """
    if not history:
        raise ValueError("plot_loss_curves needs a non-empty history")
    terms = [name for name in history[-1] if name != "step"]
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
        if np.all(values[np.isfinite(values)] > 0):
            axis.set_yscale("log")
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("step")
    figure.tight_layout()
    return figure
