"""Checkpoint IO: training checkpoints that resume exactly, safetensors exports, and ``load_model`` for both.

Training checkpoint (``OUT/last.pt``, ``torch.save``'s zip archive): model, EMA weights (with ``--ema``),
optimizers, grad scaler, trained parts of the objective (a discriminator), step, config, the torch/CUDA/NumPy/Python
RNG states and the index of the next training sample (sample ``i`` is a pure function of (seed, i), see
``pconv_lessons.data``) and the loss history as a table (``logs.history_table``; ``OUT/losses.csv`` beside it is
rewritten from it on resume). Files are written atomically and fsynced (``pconv_lessons.training.files``) with the
permissions of any new file (0666 & ~umask); reading first refuses compressed, encrypted or oversized members from
the archive's directory alone (``pconv_lessons.torch_archive``: nothing is decompressed), then checks every member's
CRC-32, so one flipped byte is an error, not a silently different run, and every field a run or ``load_model`` uses is checked (its presence, its type; the
weights' names, shapes, dtypes and finiteness), so a crafted or damaged file is a ``ValueError`` naming the file and
the field, not a ``KeyError`` or a failure steps later.

Export (``export_model``): ``NAME.safetensors`` (the weights: the EMA average when the run kept one) +
``NAME.json`` (format, config, step, training time, which weights, the SHA-256 of the .safetensors file) +
``NAME.losses.csv`` (the loss history). ``load_model`` reads an export or a training checkpoint (also the
slim ``.pt`` exports of format ``pconv_lessons.train/1``), after checking that the weights fit the model the
config describes — the model is first built on the ``meta`` device, so a config naming a huge model costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pconv_lessons.torch_archive import check_torch_archive
from pconv_lessons.training.config import TrainConfig, config_from_dict
from pconv_lessons.training.files import atomic_write, stale_temporary_files  # noqa: F401 (re-exported)
from pconv_lessons.training.logs import History, history_from_table, read_history, write_history
from pconv_lessons.training.registry import model_entry

CHECKPOINT_FORMAT = "pconv_lessons.train/2"
READABLE_FORMATS = ("pconv_lessons.train/1", CHECKPOINT_FORMAT)
EXPORT_FORMAT = "pconv_lessons.export/1"
CHECKPOINT_NAME = "last.pt"
HISTORY_NAME = "losses.csv"


# ------------------------------------------------------------------------------------------------ RNG


def rng_state() -> dict[str, Any]:
    """Torch, CUDA, NumPy and Python RNG states, as tensors and plain values (loadable with weights_only)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "gauss": float(gauss), "kind": kind},
        "python": {"version": version, "state": list(python_state), "gauss": python_gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["gauss"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))


# ------------------------------------------------------------------------------------------- writing


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save(payload)`` to ``path`` through ``atomic_write``."""
    atomic_write(path, lambda stream: torch.save(payload, stream))


# ------------------------------------------------------------------------------------------- reading


def _check_archive(path: Path) -> None:
    """``torch.save``'s zip archive checked before anything is decompressed (every member stored and within the
    file's size, ``pconv_lessons.torch_archive``), then every member against its CRC-32; a ``ValueError`` naming the
    file and the member."""
    check_torch_archive(path, "checkpoint")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint (``.pt``) or an export (``.safetensors`` / its ``.json``) as one dict.

    Keys: ``format``, ``config``, ``model``, ``step``, ``elapsed_seconds``, ``history`` (the checkpoint's own table;
    read from the CSV beside the file for checkpoints written before it held one) and, for training checkpoints, the
    optimizer and RNG states. A clear ``ValueError`` naming the file (and the field) if the file is missing, damaged,
    crafted or not a course checkpoint.
    """
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return _load_export(path, map_location)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}; train first (or drop --resume to start a new run)")
    _check_archive(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path} is corrupt or not a pconv_lessons checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") not in READABLE_FORMATS:
        raise ValueError(f"checkpoint {path} is not a pconv_lessons training checkpoint ({CHECKPOINT_FORMAT})")
    source = f"checkpoint {path}"
    _check_common_fields(checkpoint, source)
    _check_tensor_dict(checkpoint, "model", source)
    if checkpoint.get("ema") is not None:
        _check_tensor_dict(checkpoint, "ema", source)
    if isinstance(checkpoint.get("history"), list):  # format 1 (old slim exports): a list of rows
        checkpoint["history"] = _history_rows(checkpoint["history"], source)
    elif "history" in checkpoint:
        checkpoint["history"] = history_from_table(checkpoint["history"], source)
    else:  # written before checkpoints held their history: the CSV beside it, as far as the checkpoint
        checkpoint["history"] = read_history(path.parent / HISTORY_NAME, last_step=checkpoint["step"])
    return checkpoint


