"""Inpainting layers: partial convolution, gated convolution (and, as the course grows, Fourier convolutions)."""

from pconv_lessons.layers.gated_conv import GatedConv2d, GatedUpsample, collect_gates
from pconv_lessons.layers.partial_conv import PartialConv2d

__all__ = ["GatedConv2d", "GatedUpsample", "PartialConv2d", "collect_gates"]
