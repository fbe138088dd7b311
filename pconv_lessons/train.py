"""Training any of the course's inpainting models: a generic loop, checkpoints that resume exactly, and a CLI.

One training step, for every phase p of the model's objective (PConv: just "generator"; a GAN:
"discriminator" then "generator"):

    terms_p = objective.loss(p, model, image, mask)       # a dict of loss terms, "total" among them
    θ_p ← Adam(θ_p, ∇ terms_p["total"], lr_p(step))

PConv's two-phase schedule (Liu et al. 2018): Adam at lr 2e-4, then from ``finetune_step`` on lr 5e-5 with
the encoder's batch norms frozen (they use their running statistics and stop learning), because holes
distort the batch statistics of the encoder and the fine-tune phase lets the decoder adapt to fixed ones.

On CUDA the forward pass runs under bf16 autocast with channels_last tensors; on the CPU in float32.
Checkpoints (``OUT/last.pt``) are written atomically — to a temporary file in the same folder, then
``os.replace`` — and hold everything needed to continue bit-for-bit: model, optimizers, grad scaler,
step, config, the torch/CUDA/NumPy/Python RNG states and the index of the next training sample (sample
``i`` of the data set is a pure function of (seed, i), see ``pconv_lessons.data``).

Adding a model: ``register_model(name, build, objective)`` where ``build(config) -> nn.Module`` takes
``(image, mask)`` and returns the full-size prediction, and ``objective(config, device) -> Objective``.

    python -m pconv_lessons.train --model pconv --data sample --image-size 64 --batch-size 8 \\
        --steps 2000 --out runs/pconv [--max-minutes 30] [--resume] [--device cuda] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pconv_lessons.data import MaskBank, MaskFn, MaskSource, make_pairs

CHECKPOINT_FORMAT = "pconv_lessons.train/1"
CHECKPOINT_NAME = "last.pt"


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in every checkpoint.

    ``finetune_step=None`` starts the fine-tune phase (lower lr, frozen encoder BN; models that have
    one) after 80% of ``steps``. ``model_args`` go to the model's builder (PConv: ``base_channels``,
    ``layer_size``), ``loss_args`` to its objective (PConv: ``vgg_weights`` and ``weights``, see ``PConvObjective``).
    ``mask_bank=N`` > 0 trains on a ``MaskBank`` of N masks per hole-ratio bucket and family of ``mask_kind``
    instead of fresh masks per sample. ``precision="auto"`` is bf16 autocast on CUDA and float32 on the CPU. ``num_workers=None`` uses
    ``default_num_workers()`` DataLoader workers.
    """

    model: str = "pconv"
    data: str = "sample"
    image_size: int = 64
    batch_size: int = 8
    steps: int = 1000
    out: str = "runs/pconv"
    lr: float = 2e-4
    finetune_lr: float = 5e-5
    finetune_step: int | None = None
    mask_kind: str = "free_form"
    mask_bank: int = 0
    model_args: dict[str, Any] = field(default_factory=dict)
    loss_args: dict[str, Any] = field(default_factory=dict)
    max_minutes: float | None = None
    device: str = "auto"
    seed: int = 0
    precision: str = "auto"
    num_workers: int | None = None
    sample_every: int = 200
    checkpoint_every: int = 200
    skip_corrupt: bool = False

    def resolved_finetune_step(self) -> int:
        return int(0.8 * self.steps) if self.finetune_step is None else self.finetune_step


# ----------------------------------------------------------------------------------------- objectives


