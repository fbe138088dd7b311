"""The PConv training loss (Liu et al., 2018), term by term.

With I_out the prediction, I_gt the ground truth, M the mask (1 = known, 0 = hole), I_comp = M⊙I_gt + (1−M)⊙I_out
(``pconv_lessons.models.composite``) and Ψ_p the VGG16 feature map after pool p (p = 1, 2, 3; C_p×H_p×W_p):

    valid       = mean( |M ⊙ (I_out − I_gt)| )
    hole        = mean( |(1 − M) ⊙ (I_out − I_gt)| )
    perceptual  = Σ_p mean|Ψ_p(I_out) − Ψ_p(I_gt)|  +  Σ_p mean|Ψ_p(I_comp) − Ψ_p(I_gt)|
    style       = style_out + style_comp,   style_x = Σ_p mean|G_p(I_x) − G_p(I_gt)|,
                  G_p(I) = Ψ_p(I)ᵀ Ψ_p(I) / (C_p·H_p·W_p)                                     (``gram_matrix``)
    tv          = [ Σ_{(i,j),(i,j+1) ∈ P} |I_comp(i,j+1) − I_comp(i,j)|
                  + Σ_{(i,j),(i+1,j) ∈ P} |I_comp(i+1,j) − I_comp(i,j)| ] / (N·C·H·W),
                  P = the hole dilated by one pixel (3×3 square)
    total       = 1·valid + 6·hole + 0.05·perceptual + 120·style + 0.1·tv                 (``PAPER_WEIGHTS``)

Normalisations, and why. Each "mean" runs over every element of the batch — N·C·H·W for the pixel terms,
N·C_p·H_p·W_p for the features, N·C_p·C_p for the Gram matrices — which is the paper's 1/N_Igt, 1/N_Ψp and
1/C_p² per image, averaged over the batch. In particular ``valid`` and ``hole`` are divided by the number of
*all* pixel values, not by the number of known or hole pixels: the hole term then grows with the hole area,
as in the paper, and stays finite (no division by zero) for a mask with no hole or no known pixel. The TV
sum is restricted to pairs of pixels that both lie in P (the paper's region; TV over the whole image, a
known reference bug, would penalise the photo's own texture) but divided by N·C·H·W like the L1 terms, as
the paper's 1/N_Icomp says — dividing by |P| instead would make small holes weigh as much as large ones.
The paper's weights were tuned for these normalisations, which is why we keep them.

Gram matrices are always computed in float32 (also under autocast): a feature map's C×C inner products sum
H·W products of activations that reach the hundreds, far beyond float16's largest value 65504.

``VGG16Features`` holds the first 17 layers of torchvision's VGG16 ``features`` (up to pool3), normalises
its [0, 1] input with the ImageNet mean and standard deviation, is frozen, and stays in eval mode.
``weights="imagenet"`` loads torchvision's IMAGENET1K_V1 weights from the torch hub cache
(``<torch hub dir>/checkpoints/vgg16-397923af.pth``) and downloads them there only when absent;
``weights=None`` keeps a random initialisation (fast mode, offline), announced by a warning;
``weights=<path>`` loads a state dict file (torchvision's full VGG16 or just the ``features.*`` entries).

GAN hinge losses (Lim & Ye, 2017; SN-PatchGAN in DeepFill v2), on discriminator scores of any shape:

    hinge_d = mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))
    hinge_g = −mean(D(fake))
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pconv_lessons.validation import check_batch, check_dtype, check_image_values, check_mask, check_not_empty
from pconv_lessons.models.compositing import composite

VGG16_IMAGENET_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's VGG16 ``features`` up to pool3: channels of each conv, "M" for a 2×2 max pool.
VGG16_POOL3_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
VGG16_MIN_SIZE = 8  # three 2×2 poolings: the smallest input with a 1×1 pool3
PAPER_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}
)
LOSS_TERMS = ("valid", "hole", "perceptual", "style", "tv")


def vgg16_cache_path() -> Path:
    """Where torchvision keeps the ImageNet VGG16 weights: ``<torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(VGG16_IMAGENET_URL)


class FrozenNetwork(nn.Module):
    """A fixed feature network for a loss: no gradients for its weights, and always in eval mode."""

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenNetwork:
        """Stays in eval mode whatever ``mode`` says: the loss network is fixed."""
        return super().train(False)


