"""LamaGenerator: layout, any input size, and the mask convention at its interface."""

import numpy as np
import pytest
import torch
from torch import nn

from pconv_lessons.layers import FFCResnetBlock
from pconv_lessons.models import LamaGenerator
from pconv_lessons.models.lama import pad_symmetric


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
    first_ffc = blocks[0].body[0].ffc
    assert (first_ffc.in_local, first_ffc.in_global) == (128, 384)
    strided = [m for m in model.down.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.stride, m.padding_mode) for m in strided] == [
        (64, 128, (2, 2), "reflect"), (128, 256, (2, 2), "reflect"), (256, 128, (2, 2), "reflect"),
        (256, 384, (2, 2), "reflect"),  # the last down splits into LaMa's local quarter and global three quarters
    ]
    ups = [m for m in model.up if isinstance(m, nn.ConvTranspose2d)]
    assert len(ups) == 3 and all(m.bias is not None for m in ups)
    stem = model.stem[1].ffc.local_to_local
    assert stem.kernel_size == (7, 7) and stem.in_channels == 4
    assert isinstance(model.head[-1], nn.Sigmoid)


def test_inputs_are_padded_symmetrically_to_a_multiple_of_eight():
    # NumPy's "symmetric" mode, as LaMa's pad_img_to_modulo: the edge pixel repeats (… b c | c b …)
    x = torch.arange(2 * 11 * 13, dtype=torch.float32).view(1, 2, 11, 13)
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 5), (0, 3)), mode="symmetric")
    assert torch.equal(pad_symmetric(x, 8), torch.from_numpy(expected))
    assert torch.equal(pad_symmetric(x[..., :8, :8], 8), x[..., :8, :8])


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
    with pytest.raises(ValueError, match="down_padding"):
        LamaGenerator(ngf=4, n_blocks=1, down_padding="circular")


@pytest.mark.gpu
def test_cuda_bf16_channels_last_any_size():
    model = LamaGenerator(ngf=8, n_blocks=2).cuda().eval().to(memory_format=torch.channels_last)
    image = torch.rand(2, 3, 300, 451, device="cuda").to(memory_format=torch.channels_last)
    mask = (torch.rand(2, 1, 300, 451, device="cuda") > 0.3).float()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(image, mask)
    assert out.shape == image.shape and torch.isfinite(out).all()
