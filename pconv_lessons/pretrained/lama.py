"""advimman/lama's released generators (Big LaMa, LaMa-Fourier) → ``LamaGenerator``.

A released ``best.ckpt`` is a PyTorch Lightning checkpoint of LaMa's whole training module: besides the generator
it holds the discriminator, the evaluator's and the perceptual loss's networks and OmegaConf hyper-parameters.
Only the tensors under ``state_dict["generator.model.<i>. …"]`` are read; ``<i>`` is the position in LaMa's
``FFCResNetGenerator.model`` sequence, which moves with the number of blocks n:

    0 reflect pad · 1 stem · 2, 3, 4 downs · 5 … 4+n FFC ResNet blocks · 5+n ConcatTupleLayer
    6+n … 14+n ups (transposed conv, BN, ReLU) ×3 · 15+n reflect pad · 16+n head conv · 17+n sigmoid

``ngf`` is read from the stem conv, ``n_blocks`` from the highest block index and the global share from the
first block's local conv, so Big LaMa (18 blocks), LaMa-Fourier (9) and any other width load alike.
Our layers compute what LaMa's do (see ``pconv_lessons.layers.ffc``), so the key table below is a pure renaming:
no tensor is permuted, split or reshaped.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from pconv_lessons.layers.ffc import global_channels
from pconv_lessons.models.lama import DOWNSAMPLING_STEPS, MULTIPLE, LamaGenerator
from pconv_lessons.pretrained import common, reader

FILES = {
    "big-lama/models/best.ckpt": "curl -LJO https://huggingface.co/smartywu/big-lama/resolve/main/big-lama.zip "
                                 "&& unzip big-lama.zip (advimman/lama's README)",
    "lama-fourier/models/best.ckpt": "unzip lama-models.zip from the authors' Google Drive folder "
                                     "https://drive.google.com/drive/folders/1B2x7eQDgecTL0oh3LSIBDGj0fTxs6Ips",
}
PREFIX = "generator.model."

# The key table. A LaMa key reads  <layer index>[.conv1|.conv2].<module path>.<tensor name>;
# each part is renamed by its own rows, the tensor name (weight, bias, running_mean, …) is kept.
BLOCK_MEMBERS = {"conv1": "body.0", "conv2": "body.1"}  # FFCResnetBlock's two FFC_BN_ACTs
FFC_BN_ACT_MODULES = {  # inside an FFC_BN_ACT (the stem, the downs, each block member)
    "ffc.convl2l": "ffc.local_to_local",
    "ffc.convl2g": "ffc.local_to_global",
    "ffc.convg2l": "ffc.global_to_local",
    "ffc.convg2g.conv1.0": "ffc.global_to_global.reduce.0",
    "ffc.convg2g.conv1.1": "ffc.global_to_global.reduce.1",
    "ffc.convg2g.fu.conv_layer": "ffc.global_to_global.fourier.conv",
    "ffc.convg2g.fu.bn": "ffc.global_to_global.fourier.bn",
    "ffc.convg2g.conv2": "ffc.global_to_global.expand",
    "bn_l": "bn_local",
    "bn_g": "bn_global",
}
KEY = re.compile(r"(?P<index>\d+)\.(?:(?P<member>conv[12])\.)?(?:(?P<module>.+)\.)?(?P<tensor>[^.]+)")


def layer_name(index: int, n_blocks: int) -> str | None:
    """Our module for position ``index`` of LaMa's ``FFCResNetGenerator.model`` (None: a layer without tensors)."""
    first_up = 5 + n_blocks + 1
    if index == 1:
        return "stem.1"
    if 2 <= index < 2 + DOWNSAMPLING_STEPS:
        return f"down.{index - 2}"
    if 5 <= index < 5 + n_blocks:
        return f"body.{index - 5}"
    if first_up <= index < first_up + 3 * DOWNSAMPLING_STEPS:
        return f"up.{index - first_up}"
    if index == first_up + 3 * DOWNSAMPLING_STEPS + 1:
        return "head.1"
    return None