class VGG16Features(FrozenNetwork):
    """VGG16's feature maps after pool1, pool2 and pool3 for images in [0, 1]; frozen and always in eval mode.

    ``weights``: ``"imagenet"`` (torch cache, else download), ``None`` (random init, with a warning) or a path.
    ``forward(images)`` with images (N, 3, H, W) returns ``(pool1, pool2, pool3)``: (N, 64, H/2, W/2),
    (N, 128, H/4, W/4), (N, 256, H/8, W/8). Gradients flow to the images, never to the weights.
    """

    def __init__(self, weights: str | os.PathLike | None) -> None:
        super().__init__()
        self.features, self.pool_indices = _vgg16_up_to_pool3()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is None:
            warnings.warn(
                "VGG16Features(weights=None): random-init VGG16, not the ImageNet weights, so the perceptual and "
                "style losses compare random features (fine for fast mode and offline tests; use "
                "weights='imagenet' to train for real)",
                UserWarning,
                stacklevel=2,
            )
            self.weights_source = "random init"
        elif isinstance(weights, str) and weights == "imagenet":
            path = vgg16_cache_path()
            if not path.is_file():
                _download_vgg16(path)
            self._load(path)
            self.weights_source = "imagenet"
        else:
            self._load(Path(weights))
            self.weights_source = str(weights)
        self.freeze()

    def _load(self, path: Path) -> None:
        state = load_vgg16_state_dict(path)
        own = self.features.state_dict()
        wanted = {f"features.{key}": key for key in own}
        missing = sorted(name for name in wanted if name not in state)
        if missing:
            raise ValueError(f"VGG16 weights file {path} lacks {missing}; expected torchvision's VGG16 state dict")
        for name, key in wanted.items():
            if state[name].shape != own[key].shape:
                raise ValueError(
                    f"VGG16 weights file {path}: {name} has shape {tuple(state[name].shape)}, "
                    f"expected {tuple(own[key].shape)}"
                )
        self.features.load_state_dict({key: state[name] for name, key in wanted.items()})

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_batch(images, "images")
        if images.shape[1] != 3:
            raise ValueError(f"VGG16Features needs RGB images (N, 3, H, W), got shape {tuple(images.shape)}")
        if min(images.shape[-2:]) < VGG16_MIN_SIZE:
            raise ValueError(
                f"VGG16Features needs images at least {VGG16_MIN_SIZE}×{VGG16_MIN_SIZE} (pool3 halves the size three "
                f"times), got {tuple(images.shape[-2:])}"
            )
        check_dtype(images, self, "images")
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        pools = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.pool_indices:
                pools.append(x)
        return tuple(pools)


def _vgg16_up_to_pool3() -> tuple[nn.Sequential, tuple[int, ...]]:
    """torchvision's ``vgg16().features[:17]`` (same indices, so state dict keys match) and the pool indices."""
    layers: list[nn.Module] = []
    pool_indices = []
    in_channels = 3
    for item in VGG16_POOL3_LAYOUT:
        if item == "M":
            pool_indices.append(len(layers))
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_channels = item
    return nn.Sequential(*layers), tuple(pool_indices)


