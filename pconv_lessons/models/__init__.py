"""Inpainting models: DeepFill v2-style gated generator and SN-PatchGAN discriminator."""

from pconv_lessons.models.gated import GatedGenerator, SNPatchDiscriminator

__all__ = ["GatedGenerator", "SNPatchDiscriminator"]
