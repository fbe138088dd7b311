"""mmagic's (OpenMMLab) released PConv generator, trained on Places365 at 256², as a ``PConvUNet``.

The file is an mmagic / MMEditing checkpoint ``{'meta': …, 'state_dict': …}``: the generator's tensors sit under
``generator.`` (``encoder.enc<k>`` and ``decoder.dec<k>``, each a partial convolution ``conv`` with an optional
BatchNorm ``bn``), beside the perceptual loss's VGG16 (``loss_percep.…``), which the course does not need.

mmagic's network is the paper's, as is ``PConvUNet``: the same kernels, widths, BatchNorm placement, ReLU /
LeakyReLU(0.2), nearest up-sampling, and skip concatenation of features then masks (up-sampled first). Its
partial convolutions all take multi-channel masks and compute ``sum(1) / (sum(M) + 1e-8)`` and the update
``clamp(sum(M), 0, 1)``; for the binary masks it is fed that is ours (every channel of a mask agrees, and float32
drops the 1e-8). Each of its convolutions also stores its all-ones mask kernel (``weight_mask_updater``), which
ours builds itself: the file's must be all ones. What differs is at the edges, and
``PConvUNet(convention="mmagic")`` does it inside the model: mmagic's network sees BGR in [-1, 1]; its masks are
binary (its ``LoadMask`` makes every hole value > 0 a hole, so a soft course mask is known only where it is 1);
its prediction is clamped; and it runs only sizes that are multiples of 2^layers (2^7 = 128 for this file), where
``PConvUNet`` pads any other size with hole and crops back. Its data-level masks are 1 = hole; its generator, like
ours, gets 1 = known.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor

from pconv_lessons.models import PConvUNet
from pconv_lessons.pretrained.common import (
    PretrainedFileError,
    check_file,
    check_range,
    describe,
    index_of,
    rename,
    sub_state,
)
from pconv_lessons.pretrained.reader import read_tensors

FILES = {
    "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth": "mmagic's configs/partial_conv/README.md, "
    "https://download.openmmlab.com/mmediting/inpainting/pconv/pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
}

EXPECTED = "mmagic's PConv checkpoint: {'meta', 'state_dict'} with generator.encoder.enc1.conv.weight …"
MASK_KERNEL = "weight_mask_updater"

# official key (under ``generator.``)          → ours; k counts from 1, L = layer_size
#   encoder.enc<k>.conv.weight|bias            → encoder.<k-1>.conv.…
#   encoder.enc<k>.bn.<p>                      → encoder.<k-1>.norm.<p>
#   decoder.dec<k>.conv.weight|bias            → decoder.<L-k>.conv.…
#   decoder.dec<k>.bn.<p>                      → decoder.<L-k>.norm.<p>
#   <…>.conv.weight_mask_updater               → dropped (all ones; ours is built in)
#   anything else                              → kept as it is, so that strict loading lists it as unexpected
KEY = re.compile(r"(?P<part>enc|dec)oder\.(?P=part)(?P<k>\d+)\.(?P<module>conv|bn)\.(?P<name>\w+)")
MODULES = {"conv": "conv", "bn": "norm"}


def our_key(key: str, layer_size: int) -> str | None:
    """The key table above, applied to one official key (``None``: a tensor the course model builds itself)."""
    found = KEY.fullmatch(key)
    if found is None:
        return key
    if found["name"] == MASK_KERNEL:
        return None
    k = int(found["k"])
    index = k - 1 if found["part"] == "enc" else layer_size - k
    return f"{found['part']}oder.{index}.{MODULES[found['module']]}.{found['name']}"


def read(path: Path) -> dict[str, Tensor]:
    """The generator's tensors of an mmagic PConv checkpoint, under mmagic's names (``generator.`` removed)."""
    check_file(sys.modules[__name__], path)
    checkpoint = read_tensors(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else checkpoint
    generator = sub_state(state, "generator.", path, "pconv", EXPECTED)
    if "encoder.enc1.conv.weight" not in generator:
        sample = ", ".join(describe(key) for key, _ in zip(generator, range(5)))
        raise PretrainedFileError(
            f"{path}: its generator has no encoder.enc1.conv.weight, so it is not {EXPECTED}; "
            f"its first generator keys are: {sample}"
        )
    return generator


LAYERS_RANGE = (1, 12)      # the release: 7 (PConvUNet's own limit: 12)
BASE_CHANNELS_RANGE = (1, 256)  # the release: 64


def build(state: Mapping[str, Tensor]) -> tuple[PConvUNet, dict[str, Tensor]]:
    """A ``PConvUNet(convention="mmagic")`` sized from the tensors (``layer_size`` = the number of ``enc<k>``
    levels, all present, in ``LAYERS_RANGE``; ``base_channels`` = enc1's width, in ``BASE_CHANNELS_RANGE``), and
    ``state`` renamed by the key table; the stored mask kernels are checked against the model (``check_mask_kernels``)."""
    levels = {index_of(found["k"], key, "encoder level") for key in state
              if (found := KEY.fullmatch(key)) and found["part"] == "enc" and found["name"] == "weight"}
    deepest = max(levels, default=0)
    layer_size = check_range(deepest, f"generator.encoder.enc{deepest} (the deepest level) layer_size =",
                             *LAYERS_RANGE, "the release: 7")
    if levels != set(range(1, layer_size + 1)):
        raise PretrainedFileError(f"encoder levels {sorted(set(range(1, layer_size + 1)) - levels)} are missing "
                                  f"although enc{layer_size} is there")
    first = state["encoder.enc1.conv.weight"]
    if first.dim() != 4:
        raise PretrainedFileError(f"encoder.enc1.conv.weight has shape {tuple(first.shape)}; a conv weight has 4 "
                                  "dimensions")
    base_channels = check_range(first.shape[0], f"generator.encoder.enc1.conv.weight's shape {tuple(first.shape)} "
                                "base_channels =", *BASE_CHANNELS_RANGE, "the release: 64")
    model = PConvUNet(layer_size=layer_size, base_channels=base_channels, convention="mmagic")
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    check_mask_kernels(state, lambda key: shapes.get(our_key(key, layer_size)))
    return model, rename(state, lambda key: our_key(key, layer_size))


def check_mask_kernels(state: Mapping[str, Tensor], model_shape: Callable[[str], torch.Size | None]) -> None:
    """Every stored mask kernel must have the shape the model gives its convolution's weight
    (``model_shape(official weight key)``) and be all ones: ours is, and the file's are dropped. The shape is
    checked first: a stride-0 view can claim 10¹⁰ elements in a few bytes."""
    for key, kernel in state.items():
        if not key.endswith(MASK_KERNEL):
            continue
        expected = model_shape(key.removesuffix(MASK_KERNEL) + "weight")
        if expected is None or kernel.shape != expected:
            wanted = "no weight of the model beside it" if expected is None else f"the model's {tuple(expected)}"
            raise PretrainedFileError(f"generator.{key} has shape {tuple(kernel.shape)}; expected {wanted}")
        if not torch.all(kernel == 1):
            raise PretrainedFileError(
                f"generator.{key} must be all ones (the partial convolution's window count), "
                f"got values in [{float(kernel.min()):g}, {float(kernel.max()):g}]"
            )
