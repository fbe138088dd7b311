"""Images for the course: scikit-image's bundled colour photos (no download needed) and image-file loading.

Images are float tensors shaped (3, H, W) with values in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

# Colour photos that ship inside scikit-image, by the loader that returns each one.
_SAMPLE_LOADERS = {
    "astronaut": lambda data: data.astronaut(),
    "chelsea": lambda data: data.chelsea(),
    "coffee": lambda data: data.coffee(),
    "rocket": lambda data: data.rocket(),
    "motorcycle": lambda data: data.stereo_motorcycle()[0],
    "hubble": lambda data: data.hubble_deep_field(),
    "immunohistochemistry": lambda data: data.immunohistochemistry(),
}
SAMPLE_NAMES: tuple[str, ...] = tuple(_SAMPLE_LOADERS)


def to_tensor(array: np.ndarray) -> Tensor:
    """An (H, W, 3) uint8 or float array → a float32 tensor (3, H, W) in [0, 1]."""
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB array shaped (H, W, 3), got shape {array.shape}")
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).contiguous()


def sample_images(names: Iterable[str] | None = None) -> dict[str, Tensor]:
    """The course's sample photos as ``{name: (3, H, W) float tensor in [0, 1]}``, in ``SAMPLE_NAMES`` order.

    They are scikit-image's bundled colour photos, so they work offline. Sizes differ from photo to photo.
    """
    import skimage.data

    wanted = SAMPLE_NAMES if names is None else tuple(names)
    unknown = [name for name in wanted if name not in _SAMPLE_LOADERS]
    if unknown:
        raise ValueError(f"unknown sample image(s) {unknown}; choose from {list(SAMPLE_NAMES)}")
    return {name: to_tensor(_SAMPLE_LOADERS[name](skimage.data)) for name in wanted}


def load_image(path: str | Path) -> Tensor:
    """Read an image file as a (3, H, W) float tensor in [0, 1] (grey and RGBA are converted to RGB).

    A missing, unreadable or corrupt file raises ``ValueError`` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path}: {error}") from error
    return to_tensor(np.asarray(rgb))
