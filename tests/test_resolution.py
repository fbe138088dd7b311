"""pconv_lessons.course.resolution: masks scaled in blocks (a loop), images resized as PIL does, chunked inpainting."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pconv_lessons import masks as mask_generators
from pconv_lessons.baselines import fill_with_mean
from pconv_lessons.course.resolution import at_scale, inpaint


def pil_bilinear(region: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL's antialiased bilinear resize, channel by channel in float32 ('F' mode): an independent reference."""
    channels = [Image.fromarray(channel.numpy(), mode="F").resize((width, height), Image.BILINEAR) for channel in region]
    return torch.from_numpy(np.stack([np.asarray(channel) for channel in channels]))


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_masks_become_blocks_and_keep_their_hole_ratio(scale):
    base = mask_generators.generate("mixed", 3, (8, 12), seed=4)
    _, masks = at_scale(torch.rand(3, 3, 32, 48), base, scale)
    assert masks.shape == (3, 1, 8 * scale, 12 * scale)
    for y in range(masks.shape[-2]):
        for x in range(masks.shape[-1]):
            assert torch.equal(masks[:, :, y, x], base[:, :, y // scale, x // scale])
    assert torch.equal(mask_generators.hole_ratio(masks), mask_generators.hole_ratio(base))


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_images_are_resized_as_pil_resizes_them(scale):
    torch.manual_seed(0)
    regions = torch.rand(2, 3, 64, 48)  # shrunk at 1× and 2×, enlarged at 4× (to 80 × 64)
    images, _ = at_scale(regions, torch.ones(2, 1, 20, 16), scale)
    assert images.shape == (2, 3, 20 * scale, 16 * scale)
    for image, region in zip(images, regions):
        reference = pil_bilinear(region, 20 * scale, 16 * scale).clamp(0, 1)
        assert torch.allclose(image, reference, atol=1e-5)


def test_at_scale_refuses_a_bad_scale_and_masks_that_do_not_match():
    regions = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="scale must be"):
        at_scale(regions, torch.ones(2, 1, 8, 8), 1.5)
    with pytest.raises(ValueError, match="scale must be"):
        at_scale(regions, torch.ones(2, 1, 8, 8), 0)
    with pytest.raises(ValueError, match=r"base_masks must be shaped \(2, 1, h, w\)"):
        at_scale(regions, torch.ones(3, 1, 8, 8), 2)


class RecordingModel(nn.Module):
    """A conv model that remembers the largest value it was shown inside the holes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(4, 3, 3, padding=1)
        self.largest_hole_value = 0.0

    def forward(self, image, mask):
        self.largest_hole_value = max(self.largest_hole_value, float((image * (1 - mask)).abs().max()))
        return torch.sigmoid(self.conv(torch.cat([image, mask], dim=1)))


def test_inpaint_in_chunks_equals_one_batch_and_keeps_the_known_pixels():
    torch.manual_seed(1)
    images = torch.rand(7, 3, 16, 16)
    masks = mask_generators.generate("box", 7, 16, seed=2)
    model = RecordingModel().eval()
    result = inpaint(model, images, masks, chunk=3)
    with torch.no_grad():
        whole = model(images * masks, masks)
    assert torch.allclose(result, masks * images + (1 - masks) * whole, atol=1e-6)
    assert model.largest_hole_value == 0.0  # the method only ever sees I ⊙ m
    assert not result.requires_grad
    assert torch.equal(inpaint(fill_with_mean, images, masks, chunk=2, device="cpu"), fill_with_mean(images, masks))


def test_inpaint_refuses_an_empty_batch_and_a_bad_chunk():
    with pytest.raises(ValueError, match="images must hold at least one image"):
        inpaint(fill_with_mean, torch.rand(0, 3, 8, 8), torch.ones(0, 1, 8, 8))
    with pytest.raises(ValueError, match="chunk must be"):
        inpaint(fill_with_mean, torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8), chunk=0)
