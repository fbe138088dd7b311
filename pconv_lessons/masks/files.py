"""Masks stored as image files, and LaMa's folder layout of images with their masks.

A mask file is a greyscale (or any) image whose **non-zero pixels are holes** — LaMa's convention, and the one of
its ``bin/predict.py``, which reads the file as 8-bit grey and takes ``mask > 0``. ``read_mask_file`` turns it into
the course convention: a float tensor (1, H, W) with 1 = known, 0 = hole.

LaMa's layout (``bin/predict.py``): a folder holding ``NAME.png`` and its masks ``NAME_mask000.png``,
``NAME_mask001.png``, … (any text after ``_mask``), searched recursively; the image of a mask is the file named by
the part before the last ``_mask`` with the first image suffix found (``.png``, ``.jpg``, …).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from pconv_lessons.data import IMAGE_SUFFIXES

MASK_MARKER = "_mask"


def read_mask_file(path: str | Path) -> Tensor:
    """A mask file (non-zero = hole) as a float tensor (1, H, W), 1 = known and 0 = hole.

    A missing or unreadable file is a ``ValueError`` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"mask file not found: {path}")
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read mask file {path}: {error}") from error
    return torch.from_numpy((grey == 0).astype(np.float32))[None]


def is_mask_file(path: Path) -> bool:
    return path.suffix.lower() == ".png" and MASK_MARKER in path.stem


def image_of_mask(mask_path: Path) -> Path | None:
    """The image a LaMa-layout mask belongs to (``a/b_mask001.png`` → ``a/b.png``, ``a/b.jpg``, …), or None."""
    stem = mask_path.stem.rsplit(MASK_MARKER, 1)[0]
    for suffix in IMAGE_SUFFIXES:
        for candidate in (mask_path.with_name(stem + suffix), mask_path.with_name(stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def lama_layout(folder: str | Path) -> list[tuple[Path | None, Path]]:
    """Every (image, mask) pair of a folder in LaMa's layout, sorted by mask path; image None where it is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"input folder not found: {folder}")
    masks = sorted(path for path in folder.rglob("*.png") if path.is_file() and is_mask_file(path))
    return [(image_of_mask(mask), mask) for mask in masks]


def masks_of_image(image_path: str | Path) -> list[Path]:
    """The LaMa-layout masks beside one image: ``NAME_mask*.png`` in its folder, sorted."""
    image_path = Path(image_path)
    return sorted(image_path.parent.glob(f"{image_path.stem}{MASK_MARKER}*.png"))
