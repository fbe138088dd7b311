"""What the three families share: where the files live, bounded descriptions and range checks for error messages,
renaming keys by a table, and strict loading with errors that list what does not fit (reading a file:
``pconv_lessons.pretrained.reader``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

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


def describe(value: object, limit: int = 60) -> str:
    """A short, bounded description of any value a file holds, for error messages: a string (cut at ``limit``),
    the repr of bytes or a number, else the type's name (never the repr of a container, which a file can nest 100,000 deep or make
    exponentially long by sharing)."""
    if isinstance(value, (str, bytes)):
        text = value if isinstance(value, str) else repr(value)
        return text if len(text) <= limit else text[:limit] + "…"
    if isinstance(value, (bool, float, type(None))) or (isinstance(value, int) and abs(value) < 10**limit):
        return repr(value)
    return f"a {type(value).__name__}"


def check_range(value: int, field: str, low: int, high: int, released: str) -> int:
    """``value`` if ``low <= value <= high``, else an error "``field`` ``value``; this loader accepts low…high
    (``released``)" (``field`` says where it was read and its name, e.g. "KEY's shape (…) ngf =")."""
    if not low <= value <= high:
        raise PretrainedFileError(f"{field} {value}; this loader accepts {low}…{high} ({released})")
    return value


def index_of(text: str, key: str, what: str) -> int:
    """The integer written in ``text`` (a part of ``key``, e.g. a layer index), read only if it has at most 9
    digits (Python needs time quadratic in the digits to read a huge one); an error naming the key otherwise."""
    if len(text) > 9:
        raise PretrainedFileError(f"{describe(key)} has {what} {describe(text, 20)} ({len(text)} digits)")
    return int(text)


def sub_state(obj: object, prefix: str, path: Path, family: str, expected: str) -> dict[str, Tensor]:
    """The tensors of ``obj`` (a state dict) under ``prefix``, with the prefix removed; an error naming the family
    if there are none (the file is probably another family's)."""
    if not isinstance(obj, Mapping):
        raise PretrainedFileError(f"{path} does not hold a state dict ({expected}); is it a {family} file?")
    found = {key[len(prefix):]: value for key, value in obj.items()
             if isinstance(key, str) and key.startswith(prefix) and isinstance(value, Tensor)}
    if not found:
        sample = ", ".join(describe(key) for key, _ in zip(obj, range(5)))
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


def check_fits(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """An error listing every missing, unexpected, misshapen and complex-for-real tensor of ``state`` for
    ``model``; nothing is computed on the tensors, so ``model`` may live on the ``meta`` device."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(key if len(key) <= 120 else key[:120] + "…" for key in set(state) - set(ours))
    shared = sorted(set(ours) & set(state))
    shapes = [f"{key}: file {tuple(state[key].shape)} vs model {tuple(ours[key].shape)}"
              for key in shared if ours[key].shape != state[key].shape]
    dtypes = [f"{key}: file {state[key].dtype} vs model {ours[key].dtype}" for key in shared
              if state[key].dtype.is_complex != ours[key].dtype.is_complex]
    problems = [f"{label} ({len(keys)}): {', '.join(keys[:20])}{' …' if len(keys) > 20 else ''}"
                for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("shape mismatches", shapes), ("dtype mismatches", dtypes)) if keys]
    if problems:
        raise PretrainedFileError(f"{source} does not fit {type(model).__name__}: " + "; ".join(problems))


def load_strict(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` after ``check_fits``: every problem listed in one error."""
    check_fits(model, state, source)
    model.load_state_dict(state, strict=True)