class Objective:
    """What a model is trained on. Override ``loss``; multi-phase objectives (GANs) override more.

    - ``phases``: optimizer steps per training step, in order; each phase has its own Adam optimizer.
    - ``parameters(phase, model)``: what that optimizer updates ("generator" → the model).
    - ``modules()``: trained parts that live in the objective (a discriminator), saved in checkpoints.
    - ``learning_rate(phase, step)`` and ``begin_step(step, model)``: the schedule (called every step,
      so they must be idempotent; this is also what re-applies a schedule after ``--resume``).
    - ``loss(phase, model, image, mask, cache)`` → dict of scalar terms with a ``"total"`` to minimise;
      ``cache`` is a dict shared by the phases of one step (e.g. the generator output).
    """

    phases: tuple[str, ...] = ("generator",)

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def merged_loss_args(self, defaults: dict[str, Any]) -> dict[str, Any]:
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

    def learning_rate(self, phase: str, step: int) -> float:
        return self.config.lr

    def begin_step(self, step: int, model: nn.Module) -> None:
        """Put the model in the mode the schedule wants for ``step`` (default: plain training mode)."""

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
    return VGG16Features(weights=None if vgg_weights in (None, "random") else vgg_weights).eval()


class NoFeatures(nn.Module):
    """A loss network that returns no feature maps: the perceptual and style terms become 0 and cost nothing."""

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return ()


class PConvObjective(Objective):
    """The PConv paper's loss (``InpaintingLoss``) and two-phase schedule (BN frozen in the encoder).

    ``loss_args``: ``vgg_weights`` — ``"imagenet"`` (the paper's choice; cached or downloaded once),
    a weights file, ``"random"`` (default: random-init VGG16, offline, announced by a warning) or
    ``"none"`` (no loss network: only the valid, hole and TV terms, much cheaper on a CPU) — and
    ``weights``, overrides of the paper's loss weights, e.g. ``{"style": 250}``.
    """

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        from pconv_lessons.losses import InpaintingLoss

        super().__init__(config)
        args = dict(config.loss_args)
        extractor = loss_network(args.pop("vgg_weights", "random"))
        self.criterion = InpaintingLoss(extractor if extractor is not None else NoFeatures(), **args).to(device)

    def finetuning(self, step: int) -> bool:
        return step >= self.config.resolved_finetune_step()

    def learning_rate(self, phase: str, step: int) -> float:
        return self.config.finetune_lr if self.finetuning(step) else self.config.lr

    def begin_step(self, step: int, model: nn.Module) -> None:
        model.freeze_encoder_batchnorm(self.finetuning(step))
        model.train()

    def loss(self, phase: str, model: nn.Module, image: Tensor, mask: Tensor, cache: dict) -> dict[str, Tensor]:
        return self.criterion(self.predict(model, image, mask), image, mask)


# ------------------------------------------------------------------------------------------- registry


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


def _build_pconv(config: TrainConfig) -> nn.Module:
    from pconv_lessons.models import PConvUNet

    return PConvUNet(**config.model_args)


register_model("pconv", _build_pconv, PConvObjective)


def _imported_on_call(module: str, name: str) -> Callable:
    """``pconv_lessons.<module>.<name>``, imported when first called: those modules import this one."""

    def call(*args):
        return getattr(importlib.import_module(f"pconv_lessons.{module}"), name)(*args)

    return call


register_model("gated", _imported_on_call("gan", "build_gated"), _imported_on_call("gan", "GatedGANObjective"))
register_model("lama", _imported_on_call("lama_training", "build_lama"), _imported_on_call("lama_training", "LamaObjective"))


def model_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; trainable models: {sorted(MODELS)}")
    return MODELS[name]


# ------------------------------------------------------------------------------------ infrastructure


def make_mask_fn(config: TrainConfig) -> MaskFn:
    """``MaskBank`` when ``config.mask_bank`` > 0, else fresh ``MaskSource`` masks of ``config.mask_kind``."""
    if config.mask_bank > 0:
        return MaskBank(config.mask_kind, config.image_size, per_bucket=config.mask_bank, seed=7_000_000 + config.seed)
    return MaskSource(config.mask_kind)


def default_num_workers() -> int:
    """DataLoader workers used when the config does not say: one per CPU core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA device is available; use --device cpu")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("auto", "bf16", "fp16", "fp32") on ``device``; None = float32."""
    choices = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision not in choices:
        raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {precision!r}")
    return choices[precision]


