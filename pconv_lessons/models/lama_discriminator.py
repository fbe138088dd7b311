"""LaMa's discriminator: pix2pixHD's n-layer PatchGAN (``configs/training/discriminator/pix2pixhd_nlayer.yaml``).

With c(k, s) a 4×4 conv with stride s and padding 2, ndf = 64 and n_layers = 4 (LaMa's settings):

    stage 0           c(3 → ndf, s=2), LeakyReLU 0.2
    stage 1…n−1       c(→ min(2·prev, 512), s=2), BN, LeakyReLU 0.2
    stage n           c(→ min(2·prev, 512), s=1), BN, LeakyReLU 0.2
    stage n+1         c(→ 1, s=1)                                   per-patch logits

``forward(images)`` returns ``(scores, features)``: the logits (N, 1, h, w) and the outputs of every stage
but the last (the feature-matching loss compares these). LaMa's discriminator sees the image alone, no mask.
Stage i holds the layers of LaMa's ``model{i}``, so its weights map 1:1 (``model3.0.weight`` ↔ ``stages.3.0.weight``).
"""

from __future__ import annotations

from torch import Tensor, nn

from pconv_lessons.validation import check_image, check_int

KERNEL, PADDING, MAX_WIDTH = 4, 2, 512


class NLayerDiscriminator(nn.Module):
    """pix2pixHD PatchGAN returning its logits and intermediate features (see module docstring)."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        in_channels, ndf = check_int(in_channels, "in_channels", 1), check_int(ndf, "ndf", 1)
        n_layers = check_int(n_layers, "n_layers", 1)
        self.in_channels = in_channels
        stages = [nn.Sequential(nn.Conv2d(in_channels, ndf, KERNEL, 2, PADDING), nn.LeakyReLU(0.2, True))]
        width = ndf
        for index in range(1, n_layers + 1):
            previous, width = width, min(width * 2, MAX_WIDTH)
            stride = 2 if index < n_layers else 1
            stages.append(nn.Sequential(nn.Conv2d(previous, width, KERNEL, stride, PADDING), nn.BatchNorm2d(width),
                                        nn.LeakyReLU(0.2, True)))
        stages.append(nn.Sequential(nn.Conv2d(width, 1, KERNEL, 1, PADDING)))
        self.stages = nn.ModuleList(stages)

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        check_image(images, "images", channels=self.in_channels, value_range=None, values=False)
        features = []
        x = images
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features[-1], features[:-1]
