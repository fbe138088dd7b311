"""A model by name, as the command-line tools take it (``--model NAME``).

NAME is, in this order:

- ``lama``, ``deepfillv2`` or ``pconv``: the released weights of that family through
  ``pconv_lessons.pretrained.load_pretrained`` (the default file in ``$PCONV_PRETRAINED_DIR`` or ``data/pretrained/``);
- a shipped checkpoint name (``pconv_small``, ``gated_small``, ``lama_small``, …): ``data/checkpoints/NAME.safetensors``
  (or ``NAME.pt``) through ``pconv_lessons.train.load_model``;
- a path to a checkpoint or export of ours (``last.pt``, ``NAME.safetensors``, ``NAME.json``), or to a released file
  of one of the three families (a Lightning ``.ckpt`` is read as LaMa's, other files as ours).

Every model comes back in eval mode on ``device`` and takes ``(image, mask)`` with the image in [0, 1] and the mask
1 = known (the course convention), returning the prediction at the input size.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pconv_lessons.pretrained import FAMILIES, load_pretrained
from pconv_lessons.training.checkpoints import find_checkpoints, load_model

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


def shipped_names() -> list[str]:
    """The names of the checkpoints shipped in ``data/checkpoints/`` (file stems), sorted."""
    return sorted(path.stem for path in find_checkpoints(SHIPPED_DIR))


def model_label(name: str) -> str:
    """The name a model goes by in tables and messages: the family or shipped name, else the file's stem."""
    path = Path(name)
    return path.stem if path.suffix else name


def load_named_model(name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The model ``name`` stands for (module docstring), in eval mode on ``device``.

    An unknown name that is no file either is a ``ValueError`` listing the families and the shipped names.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if name in FAMILIES:
        return load_pretrained(name, device=device)
    shipped = {path.stem: path for path in find_checkpoints(SHIPPED_DIR)}
    if name in shipped:
        return load_model(shipped[name], device=device)
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix == ".ckpt":
            return load_pretrained("lama", path, device=device)
        return load_model(path, device=device)
    raise ValueError(
        f"--model {name!r} is neither a released family ({', '.join(FAMILIES)}), nor a shipped checkpoint "
        f"({', '.join(shipped) or 'none found'} in {SHIPPED_DIR}), nor an existing file"
    )
