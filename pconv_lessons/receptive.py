"""Deprecated alias of ``pconv_lessons.course.receptive`` (the lesson helpers moved to ``pconv_lessons.course``)."""

import sys
import warnings

from pconv_lessons.course import receptive as _moved

warnings.warn("pconv_lessons.receptive moved to pconv_lessons.course.receptive", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