def our_key(key: str, n_blocks: int) -> str:
    """LaMa's generator key (without ``generator.model.``) → ours; a key the table does not know is returned
    with its full official name, so that strict loading lists it as unexpected."""
    match = KEY.fullmatch(key)
    layer = layer_name(int(match["index"]), n_blocks) if match else None
    if layer is None:
        return PREFIX + key
    parts = [layer]
    if match["member"]:
        parts.append(BLOCK_MEMBERS[match["member"]])
    if match["module"]:
        if match["module"] not in FFC_BN_ACT_MODULES:
            return PREFIX + key
        parts.append(FFC_BN_ACT_MODULES[match["module"]])
    return ".".join([*parts, match["tensor"]])


def read(path: Path) -> dict[str, Tensor]:
    """The generator's tensors of a LaMa ``best.ckpt`` under LaMa's names (``generator.model.`` removed)."""
    common.check_file(sys.modules[__name__], path)
    checkpoint = reader.read_tensors(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else checkpoint
    return common.sub_state(state, PREFIX, path, "LaMa",
                            "a PyTorch Lightning checkpoint with state_dict['generator.model.…']")


NGF_RANGE = (1, 256)      # the releases: 64
BLOCKS_RANGE = (0, 64)    # the releases: 9 (LaMa-Fourier) and 18 (Big LaMa)


def sizes(state: Mapping[str, Tensor]) -> dict[str, float | int]:
    """``ngf`` (the stem conv's outputs), ``n_blocks`` (the highest block index) and ``ratio`` (the global share
    of the last down-sampling layer's outputs, which LaMa ties to the blocks' share) of these tensors, each checked
    against ``NGF_RANGE`` / ``BLOCKS_RANGE`` and the blocks 5 … 4 + n all present, before anything is built."""
    missing = [key for key in ("1.ffc.convl2l.weight", "4.ffc.convl2l.weight") if key not in state]
    if missing:
        raise common.PretrainedFileError(f"not LaMa's FFCResNetGenerator: no {', '.join(missing)} in the generator")
    stem, last_down = state["1.ffc.convl2l.weight"], state["4.ffc.convl2l.weight"]
    for key, weight in ((PREFIX + "1.ffc.convl2l.weight", stem), (PREFIX + "4.ffc.convl2l.weight", last_down)):
        if weight.dim() != 4:
            raise common.PretrainedFileError(f"{key} has shape {tuple(weight.shape)}; a conv weight has 4 dimensions")
    ngf = common.check_range(stem.shape[0], f"{PREFIX}1.ffc.convl2l.weight's shape {tuple(stem.shape)} ngf =",
                             *NGF_RANGE, "the releases: 64")
    width, local = ngf * MULTIPLE, last_down.shape[0]
    ratio = (width - local) / width
    if not 0 <= ratio < 1 or global_channels(width, ratio) != width - local:
        raise common.PretrainedFileError(f"no global share splits {width} channels into {local} local ones "
                                         f"({PREFIX}4.ffc.convl2l.weight has shape {tuple(last_down.shape)})")
    blocks = {common.index_of(key.split(".")[0], PREFIX + key, "layer index"): key
              for key in state if ".conv1.ffc." in key}
    n_blocks = max(blocks) - 4 if blocks else 0
    if blocks:
        last = common.describe(PREFIX + blocks[max(blocks)], 120)
        common.check_range(n_blocks, f"{last} (the highest FFC block, index 4 + n_blocks) n_blocks =",
                           *BLOCKS_RANGE, "the releases: 9 and 18")
    absent = sorted(set(range(5, 5 + n_blocks)) - set(blocks))
    if absent:
        raise common.PretrainedFileError(f"FFC blocks {absent[:10]} are missing although block {n_blocks + 4} "
                                         "is there (n_blocks = highest block index − 4)")
    return {"ngf": ngf, "n_blocks": n_blocks, "ratio": ratio}


def build(state: Mapping[str, Tensor]) -> tuple[LamaGenerator, dict[str, Tensor]]:
    """``LamaGenerator`` sized from the tensors, and the tensors under our names."""
    args = sizes(state)
    return LamaGenerator(**args), common.rename(state, lambda key: our_key(key, int(args["n_blocks"])))
