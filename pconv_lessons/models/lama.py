"""LaMa's generator (Suvorov et al., 2022, "Resolution-robust Large Mask Inpainting with Fourier Convolutions").

LaMa's own mask convention is 1 = hole; the course's is 1 = known. At the interface, with m the course mask
and h = 1 − m the hole, the network sees four channels

    x = [ image ⊙ (1 − h) ; h ]                      (N, 4, H, W)

and computes, at width ``ngf`` (64 in the paper):

    stem   reflect-pad 3, 7×7 conv 4 → ngf, BN, ReLU
    down   3 × (3×3 conv stride 2, BN, ReLU)         ngf → 2ngf → 4ngf → 8ngf, at H/8 × W/8
    body   n_blocks × FFCResnetBlock(8ngf, ratio 0.75)   (9 in LaMa, 18 in Big LaMa)
    up     3 × (3×3 transposed conv stride 2, BN, ReLU)  8ngf → 4ngf → 2ngf → ngf
    head   reflect-pad 3, 7×7 conv ngf → 3, sigmoid

The last down-sampling conv feeds the first FFC, which splits its channels into a local quarter and a global
three quarters (LaMa writes that split into its last down-sampling FFC; a conv followed by a channel split is
the same computation). The Fourier units see the whole H/8 × W/8 map, which is what lets a model trained at
256² fill large holes at 512² and beyond. Inputs of any size work: the image is reflect-padded to a multiple
of 8 and the prediction cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons.checks import check_inpainting_input, check_int
from pconv_lessons.layers.ffc import FFCResnetBlock

DOWNSAMPLING_STEPS = 3
MULTIPLE = 2**DOWNSAMPLING_STEPS
MIN_SIZE = 2 * MULTIPLE  # the bottleneck must be at least 2×2 for its reflect padding


def _conv_bn_relu(c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int = 0) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class LamaGenerator(nn.Module):
    """FFC ResNet inpainting generator; ``forward(image, mask)`` → prediction (N, 3, H, W) in [0, 1].

    ``image`` (N, 3, H, W) in [0, 1]; ``mask`` (N, 1, H, W) with 1 = known pixel, 0 = hole (the course convention;
    the conversion to LaMa's 1 = hole happens inside). ``ngf`` is the stem width (64 in the paper), ``n_blocks``
    the number of FFC ResNet blocks (9 in the paper), ``ratio`` their global channel share (0.75).
    The output is the raw prediction everywhere; composite it with the known pixels yourself.
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 9, ratio: float = 0.75) -> None:
        super().__init__()
        ngf, n_blocks = check_int(ngf, "ngf", 1), check_int(n_blocks, "n_blocks", 0)
        self.ngf, self.n_blocks, self.ratio = ngf, n_blocks, ratio
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), *_conv_bn_relu(4, ngf, 7))
        self.down = nn.Sequential(
            *[
                layer
                for step in range(DOWNSAMPLING_STEPS)
                for layer in _conv_bn_relu(ngf * 2**step, ngf * 2 ** (step + 1), 3, stride=2, padding=1)
            ]
        )
        width = ngf * MULTIPLE
        self.body = nn.Sequential(*[FFCResnetBlock(width, ratio) for _ in range(n_blocks)])
        up_layers: list[nn.Module] = []
        for step in range(DOWNSAMPLING_STEPS, 0, -1):
            c_in, c_out = ngf * 2**step, ngf * 2 ** (step - 1)
            up_layers += [
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(True),
            ]
        self.up = nn.Sequential(*up_layers)
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid())

    def extra_repr(self) -> str:
        return f"ngf={self.ngf}, n_blocks={self.n_blocks}, ratio={self.ratio}"

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        check_inpainting_input(self, image, mask)
        height, width = image.shape[-2:]
        if height < MIN_SIZE or width < MIN_SIZE:
            raise ValueError(f"image must be at least {MIN_SIZE}×{MIN_SIZE}, got {height}×{width}")
        hole = 1.0 - mask.to(image.dtype)
        x = torch.cat([torch.where(hole < 1, image * (1.0 - hole), 0.0), hole], dim=1)  # select: holes never leak
        pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        out = self.head(self.up(self.body(self.down(self.stem(x)))))
        return out[..., :height, :width]
