"""LaMa's generator (Suvorov et al., 2022, "Resolution-robust Large Mask Inpainting with Fourier Convolutions").

LaMa's own mask convention is 1 = hole; the course's is 1 = known. At the interface, with m the course mask
and h = 1 − m the hole, the network sees what LaMa's ``bin/predict.py`` feeds its generator:

    x = [ image ⊙ (1 − h) ; h ]                      (N, 4, H, W), image in [0, 1]
    x ← symmetric padding at the bottom and right to a multiple of 8 (``np.pad(mode="symmetric")``: a b c | c b a)

and computes, at width ``ngf`` (64 in the paper), the layers of LaMa's ``FFCResNetGenerator`` in order:

    stem   reflect-pad 3, FFC-BN-ReLU 7×7, 4 → ngf                   (all local: a conv, BN, ReLU)
    down   3 × FFC-BN-ReLU 3×3 stride 2, reflect padding 1          ngf → 2ngf → 4ngf → 8ngf, at H/8 × W/8;
           the last one splits its output: a local (1 − ratio) share and a global ratio share, each with its BN
    body   n_blocks × FFCResnetBlock(8ngf, ratio 0.75)              (9 in LaMa, 18 in Big LaMa)
    up     3 × (3×3 transposed conv stride 2 with bias, BN, ReLU)    8ngf → 4ngf → 2ngf → ngf
    head   reflect-pad 3, 7×7 conv ngf → 3 (with bias), sigmoid

and crops the prediction back to H × W. The Fourier units see the whole H/8 × W/8 map, which is what lets a
model trained at 256² fill large holes at 512² and beyond. (LaMa caps every width at 1024 channels; the course's
widths are never capped, which is the same for ngf ≤ 128.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pconv_lessons.validation import check_inpainting_input, check_int
from pconv_lessons.layers.ffc import FFCBNAct, FFCResnetBlock

DOWNSAMPLING_STEPS = 3
MULTIPLE = 2**DOWNSAMPLING_STEPS
MIN_SIZE = 2 * MULTIPLE  # the bottleneck must be at least 2×2 for its reflect padding


def pad_symmetric(x: Tensor, multiple: int) -> Tensor:
    """``x`` padded at the bottom and right to a multiple of ``multiple`` by mirroring that repeats the edge pixel
    (NumPy's ``mode="symmetric"``, as LaMa's ``pad_img_to_modulo``): rows a b c become a b c | c b a."""
    pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    x = torch.cat([x, x.flip(-2)[..., :pad_h, :]], dim=-2)
    return torch.cat([x, x.flip(-1)[..., :pad_w]], dim=-1)


class LamaGenerator(nn.Module):
    """FFC ResNet inpainting generator; ``forward(image, mask)`` → prediction (N, 3, H, W) in [0, 1].

    ``image`` (N, 3, H, W) in [0, 1]; ``mask`` (N, 1, H, W) with 1 = known pixel, 0 = hole (the course convention;
    the conversion to LaMa's 1 = hole happens inside). ``ngf`` is the stem width (64 in the paper), ``n_blocks``
    the number of FFC ResNet blocks (9 in the paper), ``ratio`` their global channel share (0.75).
    ``down_padding`` pads the stride-2 down-sampling convs: "reflect" as LaMa, or "zeros" (the course's shipped
    ``lama_small.pt`` was trained so). The output is the raw prediction everywhere; composite it with the known pixels yourself.
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 9, ratio: float = 0.75, down_padding: str = "reflect") -> None:
        super().__init__()
        ngf, n_blocks = check_int(ngf, "ngf", 1), check_int(n_blocks, "n_blocks", 0)
        if down_padding not in ("reflect", "zeros"):
            raise ValueError(f"down_padding must be 'reflect' (LaMa) or 'zeros', got {down_padding!r}")
        self.ngf, self.n_blocks, self.ratio, self.down_padding = ngf, n_blocks, ratio, down_padding
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), FFCBNAct(4, ngf, 7, 0.0, 0.0))
        self.down = nn.Sequential(*[
            FFCBNAct(ngf * 2**step, ngf * 2 ** (step + 1), 3, 0.0, ratio if step == DOWNSAMPLING_STEPS - 1 else 0.0,
                     stride=2, padding=1, padding_mode=down_padding)
            for step in range(DOWNSAMPLING_STEPS)
        ])
        width = ngf * MULTIPLE
        self.body = nn.Sequential(*[FFCResnetBlock(width, ratio) for _ in range(n_blocks)])
        up_layers: list[nn.Module] = []
        for step in range(DOWNSAMPLING_STEPS, 0, -1):
            c_in, c_out = ngf * 2**step, ngf * 2 ** (step - 1)
            up_layers += [
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
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
        x = pad_symmetric(torch.cat([torch.where(hole < 1, image * (1.0 - hole), 0.0), hole], dim=1), MULTIPLE)
        out = self.head(self.up(self.body(self.down(self.stem(x)))))
        return out[..., :height, :width]
