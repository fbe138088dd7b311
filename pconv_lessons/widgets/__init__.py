"""The mask painter, in three layers: ``MaskCanvas`` (the pure drawing model), ``PointerController``
(pointer events → strokes) and ``MaskPainter`` (the ipywidgets view with an Inpaint button).

Each layer's module states its rules: the rasterisation rule in ``canvas``, the display-scale
conversion in ``controller``, the overlay and the composite shown after inpainting in ``view``.
"""

from pconv_lessons.widgets.canvas import MASK_KINDS, MaskCanvas
from pconv_lessons.widgets.controller import PointerController
from pconv_lessons.widgets.view import (
    InpaintError,
    MaskPainter,
    as_inpainter,
    fit_image,
    image_from_bytes,
    overlay_png,
    png_bytes,
)

__all__ = [
    "InpaintError",
    "MASK_KINDS",
    "MaskCanvas",
    "MaskPainter",
    "PointerController",
    "as_inpainter",
    "fit_image",
    "image_from_bytes",
    "overlay_png",
    "png_bytes",
]
