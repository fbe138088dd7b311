"""Inpainting models; each ``forward(image, mask)`` takes the course's mask (1 = known, 0 = hole) and returns the full-size prediction."""

from pconv_lessons.models.lama import LamaGenerator

__all__ = ["LamaGenerator"]