class _StreamSampler(torch.utils.data.Sampler[int]):
    """Indices start, start+1, … for ever: the data sets are endless streams indexed by sample number."""

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        index = self.start
        while True:
            yield index
            index += 1


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


def atomic_save(payload: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename it over ``path``.

    A crash or kill at any moment leaves either the old complete file or the new complete file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the Trainer (or ``export_model``); a clear ``ValueError`` if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}; train first (or drop --resume to start a new run)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"checkpoint {path} is corrupt or not a pconv_lessons checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path} is not a pconv_lessons training checkpoint ({CHECKPOINT_FORMAT})")
    return checkpoint


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in values.items() if key in known})


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The trained model stored in a checkpoint, built from its saved config, in eval mode."""
    checkpoint = load_checkpoint(path, map_location=device)
    config = config_from_dict(checkpoint["config"])
    model = model_entry(config.model).build(config)
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def export_model(checkpoint_path: str | Path, destination: str | Path) -> None:
    """Write a slim copy of a training checkpoint (model, config, step, loss history; no optimizer state)."""
    checkpoint = load_checkpoint(checkpoint_path)
    slim = {key: checkpoint[key] for key in ("format", "config", "model", "step", "history", "elapsed_seconds")}
    slim["model"] = {key: value.clone() for key, value in slim["model"].items()}
    atomic_save(slim, destination)


# -------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Trains ``config.model`` on ``config.data``; ``train()`` runs to ``config.steps`` or the time budget.

    ``resume=True`` continues from ``OUT/last.pt`` exactly where it stopped; the saved config is used,
    except ``steps``, ``max_minutes``, ``device`` and ``num_workers``, which come from ``config``, and
    ``finetune_step`` where ``config`` sets it (to move the fine-tune phase of a run under way).
    ``mask_fn`` replaces the mask generator (``MaskSource(config.mask_kind)``) — handy in tests.
    """

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True,
                 mask_fn: MaskFn | None = None) -> None:
        self.out = Path(config.out)
        checkpoint = load_checkpoint(self.out / CHECKPOINT_NAME) if resume else None
        if checkpoint is not None:
            saved = config_from_dict(checkpoint["config"])
            overrides = {"steps": config.steps, "max_minutes": config.max_minutes, "device": config.device,
                         "num_workers": config.num_workers, "out": config.out}
            if config.finetune_step is not None:
                overrides["finetune_step"] = config.finetune_step
            config = dataclasses.replace(saved, **overrides)
        if config.finetune_step is None:
            config = dataclasses.replace(config, finetune_step=config.resolved_finetune_step())
        self.config = config
        self.progress = progress
        self.device = resolve_device(config.device)
        self.dtype = autocast_dtype(config.precision, self.device)
        self.channels_last = self.device.type == "cuda"

        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        entry = model_entry(config.model)
        self.model = entry.build(config).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.objective = entry.objective(config, self.device)
        for module in self.objective.modules().values():
            module.to(self.device)
        self.optimizers = {
            phase: torch.optim.Adam(self.objective.parameters(phase, self.model), lr=config.lr)
            for phase in self.objective.phases
        }
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.step = 0
        self.samples_seen = 0
        self.elapsed_seconds = 0.0
        self.history: list[dict[str, float]] = []
        self._sample_batch: tuple[Tensor, Tensor] | None = None
        self.mask_fn = mask_fn if mask_fn is not None else make_mask_fn(config)
        self.pairs = make_pairs(config.data, config.image_size, self.mask_fn, config.seed,
                                split="train", skip_corrupt=config.skip_corrupt)
        if checkpoint is not None:
            self._restore(checkpoint)

    # ---- state

    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "samples_seen": self.samples_seen,
            "elapsed_seconds": self.elapsed_seconds,
            "model": self.model.state_dict(),
            "objective": {name: module.state_dict() for name, module in self.objective.modules().items()},
            "optimizers": {phase: optimizer.state_dict() for phase, optimizer in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "history": self.history,
        }

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(checkpoint["model"])
            for name, module in self.objective.modules().items():
                module.load_state_dict(checkpoint["objective"][name])
            for phase, optimizer in self.optimizers.items():
                optimizer.load_state_dict(checkpoint["optimizers"][phase])
            self.scaler.load_state_dict(checkpoint["scaler"])
            set_rng_state(checkpoint["rng"])
            self.step = int(checkpoint["step"])
            self.samples_seen = int(checkpoint["samples_seen"])
            self.elapsed_seconds = float(checkpoint["elapsed_seconds"])
            self.history = list(checkpoint["history"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise ValueError(f"checkpoint in {self.out} does not match this run ({type(error).__name__}: {error})") from error

    def save_checkpoint(self) -> Path:
        path = self.out / CHECKPOINT_NAME
        atomic_save(self.state(), path)
        return path

    # ---- data

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Endless (image, mask) batches on the device, from the run's current position in the data stream."""
        workers = self.config.num_workers if self.config.num_workers is not None else default_num_workers()
        loader = torch.utils.data.DataLoader(
            self.pairs, batch_size=self.config.batch_size, sampler=_StreamSampler(self.samples_seen),
            num_workers=workers, pin_memory=self.device.type == "cuda", drop_last=True,
        )
        with torch.random.fork_rng(devices=[]):  # creating the iterator draws a seed; keep the run's RNG exact
            iterator = iter(loader)
        for image, mask in iterator:
            yield self._to_device(image), self._to_device(mask)

    def _to_device(self, x: Tensor) -> Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # ---- the loop

    def train_step(self, image: Tensor, mask: Tensor) -> dict[str, float]:
        """One optimizer step per phase of the objective; returns the loss terms as floats."""
        self.objective.begin_step(self.step, self.model)
        cache: dict = {}
        logged: dict[str, float] = {}
        for phase, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.objective.learning_rate(phase, self.step)
            optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                terms = self.objective.loss(phase, self.model, image, mask, cache)
            total = terms["total"]
            if not torch.isfinite(total.detach()).all():
                values = {name: float(value) for name, value in terms.items()}
                raise FloatingPointError(f"loss is not finite at step {self.step} ({phase}): {values}")
            self.scaler.scale(total).backward()
            self.scaler.step(optimizer)
            prefix = "" if len(self.optimizers) == 1 else f"{phase}/"
            logged.update({prefix + name: float(value.detach()) for name, value in terms.items()})
        self.scaler.update()
        self.step += 1
        self.samples_seen += image.shape[0]
        return logged

    def train(self) -> list[dict[str, float]]:
        """Train until ``config.steps`` or ``max_minutes``; save checkpoint, samples and curves; return the history.

        ``max_minutes`` bounds the run's training time summed over all its resumes (like ``steps``, a total).
        """
        from tqdm.auto import tqdm

        config = self.config
        budget = math.inf if config.max_minutes is None else 60.0 * config.max_minutes
        started = time.monotonic() - self.elapsed_seconds
        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=config.steps, initial=self.step, disable=not self.progress, desc=config.model)
        batches = self.batches()
        try:
            while self.step < config.steps:
                if time.monotonic() - started >= budget:
                    bar.write(f"Time budget of {config.max_minutes} min reached at step {self.step}.")
                    break
                image, mask = next(batches)
                terms = self.train_step(image, mask)
                self.history.append({"step": float(self.step), **terms})
                self.elapsed_seconds = time.monotonic() - started
                bar.update(1)
                bar.set_postfix({name: f"{value:.3g}" for name, value in terms.items()}, refresh=False)
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if config.sample_every and self.step % config.sample_every == 0:
                    self.save_samples()
        finally:
            bar.close()
            batches.close()
        self.elapsed_seconds = time.monotonic() - started
        self.save_checkpoint()
        self.save_samples()
        self.save_history()
        return self.history

    # ---- outputs

    def sample_batch(self, count: int = 4) -> tuple[Tensor, Tensor]:
        """Fixed (image, mask) pairs for the sample grids: held-out photos for ``--data sample``.

        For a folder, its first ``count`` images (centre crops), which the training stream also sees.
        """
        if self._sample_batch is None or len(self._sample_batch[0]) != count:
            pairs = make_pairs(self.config.data, self.config.image_size, self.mask_fn, self.config.seed,
                               split="test", skip_corrupt=self.config.skip_corrupt)
            self._sample_batch = tuple(torch.stack(parts) for parts in zip(*(pairs[i] for i in range(count))))
        return self._sample_batch

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """The model's prediction for a batch, in eval mode (the mode is restored afterwards)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                prediction = self.objective.predict(self.model, self._to_device(image), self._to_device(mask))
        finally:
            self.model.train(was_training)
        return prediction.float().cpu()

    def save_samples(self, count: int = 4) -> Path:
        from pconv_lessons.viz import inpainting_grid

        image, mask = self.sample_batch(count)
        figure = inpainting_grid(image, mask, self.inpaint(image, mask), title=f"step {self.step}")
        path = self.out / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=80)
        _close(figure)
        return path

    def save_history(self) -> None:
        from pconv_lessons.viz import plot_loss_curves

        if not self.history:
            return
        with open(self.out / "losses.csv", "w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(self.history[-1]))
            writer.writeheader()
            writer.writerows(self.history)
        figure = plot_loss_curves(self.history, marks={"fine-tune": self.config.resolved_finetune_step()})
        figure.savefig(self.out / "loss_curve.png", dpi=80)
        _close(figure)


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)


# ------------------------------------------------------------------------------------------------ CLI


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pconv_lessons.train",
        description="Train an inpainting model of the course (checkpoints in OUT/last.pt, resumable).",
    )
    parser.add_argument("--model", default="pconv", help=f"one of {sorted(MODELS)}")
    parser.add_argument("--data", default="sample", help="'sample' (the shipped photos) or a folder of images")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1000, help="total steps (also when resuming)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop cleanly once the run's training time (summed over resumes) reaches this")
    parser.add_argument("--out", required=True, help="run folder: last.pt, samples/, losses.csv, loss_curve.png")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, …")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--finetune-lr", type=float, default=5e-5)
    parser.add_argument("--finetune-step", type=int, default=None, help="default: 80%% of --steps")
    parser.add_argument("--mask-kind", default="free_form", help="a pconv_lessons.masks family")
    parser.add_argument("--mask-bank", type=int, default=0, metavar="N",
                        help="train on a fixed pool of N masks per hole-ratio bucket (0: fresh masks per sample)")
    parser.add_argument("--model-arg", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="model knob, e.g. base_channels=16 (repeatable; values parsed as JSON)")
    parser.add_argument("--loss-arg", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                        help="objective knob, e.g. vgg_weights=imagenet (repeatable)")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--sample-every", type=int, default=200)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images with a warning")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        model=args.model, data=args.data, image_size=args.image_size, batch_size=args.batch_size,
        steps=args.steps, out=args.out, lr=args.lr, finetune_lr=args.finetune_lr,
        finetune_step=args.finetune_step, mask_kind=args.mask_kind, mask_bank=args.mask_bank,
        model_args=dict(args.model_arg),
        loss_args=dict(args.loss_arg), max_minutes=args.max_minutes, device=args.device, seed=args.seed,
        precision=args.precision, num_workers=args.num_workers, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, skip_corrupt=args.skip_corrupt,
    )
    trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    history = trainer.train()
    last = history[-1] if history else {}
    summary = ", ".join(f"{name} {value:.4g}" for name, value in last.items() if name != "step")
    print(f"step {trainer.step}/{trainer.config.steps}: {summary}; checkpoint {trainer.out / CHECKPOINT_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
