"""Edge sketches: the user-guidance channel of DeepFill v2, drawn automatically from an image for training.

DeepFill v2 trains its user-guided model on edge maps of the training images and lets the user draw
strokes at test time. The course uses a Sobel edge detector (plain torch, batched, runs on the GPU):

    Y  = 0.299·R + 0.587·G + 0.114·B                  (luminance)
    Gx = Y ∗ [[1, 0, −1], [2, 0, −2], [1, 0, −1]] / 4  (replicate padding; a unit step gives |Gx| = 1)
    Gy = Y ∗ Gxᵀ-kernel / 4
    sketch = 1 where √(Gx² + Gy²) > threshold, else 0

Sketches are (N, 1, H, W) float tensors with 1 on a stroke and 0 elsewhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from pconv_lessons.validation import check_image

LUMINANCE = (0.299, 0.587, 0.114)
SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))


def sobel_magnitude(images: Tensor) -> Tensor:
    """Sobel gradient magnitude of the luminance of RGB images (N, 3, H, W) in [0, 1] → (N, 1, H, W)."""
    check_image(images, "images", channels=3)  # finite, in [0, 1]
    weights = torch.tensor(LUMINANCE, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    luminance = (images * weights).sum(dim=1, keepdim=True)
    kernel_x = torch.tensor(SOBEL_X, dtype=images.dtype, device=images.device) / 4
    kernels = torch.stack([kernel_x, kernel_x.T]).unsqueeze(1)
    gradients = F.conv2d(F.pad(luminance, (1, 1, 1, 1), mode="replicate"), kernels)
    return gradients.square().sum(dim=1, keepdim=True).sqrt()


def edge_sketch(images: Tensor, threshold: float = 0.25) -> Tensor:
    """Binary edge map (N, 1, H, W): 1 where the Sobel magnitude of the luminance exceeds ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < math.inf:
        raise ValueError(f"threshold must be a positive finite number, got {threshold!r}")
    return (sobel_magnitude(images) > threshold).to(images.dtype)
