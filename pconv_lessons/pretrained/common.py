"""What the three families share: where the files live, reading tensors without running pickled code,
renaming keys by a table, and strict loading with errors that list what does not fit."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

ENV_VAR = "PCONV_PRETRAINED_DIR"
README = "data/pretrained/README.md"


class PretrainedFileError(ValueError):
    """A released-weights file that is missing, of another family, or does not fit the model."""


def pretrained_dir() -> Path:
    """``$PCONV_PRETRAINED_DIR`` if set, else the repository's ``data/pretrained/``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "data" / "pretrained"


def find_file(family: ModuleType) -> Path | None:
    """The first of the family's ``FILES`` present in ``pretrained_dir()``, else None."""
    for filename in family.FILES:
        candidate = pretrained_dir() / filename
        if candidate.is_file():
            return candidate
    return None


def default_path(family: ModuleType) -> Path:
    """The first of the family's ``FILES`` present in ``pretrained_dir()``; an error saying how to get one if none."""
    found = find_file(family)
    if found is None:
        raise missing_file(family, pretrained_dir() / next(iter(family.FILES)))
    return found


def missing_file(family: ModuleType, path: Path) -> PretrainedFileError:
    files = "; ".join(f"{name}: {how}" for name, how in family.FILES.items())
    return PretrainedFileError(
        f"no file at {path}. Get one of the released files and put it in {pretrained_dir()} "
        f"(or set ${ENV_VAR}, or pass path=...): {files}. Details in {README}."
    )


def check_file(family: ModuleType, path: Path) -> None:
    if not path.is_file():
        raise missing_file(family, path)


def _stub_class(module: str, name: str) -> type:
    """A stand-in for a class the restricted unpickler will not import: it swallows whatever is stored in it."""

    def setstate(self, state):  # noqa: ANN001 - pickle protocol
        self.__dict__["_state"] = state

    return type(name, (), {"__module__": module, "__reduce__": None, "__setstate__": setstate,
                           "__init__": lambda self, *args, **kwargs: None})


class _RestrictedUnpickler(pickle.Unpickler):
    """torch's own rebuild functions and storages, plain containers, and inert stubs for everything else.

    Lightning checkpoints hold OmegaConf hyper-parameters and other objects that ``weights_only=True`` refuses;
    stubbing them lets us read the tensors without importing or running any of that code.
    """

    SAFE = {
        ("collections", "OrderedDict"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch", "Size"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self.SAFE or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        return _stub_class(module, name)


def read_tensors(path: Path) -> dict:
    """The object stored in a ``torch.save`` file, with ``weights_only=True``; if the file holds other objects
    (a Lightning checkpoint's hyper-parameters), read again with a restricted unpickler that imports nothing but
    torch's tensor rebuilders and turns every other class into an inert stub. Pickled code never runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # a class weights_only refuses (or no pickle at all: the restricted reader then says so)
    except Exception as error:  # a damaged archive, an empty file, …
        raise unreadable(path, error) from None
    restricted = ModuleType("restricted_pickle")
    restricted.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
    restricted.load = lambda file, **kwargs: _RestrictedUnpickler(file, **kwargs).load()  # type: ignore[attr-defined]
    restricted.__name__ = "pickle"
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted)
    except Exception as error:  # a damaged archive, or not a torch file at all
        raise unreadable(path, error) from None


def unreadable(path: Path, error: Exception) -> PretrainedFileError:
    return PretrainedFileError(
        f"{path} is not a readable PyTorch file ({type(error).__name__}: {error}); "
        "it may be incomplete: download it again"
    )


def sub_state(obj: object, prefix: str, path: Path, family: str, expected: str) -> dict[str, Tensor]:
    """The tensors of ``obj`` (a state dict) under ``prefix``, with the prefix removed; an error naming the family
    if there are none (the file is probably another family's)."""
    if not isinstance(obj, Mapping):
        raise PretrainedFileError(f"{path} does not hold a state dict ({expected}); is it a {family} file?")
    found = {key[len(prefix):]: value for key, value in obj.items()
             if isinstance(key, str) and key.startswith(prefix) and isinstance(value, Tensor)}
    if not found:
        sample = ", ".join(list(map(str, obj))[:5])
        raise PretrainedFileError(
            f"{path} has no tensors under {prefix!r}: not a {family} file ({expected}); its first keys are: {sample}"
        )
    return found


def rename(state: Mapping[str, Tensor], table: Callable[[str], str | None]) -> dict[str, Tensor]:
    """Apply a key table (official key → our key; ``None`` drops a key the course model does not need)."""
    renamed = {}
    for key, value in state.items():
        new = table(key)
        if new is not None:
            renamed[new] = value
    return renamed


def load_strict(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` that lists every missing, unexpected and misshapen key in one error."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours))
    shapes = sorted(f"{key}: file {tuple(state[key].shape)} vs model {tuple(ours[key].shape)}"
                    for key in set(ours) & set(state) if ours[key].shape != state[key].shape)
    problems = [f"{label} ({len(keys)}): {', '.join(keys[:20])}{' …' if len(keys) > 20 else ''}"
                for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", shapes)) if keys]
    if problems:
        raise PretrainedFileError(f"{source} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