def checkpoint_field(checkpoint: Mapping[str, Any], name: str, expected: type | tuple[type, ...],
                     source: str) -> Any:
    """``checkpoint[name]``, checked to be an ``expected`` (bool is not an int); a ``ValueError`` naming both."""
    if name not in checkpoint:
        raise ValueError(f"{source}: field {name!r} is missing (a damaged or foreign file?)")
    value = checkpoint[name]
    wrong_bool = isinstance(value, bool) and bool not in (expected if isinstance(expected, tuple) else (expected,))
    if not isinstance(value, expected) or wrong_bool:
        names = " or ".join(kind.__name__ for kind in (expected if isinstance(expected, tuple) else (expected,)))
        raise ValueError(f"{source}: field {name!r} must be of type {names}, got {type(value).__name__} "
                         f"{value!r:.60}")
    return value


def checkpoint_config(checkpoint: Mapping[str, Any], source: str) -> TrainConfig:
    """The ``TrainConfig`` a checkpoint or export was trained with; a ``ValueError`` naming the field at fault."""
    values = checkpoint_field(checkpoint, "config", dict, source)
    try:
        config = config_from_dict(values)
        model_entry(config.model)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{source}: field 'config' is not a valid run config: {error}") from error
    return config


def _check_common_fields(checkpoint: Mapping[str, Any], source: str) -> None:
    checkpoint_config(checkpoint, source)
    if checkpoint_field(checkpoint, "step", int, source) < 0:
        raise ValueError(f"{source}: field 'step' must be >= 0, got {checkpoint['step']}")
    if "elapsed_seconds" in checkpoint:
        checkpoint_field(checkpoint, "elapsed_seconds", (int, float), source)


def _check_tensor_dict(checkpoint: Mapping[str, Any], name: str, source: str) -> None:
    values = checkpoint_field(checkpoint, name, dict, source)
    wrong = next(((key, value) for key, value in values.items()
                  if not isinstance(key, str) or not isinstance(value, Tensor)), None)
    if wrong is not None:
        raise ValueError(f"{source}: field {name!r} must map names to tensors; {wrong[0]!r} holds "
                         f"{type(wrong[1]).__name__}")


def _history_rows(rows: list, source: str) -> History:
    if not all(isinstance(row, dict) and "step" in row and all(
            isinstance(value, (int, float)) and not isinstance(value, bool) for value in row.values())
            for row in rows):
        raise ValueError(f"{source}: field 'history' must be a list of rows {{'step': …, name: number}}")
    return [{name: float(value) for name, value in row.items()} for row in rows]


def export_paths(destination: str | Path) -> tuple[Path, Path, Path]:
    """``NAME.safetensors``, ``NAME.json`` and ``NAME.losses.csv`` for an export named by any of them or by NAME."""
    destination = Path(destination)
    stem = destination.name
    for suffix in (".safetensors", ".json", ".losses.csv"):
        stem = stem.removesuffix(suffix)
    base = destination.parent / stem
    return base.with_name(stem + ".safetensors"), base.with_name(stem + ".json"), base.with_name(stem + ".losses.csv")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_export(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path, config_path, history_path = export_paths(path)
    for needed in (weights_path, config_path):
        if not needed.is_file():
            raise ValueError(f"export {weights_path.name} needs {needed} (weights + JSON config), which is missing")
    try:
        info = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from error
    if not isinstance(info, dict) or info.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{config_path} is not a pconv_lessons export ({EXPORT_FORMAT})")
    if _sha256(weights_path) != info.get("sha256"):
        raise ValueError(f"export {weights_path} is corrupt: its SHA-256 differs from the one in {config_path.name}")
    _check_common_fields(info, f"export {config_path}")
    try:
        weights = load_file(weights_path, device=str(map_location))
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise ValueError(f"export {weights_path} is not a readable safetensors file: {error}") from error
    return {**info, "model": weights, "history": read_history(history_path)}


def export_model(checkpoint_path: str | Path, destination: str | Path, ema: bool = True) -> Path:
    """Export a training checkpoint (or an old ``.pt`` export) as safetensors + JSON config + loss CSV.

    ``destination``: ``NAME.safetensors`` (or NAME). ``ema``: export the EMA weights when the run kept them.
    Returns the path of the ``.safetensors`` file. The three files are each written atomically.
    """
    from safetensors.torch import save

    checkpoint_path = Path(checkpoint_path)
    checkpoint = load_checkpoint(checkpoint_path)
    weights_path, config_path, history_path = export_paths(destination)
    use_ema = ema and checkpoint.get("ema") is not None
    state = checkpoint["ema"] if use_ema else checkpoint["model"]
    source = f"checkpoint {checkpoint_path} (field {'ema' if use_ema else 'model'!r})"
    check_weights(checkpoint_config(checkpoint, source), state, source)
    tensors = {name: value.detach().cpu().contiguous().clone() for name, value in state.items()}
    atomic_write(weights_path, lambda stream: stream.write(save(tensors)))
    info = {
        "format": EXPORT_FORMAT,
        "config": checkpoint["config"],
        "step": int(checkpoint["step"]),
        "elapsed_seconds": float(checkpoint.get("elapsed_seconds", 0.0)),
        "weights": "ema" if use_ema else "model",
        "numel": int(sum(value.numel() for value in tensors.values())),
        "sha256": _sha256(weights_path),
        "torch": torch.__version__,
    }
    atomic_write(config_path, lambda stream: stream.write((json.dumps(info, indent=1) + "\n").encode()))
    history = checkpoint["history"]
    if history:
        write_history(history_path, history)
    return weights_path


def find_checkpoints(folder: str | Path) -> list[Path]:
    """The loadable models in ``folder``: every ``*.safetensors`` export and every ``*.pt`` without an export twin."""
    folder = Path(folder)
    exports = sorted(folder.glob("*.safetensors"))
    stems = {path.stem for path in exports}
    return sorted([*exports, *(p for p in folder.glob("*.pt") if p.stem not in stems)])


# ---------------------------------------------------------------------------------------- load_model


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA if present, else the CPU; a CUDA device without CUDA is a clear ``ValueError``."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} asked for, but no CUDA device is available; use --device cpu")
    return device


