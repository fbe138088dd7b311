"""The released weights of LaMa, DeepFill v2 and PConv, loaded into the course's own models.

    model = load_pretrained("lama", "big-lama/models/best.ckpt")      # → LamaGenerator, eval mode
    prediction = model(image, mask)                                    # image in [0, 1], mask 1 = known

Each family lives in its own module (``lama``, ``deepfillv2``, ``pconv``) and says three things:

    FILES       the released file names, where they are published, and how to get them
    read(path)  the generator's tensors under the original project's key names (no pickled code runs)
    build(state) → (model, our_state)   our model sized from the tensors' shapes, and the state renamed by the
                                        family's key table (official key → our key, written once)

``load_pretrained`` reads the file and hands the tensors to ``from_original_state`` (which also takes an original
model's own ``state_dict()``). That builds the model first on the ``meta`` device (no memory) and checks that
``our_state`` fits it — a missing, unexpected, misshapen or wrongly typed key is an error that lists them — so the
model is allocated only once every tensor of it is there; ``build`` itself checks the sizes it reads against the
family's ranges. The file is read by ``pconv_lessons.pretrained.reader``: nothing in it runs or changes the process.
Nothing is downloaded: ``data/pretrained/README.md`` says where each file comes from.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from pconv_lessons.pretrained.common import (
    PretrainedFileError,
    check_fits,
    default_path,
    find_file,
    load_strict,
    pretrained_dir,
)

FAMILIES = ("lama", "deepfillv2", "pconv")


def _family(name: str):
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"name must be one of {', '.join(map(repr, FAMILIES))}, got {name!r}")
    return importlib.import_module(f"pconv_lessons.pretrained.{name}")


def load_pretrained(name: str, path: str | Path | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """The released ``name`` model ("lama", "deepfillv2" or "pconv") from ``path``, as a course model in eval mode.

    ``path=None`` looks for the family's default file in ``pretrained_dir()`` (``$PCONV_PRETRAINED_DIR``, else
    ``data/pretrained/``). The model takes ``(image, mask)`` with the image in [0, 1] and the mask 1 = known, and
    returns its prediction in [0, 1] at the input size, whatever the original's conventions.
    """
    family = _family(name)
    path = default_path(family) if path is None else Path(path)
    return from_original_state(name, family.read(path), source=f"{name} file {path}").to(device)


def from_original_state(name: str, state: Mapping[str, Tensor], source: str = "the state dict") -> nn.Module:
    """The course model of family ``name`` holding ``state``, the generator's tensors under the original project's
    key names (as the family's ``read`` returns them; e.g. an original model's own ``state_dict()``), in eval mode.
    Sized and checked on the ``meta`` device first; ``source`` names the tensors' origin in every error."""
    family = _family(name)
    try:
        with torch.device("meta"):
            sized, our_state = family.build(state)
    except PretrainedFileError as error:
        raise PretrainedFileError(f"{source}: {error}") from None
    check_fits(sized, our_state, source=source)
    model, our_state = family.build(state)
    load_strict(model, our_state, source=source)
    return model.eval()


def available(name: str) -> Path | None:
    """The default file of family ``name`` if it is present (lessons show the released model only then), else None."""
    return find_file(_family(name))


__all__ = ["FAMILIES", "PretrainedFileError", "available", "from_original_state", "load_pretrained", "pretrained_dir"]
