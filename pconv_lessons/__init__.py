"""pconv_lessons: the finished implementations behind the pconv-lessons inpainting course.

Mask convention everywhere: 1 = known (valid) pixel, 0 = hole; float tensors shaped (N, 1, H, W)
unless a channel count is stated.
"""

__version__ = "0.1.0"
