"""The composited output of an inpainting model: keep the known pixels, take the prediction only in the holes.

    I_comp = M ⊙ I_gt + (1 − M) ⊙ I_out

with M the mask (1 = known pixel, 0 = hole). This is the image a user sees, and the image the
PConv losses compare (perceptual, style and total variation on I_comp) besides the raw output I_out.
"""

from __future__ import annotations

from torch import Tensor

from pconv_lessons.checks import check_batch, check_mask


def composite(prediction: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """``prediction`` in the holes, ``image`` everywhere else; all shaped (N, C, H, W), mask (N, 1 or C, H, W)."""
    check_batch(prediction, "prediction")
    check_batch(image, "image")
    if prediction.shape != image.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} does not match the image shape {tuple(image.shape)}"
        )
    check_mask(mask, image, (1, image.shape[1]))
    known = mask.to(prediction.dtype)
    return known * image.to(prediction.dtype) + (1 - known) * prediction
