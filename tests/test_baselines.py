"""The classical baselines: exact on smooth content, known pixels untouched, clear errors."""

import numpy as np
import pytest
import torch

from pconv_lessons.baselines import biharmonic, fill_with_mean

BASELINES = [biharmonic, fill_with_mean]


def smooth_image(size=32):
    """Cubic polynomials in x and y: the discrete biharmonic operator vanishes on them exactly."""
    axis = torch.linspace(0, 1, size, dtype=torch.float64)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    channels = [0.2 + 0.3 * x + 0.2 * y, 0.5 + 0.2 * (x**2 - y**2) + 0.1 * x * y, 0.3 + 0.2 * x**3 - 0.1 * y**2 * x]
    return torch.stack(channels)[None]


def box_mask(size=32, top=12, left=10, height=7, width=8):
    mask = torch.ones(1, 1, size, size, dtype=torch.float64)
    mask[..., top : top + height, left : left + width] = 0
    return mask


def test_biharmonic_restores_a_smooth_image_almost_exactly():
    image, mask = smooth_image(), box_mask()
    restored = biharmonic(image * mask, mask)
    hole = (1 - mask).bool().expand_as(image)
    assert (restored - image)[hole].abs().max() < 1e-6
    assert (fill_with_mean(image * mask, mask) - image)[hole].abs().max() > 0.05  # the trivial baseline cannot


@pytest.mark.parametrize("baseline", BASELINES)
def test_known_pixels_are_untouched_and_hole_values_ignored(baseline):
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 20, 24, generator=generator)
    mask = (torch.rand(2, 1, 20, 24, generator=generator) > 0.3).float()
    out = baseline(image * mask, mask)
    garbage = baseline(torch.where(mask.bool(), image, torch.rand(image.shape, generator=generator)), mask)
    assert out.shape == image.shape and out.dtype == image.dtype
    known = mask.bool().expand_as(image)
    assert torch.equal(out[known], image[known])
    assert torch.allclose(out, garbage, atol=1e-6)


def test_fill_with_mean_uses_the_mean_of_the_known_pixels():
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 10, 12, generator=generator)
    mask = (torch.rand(2, 1, 10, 12, generator=generator) > 0.5).float()
    out = fill_with_mean(image, mask)
    for n in range(2):
        known = mask[n, 0].numpy().astype(bool)
        for c in range(3):
            expected = image[n, c].numpy()[known].mean()
            np.testing.assert_allclose(out[n, c].numpy()[~known], expected, rtol=1e-5)


@pytest.mark.parametrize("baseline", BASELINES)
def test_a_mask_without_holes_returns_the_image(baseline):
    image = torch.rand(1, 3, 12, 12)
    assert torch.equal(baseline(image, torch.ones(1, 1, 12, 12)), image)


@pytest.mark.parametrize("baseline", BASELINES)
@pytest.mark.parametrize(
    "image, mask, message",
    [
        (torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8), "no known pixel"),
        (torch.rand(1, 1, 8, 8), torch.ones(1, 1, 8, 8), "3 channels"),
        (torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 9), "spatial size"),
        (torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8) * 2, r"\[0, 1\]"),
        (torch.rand(3, 8, 8), torch.ones(1, 8, 8), r"\(N, C, H, W\)"),
    ],
)
def test_bad_input_is_a_clear_error(baseline, image, mask, message):
    with pytest.raises(ValueError, match=message):
        baseline(image, mask)


@pytest.mark.gpu
@pytest.mark.parametrize("baseline", BASELINES)
def test_baselines_return_on_the_input_device(baseline):
    image, mask = smooth_image().float(), box_mask().float()
    out = baseline(image.cuda() * mask.cuda(), mask.cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), baseline(image * mask, mask))
