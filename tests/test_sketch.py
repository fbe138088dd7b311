"""Edge sketches against SciPy's Sobel filter and a hand-made step edge."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from pconv_lessons.sketch import LUMINANCE, edge_sketch, sobel_magnitude


def test_sobel_magnitude_matches_scipy():
    images = torch.rand(2, 3, 13, 17, dtype=torch.float64)
    magnitude = sobel_magnitude(images)
    for index in range(2):
        luminance = np.tensordot(np.array(LUMINANCE), images[index].numpy(), axes=1)
        gx = ndimage.sobel(luminance, axis=1, mode="nearest") / 4
        gy = ndimage.sobel(luminance, axis=0, mode="nearest") / 4
        np.testing.assert_allclose(magnitude[index, 0].numpy(), np.hypot(gx, gy), atol=1e-12)


def test_edge_sketch_marks_a_vertical_step_only_at_the_step():
    images = torch.zeros(1, 3, 6, 8)
    images[..., 4:] = 1.0  # white right half: a unit step between columns 3 and 4
    sketch = edge_sketch(images, threshold=0.5)
    expected = torch.zeros(1, 1, 6, 8)
    expected[..., 3:5] = 1.0
    assert torch.equal(sketch, expected)
    assert sobel_magnitude(images)[0, 0, 2, 3].item() == pytest.approx(1.0)  # a unit step gives magnitude 1


def test_edge_sketch_rejects_bad_input():
    with pytest.raises(ValueError, match="3 channels"):
        edge_sketch(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="positive"):
        edge_sketch(torch.rand(1, 3, 8, 8), threshold=0.0)
