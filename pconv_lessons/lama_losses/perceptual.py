"""LaMa's high-receptive-field perceptual loss ("ResNetPL", weight 30 in big-lama.yaml).

A perceptual loss compares images through a fixed network's features. LaMa's network sees far: the encoder of
a semantic-segmentation model trained on ADE20k (CSAIL's ``resnet50dilated``), a ResNet-50 whose last two
stages trade their stride for dilation, so the features stay at 1/8 of the image size while the receptive field
keeps growing. With φ_1…φ_4 its four stage outputs (256, 512, 1024, 2048 channels at 1/4, 1/8, 1/8, 1/8 size)
and normalise(I) = (I − ImageNet mean) / ImageNet std:

    L_HRFPL = Σ_{k=1}^{4} mean( (φ_k(normalise(ŷ)) − φ_k(normalise(x)))² )

The encoder (``DilatedResNet50``): a deep stem — 3×3 conv stride 2 (3→64), 3×3 conv (64→64), 3×3 conv (64→128),
each with BN and ReLU — and a 3×3 stride-2 max pool, then ResNet-50's bottleneck stages [3, 4, 6, 3] (widths
64, 128, 256, 512, ×4 out); stage 3 has stride 1 and dilation 2 (its first block dilation 1), stage 4 stride 1
and dilation 4 (first block 2) — exactly what CSAIL's ``ResnetDilated(dilate_scale=8)`` makes of its ResNet-50.
Its state-dict keys are those of the released ``ade20k-resnet50dilated-ppm_deepsup/encoder_epoch_20.pth``
(``conv1.weight`` … ``layer4.2.bn3.running_var``), so ``weights=<that file>`` loads it 1:1; ``weights=None`` keeps a
random initialisation (offline, fast mode), announced by a warning. Frozen, always in eval mode.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

from pconv_lessons.validation import check_dtype, check_image
from pconv_lessons.losses import FrozenNetwork

LAMA_RESNET_PL_WEIGHT = 30.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAGES = ((64, 3, 1, 1), (128, 4, 2, 1), (256, 6, 1, 2), (512, 3, 1, 4))  # width, blocks, stride, dilation


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.ReLU]:
    return nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)


def _stage(c_in: int, width: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    """Bottleneck blocks; the first one changes width (1×1 projection) and carries half the dilation, if any."""
    out = width * Bottleneck.expansion
    projection = nn.Sequential(nn.Conv2d(c_in, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    first = Bottleneck(c_in, width, stride, projection, dilation=max(dilation // 2, 1))
    return nn.Sequential(first, *[Bottleneck(out, width, dilation=dilation) for _ in range(blocks - 1)])


class DilatedResNet50(nn.Module):
    """CSAIL's ADE20k ``resnet50dilated`` encoder; ``forward(x)`` returns the four stage outputs (see module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = _conv_bn_relu(3, 64, stride=2)
        self.conv2, self.bn2, self.relu2 = _conv_bn_relu(64, 64)
        self.conv3, self.bn3, self.relu3 = _conv_bn_relu(64, 128)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c_in = 128
        for index, (width, blocks, stride, dilation) in enumerate(STAGES, start=1):
            setattr(self, f"layer{index}", _stage(c_in, width, blocks, stride, dilation))
            c_in = width * Bottleneck.expansion

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.maxpool(self.relu3(self.bn3(self.conv3(x))))
        features = []
        for index in range(1, len(STAGES) + 1):
            x = getattr(self, f"layer{index}")(x)
            features.append(x)
        return features


class ResNetPerceptualLoss(FrozenNetwork):
    """L_HRFPL(prediction, target) on ``DilatedResNet50`` features; images (N, 3, H, W) in [0, 1].

    ``weights``: None (random init, with a warning) or the path of the ADE20k encoder state dict
    (``encoder_epoch_20.pth``; a file saved from ``DilatedResNet50().state_dict()`` works too). Returns the
    unweighted loss (LaMa multiplies by 30). Gradients flow to the prediction, never to the weights.
    """

    def __init__(self, weights: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.encoder = DilatedResNet50()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is None:
            warnings.warn(
                "ResNetPerceptualLoss(weights=None): random-init dilated ResNet-50, not LaMa's ADE20k segmentation "
                "encoder, so the loss compares random features (fine offline; pass encoder_epoch_20.pth to train for real)",
                UserWarning,
                stacklevel=2,
            )
            self.weights_source = "random init"
        else:
            self._load(Path(weights))
            self.weights_source = str(weights)
        self.freeze()

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise ValueError(f"weights must be the ADE20k encoder state dict file, {path} does not exist")
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.encoder.state_dict()
        missing = sorted(set(own) - set(state))
        wrong = sorted(key for key in own if key in state and state[key].shape != own[key].shape)
        if missing or wrong:
            raise ValueError(f"{path} is not a resnet50dilated encoder state dict: missing {missing[:5]}, "
                             f"wrong shapes {wrong[:5]}")
        self.encoder.load_state_dict({key: state[key] for key in own})

    def features(self, images: Tensor) -> list[Tensor]:
        check_image(images, "images", channels=3)
        check_dtype(images, self, "images")
        return self.encoder((images - self.mean.to(images.dtype)) / self.std.to(images.dtype))

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must match")
        pairs = zip(self.features(prediction), self.features(target))
        return torch.stack([(mine - theirs).pow(2).mean() for mine, theirs in pairs]).sum()
