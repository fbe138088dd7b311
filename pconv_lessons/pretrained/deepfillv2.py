"""DeepFill v2's official weights (JiahuiYu/generative_inpainting v2.0.0, TensorFlow) as converted to PyTorch by
nipponjo/deepfillv2-pytorch for its ``model/networks_tf.py`` generator → ``GatedGenerator``.

The file is ``{'G': state_dict}``; every generator layer ``NAME`` of the original holds ``NAME.conv.weight`` and
``NAME.conv.bias`` (``NAME.conv.conv.*`` for the up-sampling layers, whose gated convolution sits inside), and the
key table below maps each original layer name to the course model's module. Its width (``cnum``, 48 in both
releases) is read from the first layer's shape. The model is built with contextual attention's score propagation on
(``fuse=True``), as the TensorFlow code the weights were trained with runs it; nipponjo's ``networks_tf.py`` turns
it off (``fuse=False``): ``load_pretrained(...).refine.attention.fuse = False`` reproduces that.
"""

from __future__ import annotations

import sys
from pathlib import Path

from torch import Tensor

from pconv_lessons.models.gated import GatedGenerator
from pconv_lessons.pretrained.common import PretrainedFileError, check_file, check_range, describe, rename, sub_state
from pconv_lessons.pretrained.reader import read_tensors

_DRIVE = "download from nipponjo/deepfillv2-pytorch's README (Google Drive, id {}), e.g. `gdown {}`"
FILES = {
    "states_tf_places2.pth": _DRIVE.format("1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt", "1tvdQRmkphJK7FYveNAKSMWC6K09hJoyt"),
    "states_tf_celebahq.pth": _DRIVE.format("1fTQVSKWwWcKYnmeemxKWImhVtFQpESmm", "1fTQVSKWwWcKYnmeemxKWImhVtFQpESmm"),
}


def _layers(names: str, module: str) -> dict[str, str]:
    return {name: f"{module}.{index}" for index, name in enumerate(names.split())}


# original layer name → our module (the tensors below it keep their suffix: conv.weight, conv.bias)
KEY_TABLE: dict[str, str] = {
    **_layers("conv1 conv2_downsample conv3 conv4_downsample conv5 conv6 conv7_atrous conv8_atrous conv9_atrous "
              "conv10_atrous conv11 conv12 conv13_upsample conv14 conv15_upsample conv16 conv17", "coarse"),
    **_layers("xconv1 xconv2_downsample xconv3 xconv4_downsample xconv5 xconv6 xconv7_atrous xconv8_atrous "
              "xconv9_atrous xconv10_atrous", "refine.dilated"),
    **_layers("pmconv1 pmconv2_downsample pmconv3 pmconv4_downsample pmconv5 pmconv6", "refine.attention_encoder"),
    **_layers("pmconv9 pmconv10", "refine.attention_decoder"),
    **_layers("allconv11 allconv12 allconv13_upsample allconv14 allconv15_upsample allconv16 allconv17",
              "refine.decoder"),
}


def our_key(key: str) -> str:
    """``conv13_upsample.conv.conv.weight`` → ``coarse.12.conv.conv.weight``; an unknown layer keeps its name (and
    strict loading lists it as unexpected)."""
    layer, _, rest = key.partition(".")
    return f"{KEY_TABLE[layer]}.{rest}" if layer in KEY_TABLE else key


def read(path: Path) -> dict[str, Tensor]:
    """The generator's tensors of a ``{'G': state_dict}`` file, under the original key names."""
    check_file(sys.modules[__name__], path)
    obj = read_tensors(path)
    expected = "nipponjo/deepfillv2-pytorch's {'G': generator state dict}"
    if not isinstance(obj, dict) or "G" not in obj:
        keys = ", ".join(describe(key) for key, _ in zip(obj, range(5))) if isinstance(obj, dict) else describe(obj)
        raise PretrainedFileError(f"{path} is not a deepfillv2 file ({expected}): it holds {keys}")
    return sub_state(obj["G"], "", path, "deepfillv2", expected)


CNUM_RANGE = (4, 256)  # the releases: 48


def build(state: dict[str, Tensor]) -> tuple[GatedGenerator, dict[str, Tensor]]:
    """``GatedGenerator`` sized from ``conv1``'s weight (cnum / 2 outputs, ×2 for the gate; 5 inputs), and the state
    renamed by ``KEY_TABLE``. ``cnum`` must be in ``CNUM_RANGE``."""
    first = state.get("conv1.conv.weight")
    if first is None:
        raise PretrainedFileError(f"no conv1.conv.weight: not a deepfillv2 networks_tf generator "
                                  f"(first keys: {', '.join(describe(key) for key, _ in zip(state, range(5)))})")
    shape = tuple(first.shape)
    sketch = {5: False, 6: True}.get(shape[1]) if len(shape) == 4 and shape[2:] == (5, 5) else None
    if sketch is None or shape[0] % 4:
        raise PretrainedFileError(f"conv1.conv.weight has shape {shape}; expected (cnum, 5, 5, 5) "
                                  "(6 inputs with a sketch channel) with cnum a multiple of 4 (48 in the releases)")
    cnum = check_range(shape[0], f"G.conv1.conv.weight's shape {shape} cnum =", *CNUM_RANGE,
                       "the releases: 48")
    return GatedGenerator(base_channels=cnum, sketch=sketch), rename(state, our_key)