def check_state_fits(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """``ValueError`` naming ``source`` and the tensors of ``state`` that do not fit ``model``.

    Missing, unexpected and mis-shaped tensors, and values the model cannot hold: a floating-point tensor of the model
    must be given as real floating point (not integers, not complex) and finite (no NaN or inf); an integer buffer
    (batch norm's ``num_batches_tracked``) as an integer.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{name}: {tuple(state[name].shape)} vs {tuple(expected[name].shape)}"
              for name in sorted(set(expected) & set(state)) if expected[name].shape != state[name].shape]
    if missing or unexpected or shapes:
        raise ValueError(
            f"the weights in {source} do not fit the model its config describes: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}"
            + (" (and more)" if max(len(missing), len(unexpected), len(shapes)) > 5 else "")
        )
    for name, value in state.items():
        problem = _value_problem(value, expected[name])
        if problem:
            raise ValueError(f"the weights in {source} cannot be used: {name!r} {problem}")


def _value_problem(value: Tensor, expected: Tensor) -> str:
    if expected.is_floating_point():
        if not value.is_floating_point():
            return f"is {value.dtype}, the model needs real floating point ({expected.dtype})"
        if value.device.type != "meta" and not bool(torch.isfinite(value).all()):
            return f"holds {int((~torch.isfinite(value)).sum())} non-finite value(s) (NaN or inf)"
    elif value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        return f"is {value.dtype}, the model keeps an integer ({expected.dtype}) there"
    return ""


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any], source: str) -> None:
    """``state`` (an ``Optimizer.state_dict()``) fits ``optimizer``: its groups, and per parameter the shape of each
    state tensor (Adam's moments are shaped like the parameter, its ``step`` a scalar)."""
    groups = checkpoint_field(state, "param_groups", list, source)
    per_parameter = checkpoint_field(state, "state", dict, source)
    ours = optimizer.param_groups
    if len(groups) != len(ours) or any(not isinstance(group, dict) or len(group.get("params", ())) != len(mine["params"])
                                       for group, mine in zip(groups, ours)):
        raise ValueError(f"{source}: param_groups do not match this run's parameters (a different model?)")
    parameters = {index: parameter for group, mine in zip(groups, ours)
                  for index, parameter in zip(group["params"], mine["params"])}
    for index, values in per_parameter.items():
        if index not in parameters or not isinstance(values, dict):
            raise ValueError(f"{source}: state of an unknown parameter {index!r}")
        shape = tuple(parameters[index].shape)
        for name, value in values.items():
            if not isinstance(value, Tensor):
                raise ValueError(f"{source}: state[{index!r}][{name!r}] must be a tensor, got {type(value).__name__}")
            if value.dim() and tuple(value.shape) != shape:
                raise ValueError(f"{source}: state[{index!r}][{name!r}] has shape {list(value.shape)}, its "
                                 f"parameter {list(shape)}")
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise ValueError(f"{source}: state[{index!r}][{name!r}] holds non-finite values (NaN or inf)")


def check_weights(config: TrainConfig, state: Mapping[str, Tensor], source: str) -> None:
    """``check_state_fits`` against ``config``'s model built on the ``meta`` device (no allocation)."""
    with torch.device("meta"):
        check_state_fits(model_entry(config.model).build(config), state, source)


def build_checked(config: TrainConfig, state: Mapping[str, Tensor], source: str) -> nn.Module:
    """``config``'s model with ``state`` loaded; the weights are checked on a ``meta`` model before any allocation."""
    check_weights(config, state, source)
    model = model_entry(config.model).build(config)
    model.load_state_dict(state)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> nn.Module:
    """The trained model stored in a checkpoint or export, built from its saved config, in eval mode.

    ``ema``: a training checkpoint of a run with ``--ema`` gives its averaged weights (exports hold one set).
    """
    device = resolve_device(device)
    checkpoint = load_checkpoint(path, map_location="cpu")
    config = checkpoint_config(checkpoint, str(path))
    state = checkpoint["ema"] if ema and checkpoint.get("ema") is not None else checkpoint["model"]
    return build_checked(config, state, str(path)).to(device).eval()
