"""Checkpoint IO: training checkpoints that resume exactly, safetensors exports, and ``load_model`` for both.

Training checkpoint (``OUT/last.pt``, ``torch.save``'s zip archive): model, EMA weights (with ``--ema``),
optimizers, grad scaler, trained parts of the objective (a discriminator), step, config, the torch/CUDA/NumPy/Python
RNG states and the index of the next training sample (sample ``i`` is a pure function of (seed, i), see
``pconv_lessons.data``). The loss history lives beside it in ``OUT/losses.csv``. Files are written atomically
(a temporary file in the same folder, then ``os.replace``) with the permissions of any new file (0666 & ~umask);
reading checks every member's CRC-32, so one flipped byte is an error, not a silently different run.

Export (``export_model``): ``NAME.safetensors`` (the weights: the EMA average when the run kept one) +
``NAME.json`` (format, config, step, training time, which weights, the SHA-256 of the .safetensors file) +
``NAME.losses.csv`` (the loss history). ``load_model`` reads an export or a training checkpoint (also the
slim ``.pt`` exports of format ``pconv_lessons.train/1``), after checking that the weights fit the model the
config describes — the model is first built on the ``meta`` device, so a config naming a huge model costs nothing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import Tensor, nn

from pconv_lessons.torch_archive import check_torch_archive
from pconv_lessons.training.config import TrainConfig, config_from_dict
from pconv_lessons.training.logs import History, read_history, write_history
from pconv_lessons.training.registry import model_entry

CHECKPOINT_FORMAT = "pconv_lessons.train/2"
READABLE_FORMATS = ("pconv_lessons.train/1", CHECKPOINT_FORMAT)
EXPORT_FORMAT = "pconv_lessons.export/1"
CHECKPOINT_NAME = "last.pt"
HISTORY_NAME = "losses.csv"
TEMPORARY_SUFFIX = ".tmp"


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


def _new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write(stream)`` into a temporary file beside ``path``, then rename it over ``path``.

    A crash or kill at any moment leaves either the old complete file or the new complete file (and at worst a
    ``.NAME.*.tmp`` that the next run in that folder removes). A failed write — a full disk among others — is an
    ``OSError`` naming the file and the free space left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(handle, _new_file_mode())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        free = shutil.disk_usage(path.parent).free / 2**20
        full = isinstance(error, OSError) and error.errno == errno.ENOSPC or "write" in str(error).lower()
        reason = "the disk is full or the write failed" if full else type(error).__name__
        raise OSError(f"could not write {path} ({reason}; {free:.0f} MiB free there): {error}") from error
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save(payload)`` to ``path`` through ``atomic_write``."""
    atomic_write(path, lambda stream: torch.save(payload, stream))


def stale_temporary_files(folder: str | Path) -> list[Path]:
    """Temporary files ``atomic_write`` leaves behind when killed mid-write (``.NAME.*.tmp``) in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMPORARY_SUFFIX))


# ------------------------------------------------------------------------------------------- reading


def _check_archive(path: Path) -> None:
    """``torch.save``'s zip archive checked before anything is decompressed (every member stored and within the
    file's size, ``pconv_lessons.torch_archive``), then every member against its CRC-32; a ``ValueError`` naming the
    file and the member."""
    check_torch_archive(path, "checkpoint")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint (``.pt``) or an export (``.safetensors`` / its ``.json``) as one dict.

    Keys: ``format``, ``config``, ``model``, ``step``, ``elapsed_seconds``, ``history`` (read from the CSV beside the
    file when the checkpoint does not hold it) and, for training checkpoints, the optimizer and RNG states. A clear
    ``ValueError`` if the file is missing, damaged or not a course checkpoint.
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
    if "history" not in checkpoint:
        checkpoint["history"] = read_history(path.parent / HISTORY_NAME, last_step=checkpoint["step"])
    return checkpoint


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
    from safetensors.torch import load_file

    weights_path, config_path, history_path = export_paths(path)
    for needed in (weights_path, config_path):
        if not needed.is_file():
            raise ValueError(f"export {weights_path.name} needs {needed} (weights + JSON config), which is missing")
    try:
        info = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from error
    if not isinstance(info, dict) or info.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{config_path} is not a pconv_lessons export ({EXPORT_FORMAT})")
    if _sha256(weights_path) != info.get("sha256"):
        raise ValueError(f"export {weights_path} is corrupt: its SHA-256 differs from the one in {config_path.name}")
    device = str(map_location)
    return {**info, "model": load_file(weights_path, device=device), "history": read_history(history_path)}


def _history_of(checkpoint_path: Path, checkpoint: Mapping[str, Any]) -> History:
    return list(checkpoint.get("history") or read_history(checkpoint_path.parent / HISTORY_NAME, checkpoint["step"]))


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
    history = _history_of(checkpoint_path, checkpoint)
    if history:
        temporary = history_path.with_name(f".{history_path.name}.export{TEMPORARY_SUFFIX}")
        write_history(temporary, history)
        os.replace(temporary, history_path)
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
    """``ValueError`` listing missing, unexpected and mis-shaped tensors of ``state`` for ``model``."""
    expected = {name: tuple(value.shape) for name, value in model.state_dict().items()}
    given = {name: tuple(value.shape) for name, value in state.items()}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = [f"{name}: {given[name]} vs {expected[name]}" for name in sorted(set(expected) & set(given))
              if expected[name] != given[name]]
    if missing or unexpected or shapes:
        raise ValueError(
            f"the weights in {source} do not fit the model its config describes: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}"
            + (" (and more)" if max(len(missing), len(unexpected), len(shapes)) > 5 else "")
        )


def build_checked(config: TrainConfig, state: Mapping[str, Tensor], source: str) -> nn.Module:
    """``config``'s model with ``state`` loaded; the shapes are checked on a ``meta`` model before any allocation."""
    build = model_entry(config.model).build
    with torch.device("meta"):
        check_state_fits(build(config), state, source)
    model = build(config)
    model.load_state_dict(state)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu", ema: bool = True) -> nn.Module:
    """The trained model stored in a checkpoint or export, built from its saved config, in eval mode.

    ``ema``: a training checkpoint of a run with ``--ema`` gives its averaged weights (exports hold one set).
    """
    device = resolve_device(device)
    checkpoint = load_checkpoint(path, map_location="cpu")
    config = config_from_dict(checkpoint["config"])
    state = checkpoint["ema"] if ema and checkpoint.get("ema") is not None else checkpoint["model"]
    return build_checked(config, state, str(path)).to(device).eval()
