"""The interface every training objective implements, and the argument checks the objectives share.

One training step, for every phase p of the objective (PConv: just "generator"; a GAN: "discriminator" then
"generator"):

    terms_p = objective.loss(p, model, image, mask, cache)       # a dict of loss terms, "total" among them
    θ_p ← Adam(θ_p, ∇ terms_p["total"], lr_p(step), betas_p)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

from torch import Tensor, nn

from pconv_lessons.training.config import TrainConfig


class Objective:
    """What a model is trained on. Override ``loss``; multi-phase objectives (GANs) override more.

    - ``phases``: optimizer steps per training step, in order; each phase has its own Adam optimizer.
    - ``adam_betas``: Adam's (β1, β2) for every phase (GANs use β1 = 0.5).
    - ``parameters(phase, model)``: what that optimizer updates ("generator" → the model).
    - ``modules()``: trained parts that live in the objective (a discriminator), saved in checkpoints. Under
      ``torchrun`` the Trainer wraps each in DistributedDataParallel; ``trained(name)`` is the module to
      back-propagate a phase's loss through (the wrapper when there is one).
    - ``learning_rate(phase, step)`` and ``begin_step(step, model)``: the schedule (called every step,
      so they must be idempotent; this is also what re-applies a schedule after ``--resume``).
    - ``loss(phase, model, image, mask, cache)`` → dict of scalar terms with a ``"total"`` to minimise;
      ``cache`` is a dict shared by the phases of one step (e.g. the generator output).
    """

    phases: tuple[str, ...] = ("generator",)
    adam_betas: tuple[float, float] = (0.9, 0.999)

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.wrapped: dict[str, nn.Module] = {}

    def merged_loss_args(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """``defaults`` updated with ``config.loss_args``; an unknown key is a ``ValueError`` naming the known ones."""
        unknown = sorted(set(self.config.loss_args) - set(defaults))
        if unknown:
            raise ValueError(
                f"unknown loss_args {unknown} for --model {self.config.model}; known: {sorted(defaults)}"
            )
        return {**defaults, **self.config.loss_args}

    def parameters(self, phase: str, model: nn.Module) -> Iterable[nn.Parameter]:
        if phase != "generator":
            raise ValueError(f"{type(self).__name__} has no parameters for phase {phase!r}")
        return model.parameters()

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def trained(self, name: str) -> nn.Module:
        """``modules()[name]`` as the optimizer's phase should call it: its DistributedDataParallel wrapper if any."""
        return self.wrapped.get(name, self.modules()[name])

    def learning_rate(self, phase: str, step: int) -> float:
        return self.config.lr

    def begin_step(self, step: int, model: nn.Module) -> None:
        """Put the model in the mode the schedule wants for ``step`` (default: plain training mode)."""
        model.train()

    def predict(self, model: nn.Module, image: Tensor, mask: Tensor) -> Tensor:
        """The model's full-size prediction; it never sees the hole pixels of ``image``."""
        return model(image * mask, mask)

    def loss(self, phase: str, model: nn.Module, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must define loss()")


def loss_network(vgg_weights: str | None) -> nn.Module | None:
    """The VGG16 feature extractor that ``--loss-arg vgg_weights=…`` asks for, the same for every objective.

    ``"random"`` (or ``None``): random init, offline; ``"imagenet"``: torchvision's pretrained weights (cached or
    downloaded once); a file path: weights from that file; ``"none"``: no loss network (returns ``None``).
    """
    from pconv_lessons.losses import VGG16Features

    if vgg_weights == "none":
        return None
    if vgg_weights is not None and not isinstance(vgg_weights, str):
        raise TypeError(f"vgg_weights must be 'random', 'imagenet', 'none' or a file path, got {vgg_weights!r}")
    return VGG16Features(weights=None if vgg_weights in (None, "random") else vgg_weights).eval()


class NoFeatures(nn.Module):
    """A loss network that returns no feature maps: the perceptual and style terms become 0 and cost nothing."""

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return ()


def checked_weights(weights: Mapping[str, Any], what: str = "loss weight") -> dict[str, float]:
    """``weights`` as floats; a ``ValueError`` naming each one that is negative, NaN or infinite."""
    bad = {name: value for name, value in weights.items()
           if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0}
    if bad:
        raise ValueError(f"each {what} must be a finite number >= 0, got {bad}")
    return {name: float(value) for name, value in weights.items()}


def checked_model_args(model_class: type[nn.Module], args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` for ``model_class(**args)``, checked against its signature before anything is built.

    An unknown name is a ``ValueError`` listing the known ones; a value whose type differs from the default's
    (``base_channels=2.5``, ``layer_size="abc"``) a ``TypeError`` naming the argument.
    """
    parameters = {name: p for name, p in inspect.signature(model_class).parameters.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(args) - set(parameters))
    if unknown:
        raise ValueError(f"unknown model_args {unknown} for {model_class.__name__}; known: {sorted(parameters)}")
    for name, value in args.items():
        default = parameters[name].default
        expected = type(default) if default is not inspect.Parameter.empty and default is not None else None
        if expected is bool and not isinstance(value, bool):
            raise TypeError(f"model_arg {name} must be true or false, got {value!r}")
        if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"model_arg {name} must be an integer, got {value!r}")
        if expected is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError(f"model_arg {name} must be a number, got {value!r}")
        if expected is tuple and not isinstance(value, (list, tuple)):
            raise TypeError(f"model_arg {name} must be a list, got {value!r}")
    return {name: tuple(value) if isinstance(value, list) else value for name, value in args.items()}

