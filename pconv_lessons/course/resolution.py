"""The same scenes with the same relative holes at several resolutions (LaMa's test at 1×, 2×, 4× the training size).

Regions R (N, 3, H, W) and masks m (N, 1, h, w) drawn at the training size give, at an integer scale k,

    images_k = clip(resize(R, (k·h, k·w)), 0, 1)        bilinear, antialiased
    masks_k[y, x] = m[⌊y / k⌋, ⌊x / k⌋]                 nearest neighbour: every mask pixel becomes a k × k block

so a hole covers the same share of the image at every scale (hole ratio of masks_k = hole ratio of m) while it is
k times wider in pixels. ``inpaint`` scores any model or baseline on such a batch a few images at a time and puts
the known pixels back:  I_comp = m ⊙ I + (1 − m) ⊙ f(I ⊙ m, m).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from pconv_lessons.validation import check_image, check_int, check_mask, check_not_empty
from pconv_lessons.models.compositing import composite

Method = Callable[[Tensor, Tensor], Tensor]


def at_scale(regions: Tensor, base_masks: Tensor, scale: int) -> tuple[Tensor, Tensor]:
    """(images_k, masks_k) at k = ``scale`` times the masks' size (h, w): regions (N, 3, H, W) resized to (k·h, k·w)
    (bilinear, antialiased, clipped to [0, 1]), masks_k[y, x] = m[⌊y / k⌋, ⌊x / k⌋]."""
    scale = check_int(scale, "scale", 1)
    check_image(regions, "regions", channels=3, values=False)
    if base_masks.dim() != 4 or base_masks.shape[:2] != (regions.shape[0], 1):
        raise ValueError(f"base_masks must be shaped ({regions.shape[0]}, 1, h, w) like the {regions.shape[0]} regions, "
                         f"got {tuple(base_masks.shape)}")
    size = (scale * base_masks.shape[-2], scale * base_masks.shape[-1])
    images = F.interpolate(regions, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    masks = F.interpolate(base_masks, scale_factor=scale, mode="nearest")
    return images, masks


def inpaint(method: Method, images: Tensor, masks: Tensor, chunk: int = 8,
            device: torch.device | str | None = None) -> Tensor:
    """m ⊙ I + (1 − m) ⊙ method(I ⊙ m, m), run ``chunk`` images at a time on ``device``, without gradients.

    The result lies on the images' device; ``device`` (default: the images' own) is where ``method`` runs.
    """
    check_image(images, "images", channels=3, values=False)
    check_mask(masks, images)
    check_not_empty(images, "images")
    chunk = check_int(chunk, "chunk", 1)
    device = images.device if device is None else torch.device(device)
    parts = []
    with torch.no_grad():
        for start in range(0, images.shape[0], chunk):
            image = images[start : start + chunk].to(device)
            mask = masks[start : start + chunk].to(device)
            parts.append(method(image * mask, mask).to(images.device))
    return composite(torch.cat(parts), images, masks)
