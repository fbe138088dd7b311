"""Classical inpainting baselines with the models' call shape ``(image (N,3,H,W), mask (N,1,H,W)) -> (N,3,H,W)``.

- ``biharmonic``: scikit-image's ``inpaint_biharmonic`` fills every hole with the solution of the biharmonic
  equation Δ²u = 0 whose values (and, through the stencil, slopes) match the known pixels around it, channel by
  channel. Smooth content is continued almost exactly; texture and edges are not. It solves one sparse linear
  system per connected hole on the CPU, so its cost grows with the hole area: fine at 64–128 px, seconds per
  image at 256 px and more (``benchmarks/biharmonic.py`` measures it).
- ``fill_with_mean``: every hole pixel gets the per-channel mean colour of the image's known pixels.

A pixel counts as known where mask ≥ 0.5 (masks are 1 = known, 0 = hole). Known pixels are returned unchanged
(they must be finite), hole values in the input are never read (NaN or inf there is fine), the output is on the
input's device and dtype. An image with no known pixel cannot be inpainted from itself and raises ``ValueError``;
an empty batch gives an empty result.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.restoration import inpaint_biharmonic
from torch import Tensor

from pconv_lessons.validation import check_batch, check_image_values, check_mask


def _known_pixels(image: Tensor, mask: Tensor) -> Tensor:
    """Validate a batch and return the boolean map of known pixels (N, 1, H, W)."""
    check_batch(image, "image")
    if image.shape[1] != 3:
        raise ValueError(f"image must have 3 channels (RGB), got shape {tuple(image.shape)}")
    check_mask(mask, image)
    known = mask >= 0.5
    check_image_values(image, "image", value_range=None, known=known)
    empty = (~known.flatten(1).any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"image {empty[0]} of the batch has no known pixel (its mask is all holes)")
    return known


def biharmonic(image: Tensor, mask: Tensor) -> Tensor:
    """Biharmonic inpainting (scikit-image) of every image of the batch, on the CPU; returns on ``image``'s device."""
    known = _known_pixels(image, mask)
    images = image.detach().float().cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)
    holes = (~known).cpu()[:, 0].numpy()
    filled = [
        inpaint_biharmonic(picture, hole, channel_axis=-1) if hole.any() else picture
        for picture, hole in zip(images, holes)
    ]
    if not filled:  # an empty batch
        return image.clone()
    result = torch.from_numpy(np.stack(filled)).permute(0, 3, 1, 2).to(image.device, image.dtype)
    return torch.where(known, image, result)


def fill_with_mean(image: Tensor, mask: Tensor) -> Tensor:
    """Fill the holes with the per-image, per-channel mean of the known pixels."""
    known = _known_pixels(image, mask)
    weights = known.to(image.dtype)
    known_values = torch.where(known, image, 0.0)  # select, don't multiply: NaN/inf in a hole never leaks
    mean = known_values.sum(dim=(2, 3), keepdim=True) / weights.sum(dim=(2, 3), keepdim=True)
    return torch.where(known, image, mean.expand_as(image))
