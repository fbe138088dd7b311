"""Training and test masks for inpainting: the mask families of PConv, DeepFill v2 and LaMa, hole-ratio buckets.

Convention: masks are float tensors (n, 1, H, W) with **1 = known pixel, 0 = hole**.

Every family draws a few random *primitives* — thick line segments with round caps ("capsules", a circle
being a capsule of length 0) and axis-aligned boxes — and rasterises them (:mod:`pconv_lessons.raster`).
Open the package family by family:

- ``shapes`` — ``"shapes"``: PConv-Keras's random lines, circles and arcs;
- ``free_form`` — ``"free_form"``: DeepFill v2's brush strokes;
- ``lama`` — ``"lama_thin"``, ``"lama_medium"``, ``"lama_thick"`` (LaMa's evaluation presets, boxes included),
  ``"mixed"`` (Big LaMa's training mix) and ``"box"`` (its boxes alone), beside LaMa's own parameters;
- ``draw`` — ``generate`` (NumPy per mask, or a torch batch on any device), ``hole_ratio``, ``example_mask``;
- ``buckets`` — ``generate_in_bucket`` and the PConv paper's ``PAPER_BUCKETS``;
- ``loading`` — ``MaskDataset``, ``MaskStream`` and ``mask_batches`` for a training loop;
- ``bands`` — the measured hole-ratio band of each family (``HOLE_RATIO_BANDS``).
"""

from pconv_lessons.masks._common import BACKENDS, mask_rng
from pconv_lessons.masks.bands import HOLE_RATIO_BANDS
from pconv_lessons.masks.buckets import PAPER_BUCKETS, generate_in_bucket
from pconv_lessons.masks.draw import KINDS, example_mask, generate, hole_ratio
from pconv_lessons.masks.lama import LAMA_PRESETS, Boxes, Irregular, LamaMix
from pconv_lessons.masks.loading import MaskDataset, MaskStream, mask_batches

__all__ = [
    "BACKENDS",
    "HOLE_RATIO_BANDS",
    "KINDS",
    "LAMA_PRESETS",
    "PAPER_BUCKETS",
    "Boxes",
    "Irregular",
    "LamaMix",
    "MaskDataset",
    "MaskStream",
    "example_mask",
    "generate",
    "generate_in_bucket",
    "hole_ratio",
    "mask_batches",
    "mask_rng",
]
