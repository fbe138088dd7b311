"""What defines a training run: ``TrainConfig``, checked when it is made, and the rules for changing it on resume.

A run is identified by the fields in ``RUN_IDENTITY`` (model, data, sizes, learning rates, seed, …): ``--resume``
keeps them from the checkpoint and rejects a contradiction. Everything else (``steps``, the time budget, the device,
how often to log or save) may change between the sessions of one run. ``steps`` and ``max_minutes`` are totals.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

DEFAULT_DDP_TIMEOUT = 10.0  # minutes; longer than any checkpoint, sample or evaluation rank 0 does alone
MAX_SEED = 2**32 - 1  # the largest seed NumPy's legacy global generator (np.random.seed) takes

RUN_IDENTITY = (
    "model", "data", "image_size", "batch_size", "accumulate", "lr", "finetune_lr", "mask_kind", "mask_bank",
    "model_args", "loss_args", "seed", "precision", "ema",
)


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved in every checkpoint.

    ``finetune_step=None`` starts the fine-tune phase (lower lr, frozen encoder BN; models that have one) after 80%
    of ``steps`` — of the total of the current session, so ``--resume --steps N`` moves it with the total.
    ``model_args`` go to the model's builder (PConv: ``base_channels``, ``layer_size``), ``loss_args`` to its
    objective. ``mask_bank=N`` > 0 trains on a ``MaskBank`` of N masks per hole-ratio bucket and family of
    ``mask_kind`` instead of fresh masks per sample. ``precision="auto"`` is bf16 autocast on CUDA and float32 on
    the CPU. ``num_workers=None`` uses ``default_num_workers()`` DataLoader workers.

    ``batch_size`` is per process (``torchrun`` runs several): one optimizer step sees
    ``world_size × accumulate × batch_size`` samples. ``ema`` > 0 keeps an exponential moving average of the
    generator's weights with that decay (used for samples, evaluation and export). The loss terms are logged every
    ``log_every`` steps (one host synchronisation per log, not per step), held-out L1/PSNR/SSIM every
    ``eval_every`` steps (0: never), into ``OUT/losses.csv``; ``tensorboard`` also writes them to ``OUT/tensorboard``.
    ``ddp_timeout``: minutes a process waits for the others in one collective before the run fails, naming the
    rank(s) that stopped answering (``pconv_lessons.training.distributed``). ``seed`` lies in [0, 2³² − 1]
    (``MAX_SEED``, what ``np.random.seed`` takes). ``data`` is resolved by ``pconv_lessons.data.resolve_data``.
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
    accumulate: int = 1
    ema: float = 0.0
    log_every: int = 10
    eval_every: int = 200
    tensorboard: bool = False
    compile: bool = False
    ddp_timeout: float = DEFAULT_DDP_TIMEOUT

    def __post_init__(self) -> None:
        _check_int("steps", self.steps, minimum=1)
        _check_int("image_size", self.image_size, minimum=8)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("accumulate", self.accumulate, minimum=1)
        _check_int("log_every", self.log_every, minimum=1)
        for name in ("mask_bank", "sample_every", "checkpoint_every", "eval_every"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("seed", self.seed, minimum=0, maximum=MAX_SEED)
        if self.finetune_step is not None:
            _check_int("finetune_step", self.finetune_step, minimum=0)
        if self.num_workers is not None:
            _check_int("num_workers", self.num_workers, minimum=0)
        for name in ("lr", "finetune_lr"):
            _check_number(name, getattr(self, name), positive=True)
        if self.max_minutes is not None:
            _check_number("max_minutes", self.max_minutes, positive=False)
        _check_number("ema", self.ema, positive=False)
        _check_number("ddp_timeout", self.ddp_timeout, positive=True)
        if self.ema >= 1:
            raise ValueError(f"ema must be a decay in [0, 1) (0: off), got {self.ema!r}")
        for name in ("model_args", "loss_args"):
            if not isinstance(getattr(self, name), dict):
                raise TypeError(f"{name} must be a dict, got {type(getattr(self, name)).__name__}")

    def resolved_finetune_step(self) -> int:
        return int(0.8 * self.steps) if self.finetune_step is None else self.finetune_step


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")


def _check_number(name: str, value: Any, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from a saved config (keys of older versions that no longer exist are dropped)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in values.items() if key in known})


def resumed_config(saved: TrainConfig, asked: TrainConfig, explicit: Collection[str] | None = None) -> TrainConfig:
    """The config of a resumed run: ``saved``'s identity, the rest from ``asked``.

    ``explicit``: the fields the user set (the CLI knows them); ``None`` counts every field of ``asked`` that differs
    from its default. An explicit field of ``RUN_IDENTITY`` whose value differs from the saved one is a
    contradiction: ``ValueError`` listing each one and what the run has.
    """
    defaults = TrainConfig()
    given = [name for name in RUN_IDENTITY
             if (name in explicit if explicit is not None else getattr(asked, name) != getattr(defaults, name))]
    contradictions = [
        f"{name}={getattr(asked, name)!r} (the run has {getattr(saved, name)!r})"
        for name in given if getattr(asked, name) != getattr(saved, name)
    ]
    if contradictions:
        raise ValueError(
            "--resume continues the saved run with its own settings; this command contradicts them: "
            + "; ".join(contradictions)
            + ". Drop these options, or start a new run in another --out (or with --overwrite)."
        )
    changeable = {f.name: getattr(asked, f.name) for f in dataclasses.fields(TrainConfig) if f.name not in RUN_IDENTITY}
    if asked.finetune_step is None:  # not asked: the saved choice (a step, or None = 80 % of the current total)
        changeable["finetune_step"] = saved.finetune_step
    return dataclasses.replace(saved, **changeable)


def kept_on_resume(config: TrainConfig) -> str:
    """One line naming the settings a resumed run keeps from its checkpoint."""
    return ", ".join(f"{name}={getattr(config, name)!r}" for name in RUN_IDENTITY)
