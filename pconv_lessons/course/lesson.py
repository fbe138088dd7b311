"""Shared set-up for every lesson notebook: seeding, device choice and fast/full mode.

Fast mode (small sizes, a few minutes on a laptop CPU) is the default without a GPU. The environment
variable ``PCONV_FAST`` overrides the choice: ``PCONV_FAST=1`` forces fast mode, ``PCONV_FAST=0``
forces the full sizes.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass

import numpy as np
import torch

FAST_ENV_VAR = "PCONV_FAST"
_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Lesson:
    """What a notebook needs to know about where it runs."""

    device: torch.device
    fast: bool
    seed: int

    def pick(self, fast, full):
        """Return ``fast`` in fast mode and ``full`` otherwise (sizes, step counts, ...)."""
        return fast if self.fast else full


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fast_mode() -> bool:
    """Fast mode unless a GPU is present; ``PCONV_FAST`` overrides either way."""
    value = os.environ.get(FAST_ENV_VAR)
    if value is None or value.strip() == "":
        return not torch.cuda.is_available()
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError(f"{FAST_ENV_VAR} must be one of 1/0/true/false/yes/no/on/off, got {value!r}")


def default_device() -> torch.device:
    """The first CUDA device if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _short_warning(message, category, filename, lineno, line=None) -> str:
    # Notebook outputs must not show file paths of the machine that ran them.
    return f"{category.__name__}: {message}\n"


def _light_figures() -> None:
    # Executed notebooks are committed: 72 dpi keeps photo figures readable and the files small.
    import matplotlib

    matplotlib.rcParams["figure.dpi"] = 72


def start_lesson(seed: int = 0) -> Lesson:
    """Seed everything, choose device and mode, print one line saying which.

    Also shortens warning messages to ``Category: message`` so that executed notebooks
    do not record paths of the machine they ran on, and sets figures to 72 dpi. In fast mode on a CPU, torch uses
    one thread: fast mode is sized for a busy 2-core laptop, where a second torch thread competing with another
    process for the other core made lesson 11's evaluation 3× slower (359 s against about 110 s, measured).
    """
    warnings.formatwarning = _short_warning
    _light_figures()
    seed_everything(seed)
    lesson = Lesson(device=default_device(), fast=fast_mode(), seed=seed)
    if lesson.fast and lesson.device.type == "cpu":
        torch.set_num_threads(1)
    if lesson.device.type == "cuda":
        where = f"GPU ({torch.cuda.get_device_name(lesson.device)})"
    else:
        where = "CPU"
    mode = "fast mode: small sizes" if lesson.fast else "full mode: the real sizes"
    print(f"Running on {where}, {mode} (set {FAST_ENV_VAR}=0 or 1 to choose).")
    return lesson
