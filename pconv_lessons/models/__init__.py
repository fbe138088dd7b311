"""Inpainting models. Every model's forward takes ``(image, mask)`` (mask: 1 = known, 0 = hole) and returns the
full-size prediction (N, 3, H, W); ``composite`` turns a prediction into the image a user sees."""

from pconv_lessons.models.compositing import composite
from pconv_lessons.models.gated import GatedGenerator, SNPatchDiscriminator
from pconv_lessons.models.lama import LamaGenerator
from pconv_lessons.models.lama_discriminator import NLayerDiscriminator
from pconv_lessons.models.pconv_unet import PConvUNet

__all__ = ["GatedGenerator", "LamaGenerator", "NLayerDiscriminator", "PConvUNet", "SNPatchDiscriminator", "composite"]
