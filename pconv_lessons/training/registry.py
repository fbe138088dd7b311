"""The trainable models: ``--model NAME`` → how to build the network and its objective.

Adding a model: ``register_model(name, build, objective)`` where ``build(config) -> nn.Module`` takes
``(image, mask)`` and returns the full-size prediction, and ``objective(config, device) -> Objective``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pconv_lessons.training.config import TrainConfig
from pconv_lessons.training.objective import Objective


@dataclass(frozen=True)
class ModelEntry:
    """How to train one kind of model: build it from the config, and build its objective."""

    build: Callable[[TrainConfig], nn.Module]
    objective: Callable[[TrainConfig, torch.device], Objective]


MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    build: Callable[[TrainConfig], nn.Module],
    objective: Callable[[TrainConfig, torch.device], Objective],
) -> None:
    """Make ``--model name`` trainable. ``build(config)`` gets ``config.model_args`` to read its knobs from."""
    MODELS[name] = ModelEntry(build, objective)


def model_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; trainable models: {sorted(MODELS)}")
    return MODELS[name]


def _imported_on_call(module: str, name: str) -> Callable:
    """``pconv_lessons.training.<module>.<name>``, imported when first called (the model code loads on demand)."""

    def call(*args):
        return getattr(importlib.import_module(f"pconv_lessons.training.{module}"), name)(*args)

    return call


for _name, _module, _build, _objective in [("pconv", "pconv", "build_pconv", "PConvObjective"),
                                           ("gated", "gated", "build_gated", "GatedGANObjective"),
                                           ("lama", "lama", "build_lama", "LamaObjective")]:
    register_model(_name, _imported_on_call(_module, _build), _imported_on_call(_module, _objective))
