"""Inpainting layers: partial convolution (and, as the course grows, gated and Fourier convolutions)."""

from pconv_lessons.layers.partial_conv import PartialConv2d

__all__ = ["PartialConv2d"]
from pconv_lessons.layers.ffc import FFC, FFCResnetBlock, FourierUnit, SpectralTransform

__all__ += ["FourierUnit", "SpectralTransform", "FFC", "FFCResnetBlock"]
