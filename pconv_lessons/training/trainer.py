"""The training loop: any registered model and objective, one or several processes, resumable bit for bit.

One step (``Trainer.train_step``), for every phase p of the objective, over ``accumulate`` micro-batches b:

    θ_p ← Adam(θ_p, (1/accumulate) Σ_b ∇ terms_p(b)["total"], lr_p(step), betas_p);   then θ_ema ← lerp(θ_ema, θ, 1 − decay)

On CUDA the forward pass runs under bf16 autocast with channels_last tensors; on the CPU in float32. Under
``torchrun`` the generator and the objective's trained modules (a discriminator) run in DistributedDataParallel
(``pconv_lessons.training.distributed``). The loss terms stay on the device and are fetched every ``log_every``
steps (one synchronisation per log, none per step); a non-finite loss stops the run at the next log, before any
checkpoint holds it. Ctrl-C (SIGINT) or SIGTERM stops after the current step — at the next log under torchrun,
where the ranks agree on it — and saves as at the end; a second Ctrl-C aborts at once, keeping the logged steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import signal
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pconv_lessons.data import MaskBank, MaskFn, MaskSource, make_pairs
from pconv_lessons.training.checkpoints import (
    CHECKPOINT_FORMAT, CHECKPOINT_NAME, atomic_save, check_optimizer_state, check_state_fits, checkpoint_config,
    checkpoint_field, load_checkpoint, resolve_device, rng_state, set_rng_state,
)
from pconv_lessons.training.config import TrainConfig, kept_on_resume, resumed_config
from pconv_lessons.training.distributed import Distributed
from pconv_lessons.training.ema import ModelEMA
from pconv_lessons.training.logs import (
    History, TensorBoardLog, history_table, resync_history, tensorboard_writer_class, write_history,
)
from pconv_lessons.training.registry import model_entry
from pconv_lessons.training.runfolder import RunFolder

EVAL_IMAGES = 8


def make_mask_fn(config: TrainConfig) -> MaskFn:
    """``MaskBank`` when ``config.mask_bank`` > 0, else fresh ``MaskSource`` masks of ``config.mask_kind``."""
    if config.mask_bank > 0:
        return MaskBank(config.mask_kind, config.image_size, per_bucket=config.mask_bank, seed=7_000_000 + config.seed)
    return MaskSource(config.mask_kind)


def default_num_workers() -> int:
    """DataLoader workers used when the config does not say: one per CPU core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` ("auto", "bf16", "fp16", "fp32") on ``device``; None = float32."""
    choices = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision not in choices:
        raise ValueError(f"precision must be auto, bf16, fp16 or fp32, got {precision!r}")
    return choices[precision]


class _StreamBatches(torch.utils.data.Sampler[list[int]]):
    """Batches of sample indices for ever, from ``start``: block k of ``batch × world`` samples, rank r's slice."""

    def __init__(self, start: int, batch_size: int, rank: int, world_size: int) -> None:
        self.start, self.batch_size, self.rank, self.world_size = start, batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        block = self.start
        while True:
            first = block + self.rank * self.batch_size
            yield list(range(first, first + self.batch_size))
            block += self.batch_size * self.world_size


class _StopRequest:
    """SIGINT / SIGTERM set ``requested`` (the loop stops cleanly); a second SIGINT raises KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class Trainer:
    """Trains ``config.model`` on ``config.data``; ``train()`` runs to ``config.steps`` or the time budget.

    ``resume=True`` continues from ``OUT/last.pt`` exactly where it stopped, with the run's own settings
    (``TrainConfig``'s ``RUN_IDENTITY``; a contradicting setting is a ``ValueError``); ``steps``, ``max_minutes``,
    ``device``, the logging and saving intervals and ``finetune_step`` (where set) come from ``config``.
    A fresh run into a folder that holds a run is refused unless ``overwrite=True``.
    ``explicit`` names the config fields the user set (``resumed_config``). ``mask_fn`` replaces the mask generator
    (``MaskSource(config.mask_kind)``) — handy in tests.
    """

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True,
                 mask_fn: MaskFn | None = None, overwrite: bool = False,
                 explicit: Collection[str] | None = None) -> None:
        self.folder = RunFolder(config.out)
        self.out = self.folder.path
        self.resume, self.overwrite, self.progress = resume, overwrite, progress
        checkpoint = load_checkpoint(self.folder.checkpoint) if resume else None
        if checkpoint is not None:
            saved = checkpoint_config(checkpoint, f"checkpoint {self.folder.checkpoint}")
            config = resumed_config(saved, config, explicit)
        else:
            self.folder.check_fresh_start(resume, overwrite)
        self.config = config
        self.dist = Distributed.from_environment(resolve_device(config.device), config.ddp_timeout)
        self.device = self.dist.device(resolve_device(config.device))
        self.dtype = autocast_dtype(config.precision, self.device)
        self.channels_last = self.device.type == "cuda"

        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        entry = model_entry(config.model)
        self.model = entry.build(config).to(self.device)
        if hasattr(self.model, "check_mask_values"):  # the data's masks are 0/1 by construction; checking their
            self.model.check_mask_values = False      # values would synchronise with the GPU at every step
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.objective = entry.objective(config, self.device)
        for module in self.objective.modules().values():
            module.to(self.device)
        if self.dist.enabled and config.accumulate > 1 and len(self.objective.phases) > 1:
            raise ValueError("accumulate > 1 with a multi-phase (GAN) objective is supported in one process only")
        self.ema = ModelEMA(self.model, config.ema) if config.ema else None
        self.optimizers = {
            phase: torch.optim.Adam(self.objective.parameters(phase, self.model), lr=config.lr,
                                    betas=self.objective.adam_betas)
            for phase in self.objective.phases
        }
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        self.network = self.dist.wrap(self.model, self.device)
        self.objective.wrapped = {name: self.dist.wrap(module, self.device)
                                  for name, module in self.objective.modules().items()}
        if config.compile:
            self.network = torch.compile(self.network)
        self.step = 0
        self.samples_seen = 0
        self.elapsed_seconds = 0.0
        self.history: History = []
        self._pending: list[tuple[int, dict[str, Tensor]]] = []
        self._unsaved: History = []
        self._held_out: dict[int, tuple[Tensor, Tensor]] = {}
        self._tensorboard: TensorBoardLog | None = None
        self.mask_fn = mask_fn if mask_fn is not None else make_mask_fn(config)
        self.pairs = make_pairs(config.data, config.image_size, self.mask_fn, config.seed,
                                split="train", skip_corrupt=config.skip_corrupt)
        if checkpoint is not None:
            self._restore(checkpoint)
            if self.dist.is_main:
                print(f"Resuming {self.out} at step {self.step}; the run keeps {kept_on_resume(self.config)}.")

    # ---- state

    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.config),
            "step": self.step,
            "samples_seen": self.samples_seen,
            "elapsed_seconds": self.elapsed_seconds,
            "model": self.model.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "objective": {name: module.state_dict() for name, module in self.objective.modules().items()},
            "optimizers": {phase: optimizer.state_dict() for phase, optimizer in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "history": history_table(self.history),
        }

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        """Load every part of ``checkpoint``, each checked first: a ``ValueError`` naming the file and the field."""
        source = f"checkpoint {self.folder.checkpoint}"
        check_state_fits(self.model, checkpoint["model"], f"{source} (field 'model')")
        if self.ema is not None:
            checkpoint_field(checkpoint, "ema", dict, source)
            check_state_fits(self.ema.average, checkpoint["ema"], f"{source} (field 'ema')")
        parts = {name: checkpoint_field(checkpoint, name, dict, source)
                 for name in ("objective", "optimizers", "scaler", "rng")}
        for name, module in self.objective.modules().items():
            check_state_fits(module, checkpoint_field(parts["objective"], name, dict, f"{source}, objective"),
                             f"{source} (field objective[{name!r}])")
        for phase, optimizer in self.optimizers.items():
            state = checkpoint_field(parts["optimizers"], phase, dict, f"{source}, optimizers")
            check_optimizer_state(optimizer, state, f"{source} (field optimizers[{phase!r}])")
        samples_seen = checkpoint_field(checkpoint, "samples_seen", int, source)
        elapsed = checkpoint_field(checkpoint, "elapsed_seconds", (int, float), source)
        try:
            self.model.load_state_dict(checkpoint["model"])
            if self.ema is not None:
                self.ema.load_state_dict(checkpoint["ema"])
            for name, module in self.objective.modules().items():
                module.load_state_dict(parts["objective"][name])
            for phase, optimizer in self.optimizers.items():
                optimizer.load_state_dict(parts["optimizers"][phase])
            self.scaler.load_state_dict(parts["scaler"])
            set_rng_state(parts["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as error:
            raise ValueError(f"{source} does not match this run ({type(error).__name__}: {error})") from error
        self.step = checkpoint["step"]
        self.samples_seen = samples_seen
        self.elapsed_seconds = float(elapsed)
        self.history = list(checkpoint["history"])

    def save_checkpoint(self) -> Path:
        """Append the not yet written log rows to ``losses.csv``, then write ``last.pt`` (rank 0 only)."""
        path = self.out / CHECKPOINT_NAME
        if self.dist.is_main:
            self._write_log()
            atomic_save(self.state(), path)
        return path

    def _write_log(self) -> None:
        if self._unsaved and self.dist.is_main:
            write_history(self.folder.history, self._unsaved, append=True)
            self._unsaved = []

    # ---- data

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Endless (image, mask) batches on the device, from the run's current position in the data stream."""
        workers = self.config.num_workers if self.config.num_workers is not None else default_num_workers()
        sampler = _StreamBatches(self.samples_seen, self.config.batch_size, self.dist.rank, self.dist.world_size)
        loader = torch.utils.data.DataLoader(self.pairs, batch_sampler=sampler, num_workers=workers,
                                             pin_memory=self.device.type == "cuda")
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

    def _no_sync(self, skip: bool):
        """DDP's ``no_sync`` on every wrapped module while gradients are still being accumulated."""
        stack = contextlib.ExitStack()
        if skip:
            for module in [self.network, *self.objective.wrapped.values()]:
                if hasattr(module, "no_sync"):
                    stack.enter_context(module.no_sync())
        return stack

    # ---- the loop

    def step_terms(self, micro_batches: Sequence[tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        """One optimizer step per phase over ``micro_batches``; the loss terms as detached device tensors."""
        self.objective.begin_step(self.step, self.model)
        count = len(micro_batches)
        caches: list[dict] = [{} for _ in micro_batches]
        logged: dict[str, Tensor] = {}
        for phase, optimizer in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = self.objective.learning_rate(phase, self.step)
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, Tensor] = {}
            for index, (image, mask) in enumerate(micro_batches):
                with self._no_sync(index < count - 1), self._autocast():
                    terms = self.objective.loss(phase, self.network, image, mask, caches[index])
                self.scaler.scale(terms["total"] / count).backward()
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0) + value.detach().float() / count
            self.scaler.step(optimizer)
            prefix = "" if len(self.optimizers) == 1 else f"{phase}/"
            logged.update({prefix + name: value for name, value in sums.items()})
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        self.samples_seen += count * self.config.batch_size * self.dist.world_size
        return logged

    def train_step(self, image: Tensor, mask: Tensor) -> dict[str, float]:
        """One step on one batch; returns the loss terms as floats (a ``FloatingPointError`` if one is not finite)."""
        terms = {name: float(value) for name, value in self.step_terms([(image, mask)]).items()}
        if not all(math.isfinite(value) for value in terms.values()):
            raise FloatingPointError(f"loss is not finite at step {self.step}: {terms}")
        return terms

    def _due(self) -> bool:
        config, step = self.config, self.step
        return (step == config.steps or step % config.log_every == 0
                or any(every and step % every == 0
                       for every in (config.checkpoint_every, config.sample_every, config.eval_every)))

    def _flush(self, bar=None, collective: bool = True) -> None:
        """Fetch the pending loss terms (one transfer; averaged over the ranks) into ``history``."""
        if not self._pending:
            return
        flat = torch.cat([torch.stack(list(terms.values())) for _, terms in self._pending])
        values = (self.dist.mean(flat) if collective else flat).cpu().tolist()
        rows, offset = [], 0
        for step, terms in self._pending:
            rows.append({"step": float(step), **dict(zip(terms, values[offset:offset + len(terms)]))})
            offset += len(terms)
        self._pending = []
        self.history.extend(rows)
        self._unsaved.extend(rows)
        if self._tensorboard is not None:
            self._tensorboard.write(rows)
        if bar is not None:
            bar.set_postfix({name: f"{value:.3g}" for name, value in rows[-1].items() if name != "step"}, refresh=False)
        bad = next((row for row in rows if not all(math.isfinite(value) for value in row.values())), None)
        if bad is not None:
            raise FloatingPointError(f"loss is not finite at step {int(bad['step'])}: {bad}")

    def _stop_agreed(self, local: bool) -> bool:
        """Single process: ``local``. Under torchrun the ranks agree, at log steps only (one all-reduce)."""
        if not self.dist.enabled:
            return local
        return self.step % self.config.log_every == 0 and self.dist.any(local, self.device)

    def _open_session(self) -> None:
        """Rank 0 locks and checks the run folder before the first step; its verdict reaches every rank."""
        problem = None
        if self.dist.is_main:
            try:
                self.folder.open()
                if not self.resume:
                    self.folder.check_fresh_start(False, self.overwrite)
                    self._preflight()
                    self.folder.discard_previous_run()
                else:  # the log exactly as the checkpoint has it (rows a crash logged after it, a damaged file)
                    note = resync_history(self.folder.history, self.history)
                    if note:
                        print(note)
                if self.config.tensorboard:
                    self._tensorboard = TensorBoardLog(self.out / "tensorboard")
            except (ValueError, RuntimeError, OSError) as error:
                self.folder.close()
                problem = str(error)
        problem = self.dist.share(problem)
        if problem is not None:
            raise ValueError(problem)
        self.resume = True  # a second train() on this Trainer continues its own run

    def _preflight(self) -> None:
        """What could still fail at the first step, tried before a fresh run replaces anything in ``--out``."""
        if self.config.tensorboard:
            tensorboard_writer_class()
        self.pairs[self.samples_seen]  # one training sample: the data can be read, the mask kinds drawn
        if self.config.eval_every or self.config.sample_every:
            self.sample_batch(1)

    def _close_session(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        self.folder.close()

    def train(self) -> History:
        """Train until ``config.steps``, the time budget or a stop request; save checkpoint, log, samples, curves.

        Returns the history (one row per step; also in ``OUT/losses.csv``). ``max_minutes`` bounds the run's
        training time summed over all its resumes (like ``steps``, a total).
        """
        from tqdm.auto import tqdm

        config = self.config
        budget = math.inf if config.max_minutes is None else 60.0 * config.max_minutes
        self.stop_reason: str | None = None
        self._open_session()
        started = time.monotonic() - self.elapsed_seconds
        bar = tqdm(total=config.steps, initial=self.step, disable=not (self.progress and self.dist.is_main),
                   desc=config.model)
        batches = self.batches()
        try:
            with _StopRequest() as stop:
                while self.step < config.steps:
                    if self._stop_agreed(stop.requested or time.monotonic() - started >= budget):
                        self.stop_reason = "signal" if stop.requested else "time budget"
                        bar.write(f"Stopped by {self.stop_reason} at step {self.step}; saving.")
                        break
                    self._pending.append((self.step + 1, self.step_terms(
                        [next(batches) for _ in range(config.accumulate)])))
                    bar.update(1)
                    if self._due() or (stop.requested and not self.dist.enabled):
                        self._after_log(bar, started)
            self._flush(bar)
        except BaseException as error:
            if self.dist.is_main:
                with contextlib.suppress(Exception):
                    self._flush(collective=False)
                self._write_log()
            self._close_session()
            if self.dist.enabled and self.dist.is_timeout(error):
                raise self.dist.unresponsive(error, self.step) from error
            raise
        finally:
            bar.close()
            batches.close()
        try:
            self.elapsed_seconds = time.monotonic() - started
            self.save_checkpoint()
            if self.dist.is_main:
                self.save_samples()
                self.save_history()
        finally:
            self._close_session()
        return self.history

    def _after_log(self, bar, started: float) -> None:
        config, step = self.config, self.step
        self._flush(bar)
        self.elapsed_seconds = time.monotonic() - started
        if config.eval_every and step % config.eval_every == 0 and self.dist.is_main:
            self.history[-1].update(self.evaluate())
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            self.save_checkpoint()
        if config.sample_every and step % config.sample_every == 0 and self.dist.is_main:
            self.save_samples()

    # ---- outputs

    @property
    def inference_model(self) -> torch.nn.Module:
        """The model that samples, evaluation and exports use: the EMA average if the run keeps one."""
        return self.model if self.ema is None else self.ema.average

    def sample_batch(self, count: int = 4) -> tuple[Tensor, Tensor]:
        """Fixed (image, mask) pairs for the sample grids and the held-out metrics: held-out photos for ``--data sample``.

        For a folder, its first ``count`` images (centre crops), which the training stream also sees.
        """
        if count not in self._held_out:
            pairs = make_pairs(self.config.data, self.config.image_size, self.mask_fn, self.config.seed,
                               split="test", skip_corrupt=self.config.skip_corrupt)
            self._held_out[count] = tuple(torch.stack(parts) for parts in zip(*(pairs[i] for i in range(count))))
        return self._held_out[count]

    @torch.no_grad()
    def inpaint(self, image: Tensor, mask: Tensor) -> Tensor:
        """The inference model's prediction for a batch, in eval mode (the mode is restored afterwards)."""
        model = self.inference_model
        was_training = model.training
        model.eval()
        try:
            with self._autocast():
                prediction = self.objective.predict(model, self._to_device(image), self._to_device(mask))
        finally:
            model.train(was_training)
        return prediction.float().cpu()

    def evaluate(self, count: int = EVAL_IMAGES) -> dict[str, float]:
        """Held-out L1, PSNR and SSIM of the composite on a fixed batch (SSIM from 11×11 pixels up)."""
        from pconv_lessons import metrics
        from pconv_lessons.models import composite

        image, mask = self.sample_batch(count)
        completed = composite(self.inpaint(image, mask), image, mask).clamp(0, 1)
        scores = {"eval_l1": metrics.l1(completed, image), "eval_psnr": metrics.psnr(completed, image)}
        if min(image.shape[-2:]) >= metrics.SSIM_WINDOW:
            scores["eval_ssim"] = metrics.ssim(completed, image)
        return {name: float(values.mean()) for name, values in scores.items()}

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
        """``losses.csv`` up to date and ``loss_curve.png`` of the loss terms (held-out metrics left out)."""
        from pconv_lessons.viz import plot_loss_curves

        self._write_log()
        losses = [{name: value for name, value in row.items() if not name.startswith("eval_")} for row in self.history]
        if not losses:
            return
        figure = plot_loss_curves(losses, marks={"fine-tune": self.config.resolved_finetune_step()})
        figure.savefig(self.out / "loss_curve.png", dpi=80)
        _close(figure)


def _close(figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)
