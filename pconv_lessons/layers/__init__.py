"""Inpainting layers: partial convolution, gated convolution, contextual attention and Fourier convolutions (FFC)."""

from pconv_lessons.layers.contextual_attention import ContextualAttention
from pconv_lessons.layers.gated_conv import GatedConv2d, GatedUpsample, collect_gates
from pconv_lessons.layers.partial_conv import PartialConv2d

__all__ = ["ContextualAttention", "GatedConv2d", "GatedUpsample", "PartialConv2d", "collect_gates"]

from pconv_lessons.layers.ffc import FFC, FFCResnetBlock, FourierUnit, SpectralTransform

__all__ += ["FourierUnit", "SpectralTransform", "FFC", "FFCResnetBlock"]
