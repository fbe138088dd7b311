"""LamaGenerator: layout, any input size, and the mask convention at its interface."""

import pytest
import torch
from torch import nn

from pconv_lessons.layers import FFCResnetBlock
from pconv_lessons.models import LamaGenerator


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return LamaGenerator(ngf=4, n_blocks=1).eval()


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (300, 451)])
def test_output_shape_equals_input_shape(small, size):
    image = torch.rand(1, 3, *size)
    mask = (torch.rand(1, 1, *size) > 0.3).float()
    with torch.no_grad():
        out = small(image, mask)
    assert out.shape == image.shape
    assert out.min() >= 0 and out.max() <= 1  # sigmoid head


def test_paper_layout_at_full_width():
    model = LamaGenerator()
    blocks = [m for m in model.modules() if isinstance(m, FFCResnetBlock)]
    assert len(blocks) == 9 and all(b.channels == 512 for b in blocks)
    first_ffc = blocks[0].body[0][0]
    assert (first_ffc.in_local, first_ffc.in_global) == (128, 384)
    strided = [m for m in model.down.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.stride) for m in strided] == [
        (64, 128, (2, 2)), (128, 256, (2, 2)), (256, 512, (2, 2))
    ]
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in model.up) == 3
    assert model.stem[1].kernel_size == (7, 7) and model.stem[1].in_channels == 4
    assert isinstance(model.head[-1], nn.Sigmoid)


def test_known_pixels_of_the_input_are_all_it_sees():
    # Course mask: 1 = known. Changing the image inside the hole must not change the output. (Train mode: at
    # init the eval-mode batch norms, fed by tiny activations, leave the output almost independent of the input.)
    model = LamaGenerator(ngf=4, n_blocks=1).train()
    image = torch.rand(1, 3, 32, 40)
    mask = torch.ones(1, 1, 32, 40)
    mask[..., 8:20, 10:30] = 0
    altered = image.clone()
    altered[..., 8:20, 10:30] = torch.rand(1, 3, 12, 20)
    with torch.no_grad():
        assert torch.allclose(model(image, mask), model(altered, mask), atol=1e-6)
        # ...while changing a known pixel does change it
        altered[..., :8, :] = 1.0 - altered[..., :8, :]
        assert (model(image, mask) - model(altered, mask)).abs().max() > 1e-2


def test_bad_inputs_are_rejected(small):
    with pytest.raises(ValueError, match="3 channels"):
        small(torch.rand(1, 4, 32, 32), torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match="mask"):
        small(torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 31))
    with pytest.raises(ValueError, match="at least"):
        small(torch.rand(1, 3, 12, 32), torch.ones(1, 1, 12, 32))