def load_vgg16_state_dict(path: Path) -> Mapping[str, Tensor]:
    """Read a VGG16 state dict file; a missing or unreadable file raises ``ValueError`` naming it."""
    if not path.is_file():
        raise ValueError(
            f"VGG16 weights file not found: {path}; copy torchvision's {os.path.basename(VGG16_IMAGENET_URL)} "
            "there, or use weights=None (random init) offline"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many kinds (pickle, zip, EOF) for a corrupt file
        raise ValueError(f"cannot read VGG16 weights file {path}: {error}") from error
    if not isinstance(state, Mapping):
        raise ValueError(f"VGG16 weights file {path} holds a {type(state).__name__}, expected a state dict")
    return state


def _download_vgg16(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(VGG16_IMAGENET_URL, str(path), hash_prefix="397923af", progress=True)
    except Exception as error:  # no network, proxy, disk full, hash mismatch: all end the same way
        raise RuntimeError(
            f"could not download the ImageNet VGG16 weights from {VGG16_IMAGENET_URL} to {path} ({error}); "
            "copy the file there by hand, or use weights=None (random init) offline"
        ) from error


def gram_matrix(features: Tensor) -> Tensor:
    """Gram matrix ΨᵀΨ / (C·H·W) of features (N, C, H, W) → (N, C, C), computed in float32 also under autocast."""
    check_batch(features, "features")
    n_batch, channels, height, width = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.float().reshape(n_batch, channels, height * width)
        return torch.bmm(flat, flat.transpose(1, 2)) / (channels * height * width)


def hole_border_region(mask: Tensor) -> Tensor:
    """P: the hole (mask == 0) dilated by one pixel with a 3×3 square, as 1.0 inside P and 0.0 outside."""
    hole = 1.0 - mask.float()
    return F.max_pool2d(hole, kernel_size=3, stride=1, padding=1)


def total_variation_in_region(image: Tensor, region: Tensor) -> Tensor:
    """Σ |horizontal| + Σ |vertical| neighbour differences over pairs with both pixels in ``region``, / image.numel()."""
    check_not_empty(image, "image")
    image = image.float()
    region = region.float()
    horizontal = (image[..., :, 1:] - image[..., :, :-1]).abs() * (region[..., :, 1:] * region[..., :, :-1])
    vertical = (image[..., 1:, :] - image[..., :-1, :]).abs() * (region[..., 1:, :] * region[..., :-1, :])
    return (horizontal.sum() + vertical.sum()) / image.numel()


class InpaintingLoss(nn.Module):
    """The PConv loss; ``loss(output, target, mask)`` returns a dict of float32 scalars.

    Keys ``valid, hole, perceptual, style, tv`` (each term unweighted) and ``total`` (their weighted sum).
    ``extractor``: a module mapping images (N, 3, H, W) in [0, 1] to a sequence of feature maps, normally
    ``VGG16Features``. ``weights``: overrides of ``PAPER_WEIGHTS`` (1, 6, 0.05, 120, 0.1), e.g. ``{"style": 250}``.
    ``mask``: (N, 1, H, W) or (N, 3, H, W), 1 = known, 0 = hole. ``target`` must be finite and in [0, 1]; ``output``
    is the raw prediction (any real values). Set ``check_mask_values = False`` to skip the value checks of the mask
    and the target (each a device sync on a GPU) when they are known to be valid. An empty batch is an error.
    """

    def __init__(self, extractor: nn.Module, weights: Mapping[str, float] | None = None) -> None:
        super().__init__()
        unknown = sorted(set(weights or {}) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(f"unknown loss weight(s) {unknown}; the terms are {list(LOSS_TERMS)}")
        self.extractor = extractor
        self.weights = {**PAPER_WEIGHTS, **(weights or {})}
        self.check_mask_values = True

    def forward(self, output: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        check_batch(output, "output")
        check_batch(target, "target")
        if output.shape != target.shape:
            raise ValueError(f"output shape {tuple(output.shape)} does not match target shape {tuple(target.shape)}")
        if output.shape[1] != 3:
            raise ValueError(f"output and target must be RGB (N, 3, H, W), got shape {tuple(output.shape)}")
        check_not_empty(output, "output")
        check_mask(mask, target, (1, 3), values=self.check_mask_values)
        if isinstance(self.extractor, nn.Module):
            check_dtype(output, self.extractor, "output")
        if self.check_mask_values:
            check_image_values(target, "target", (0.0, 1.0))

        output32, target32, known = output.float(), target.float(), mask.float()
        comp = composite(output32, target32, known, check_values=False)  # the mask was checked above
        terms = {
            "valid": (known * (output32 - target32)).abs().mean(),
            "hole": ((1 - known) * (output32 - target32)).abs().mean(),
        }
        n_batch = output.shape[0]
        # One pass of the loss network over I_out, I_comp and I_gt together.
        features = self.extractor(torch.cat([output, comp.to(output.dtype), target.to(output.dtype)]))
        perceptual = output32.new_zeros(())
        style = output32.new_zeros(())
        for feature in features:
            out_f, comp_f, target_f = feature.float().split(n_batch)
            perceptual = perceptual + (out_f - target_f).abs().mean() + (comp_f - target_f).abs().mean()
            target_gram = gram_matrix(target_f)
            style = style + (gram_matrix(out_f) - target_gram).abs().mean()
            style = style + (gram_matrix(comp_f) - target_gram).abs().mean()
        terms["perceptual"] = perceptual
        terms["style"] = style
        terms["tv"] = total_variation_in_region(comp, hole_border_region(known))
        terms["total"] = sum(self.weights[name] * terms[name] for name in LOSS_TERMS)
        return terms


def hinge_d_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Discriminator hinge loss: zero once real scores are ≥ 1 and fake scores ≤ −1."""
    _check_scores(real_scores, "real_scores")
    _check_scores(fake_scores, "fake_scores")
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def hinge_g_loss(fake_scores: Tensor) -> Tensor:
    """Generator hinge loss: the negated mean score the discriminator gives the generator's images."""
    _check_scores(fake_scores, "fake_scores")
    return -fake_scores.mean()


def _check_scores(scores: Tensor, name: str) -> None:
    if not isinstance(scores, Tensor) or not scores.is_floating_point() or scores.numel() == 0:
        shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"{name} must be a non-empty floating tensor of discriminator scores, got {shape}")


__all__ = [
    "InpaintingLoss",
    "PAPER_WEIGHTS",
    "VGG16Features",
    "gram_matrix",
    "hinge_d_loss",
    "hinge_g_loss",
    "hole_border_region",
    "total_variation_in_region",
    "vgg16_cache_path",
]
