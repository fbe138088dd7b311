"""The composited output of an inpainting model: keep the known pixels, take the prediction only in the holes.

    I_comp = M ⊙ I_gt + (1 − M) ⊙ I_out

with M the mask (1 = known pixel, 0 = hole). This is the image a user sees, and the image the
PConv losses compare (perceptual, style and total variation on I_comp) besides the raw output I_out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pconv_lessons.validation import check_batch, check_mask


def composite(prediction: Tensor, image: Tensor, mask: Tensor, *, check_values: bool = True) -> Tensor:
    """``prediction`` in the holes, ``image`` everywhere else; all shaped (N, C, H, W), mask (N, 1 or C, H, W).

    Values of ``image`` in the holes (and of ``prediction`` at known pixels) are never read.
    ``check_values=False`` skips the mask's value-range check (a device sync on a GPU) for masks known to be valid.
    """
    check_batch(prediction, "prediction")
    check_batch(image, "image")
    if prediction.shape != image.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} does not match the image shape {tuple(image.shape)}"
        )
    check_mask(mask, image, (1, image.shape[1]), values=check_values)
    known = mask.to(prediction.dtype)
    # Select, don't multiply: NaN or inf where a term's weight is 0 (e.g. in the image's holes) never leaks.
    return torch.where(known > 0, known * image.to(prediction.dtype), 0.0) + torch.where(
        known < 1, (1 - known) * prediction, 0.0
    )
