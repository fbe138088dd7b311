"""The command line: ``python -m pconv_lessons.train`` / ``pconv-train`` (train), ``… export`` (safetensors).

    python -m pconv_lessons.train --model pconv --data sample --image-size 64 --batch-size 8 \\
        --steps 2000 --out runs/pconv [--max-minutes 30] [--resume | --overwrite] [--device cuda] [--seed 0]
    torchrun --nproc_per_node=4 -m pconv_lessons.train …      # DDP: --batch-size is per process
    python -m pconv_lessons.train export runs/pconv/last.pt data/checkpoints/NAME.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from pconv_lessons.training.checkpoints import CHECKPOINT_NAME, export_model
from pconv_lessons.training.config import DEFAULT_DDP_TIMEOUT, TrainConfig
from pconv_lessons.training.registry import MODELS
from pconv_lessons.training.trainer import Trainer

INTERRUPTED = 130  # the shell's exit status for a command stopped by Ctrl-C


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
        description="Train an inpainting model of the course (checkpoint OUT/last.pt, log OUT/losses.csv, "
                    "resumable). `export SRC DST` writes a checkpoint as safetensors + JSON.",
    )
    parser.add_argument("--model", default="pconv", help=f"one of {sorted(MODELS)}")
    parser.add_argument("--data", default="sample", help="'sample' (the shipped photos, even beside a folder ./sample: "
                        "pass ./sample for that), 'brick' (the brick texture's left half, scaled/rotated/flipped at "
                        "random; its right half held out), 'brick-plain' (no scaling or rotation) or a folder of images")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8, help="per process (torchrun: the global batch is N ×)")
    parser.add_argument("--accumulate", type=int, default=1, metavar="K",
                        help="gradient accumulation: K batches per optimizer step")
    parser.add_argument("--steps", type=int, default=1000, help="total steps (also when resuming)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="stop cleanly once the run's training time (summed over resumes) reaches this")
    parser.add_argument("--out", required=True, help="run folder: last.pt, losses.csv, samples/, loss_curve.png")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    start.add_argument("--overwrite", action="store_true", help="replace the run already in OUT")
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
    parser.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                        help="keep an exponential moving average of the generator (e.g. 0.999); 0: off")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the generator")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--log-every", type=int, default=10, help="fetch and log the loss terms every N steps")
    parser.add_argument("--eval-every", type=int, default=200, help="held-out L1/PSNR/SSIM every N steps (0: never)")
    parser.add_argument("--sample-every", type=int, default=200)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--tensorboard", action="store_true", help="also log to OUT/tensorboard (needs tensorboard)")
    parser.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images with a warning")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads, >= 1 (default: torch's choice)")
    parser.add_argument("--ddp-timeout", type=float, default=DEFAULT_DDP_TIMEOUT, metavar="MINUTES",
                        help="torchrun: how long a process waits for the others in one collective before the run "
                             f"fails, naming the rank(s) that stopped answering (default: {DEFAULT_DDP_TIMEOUT:g})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pconv_lessons.train export",
        description="Write a checkpoint (OUT/last.pt or an old .pt export) as NAME.safetensors + NAME.json + "
                    "NAME.losses.csv; load it with pconv_lessons.train.load_model.",
    )
    parser.add_argument("source", help="a training checkpoint or a .pt export")
    parser.add_argument("destination", help="NAME.safetensors")
    parser.add_argument("--no-ema", action="store_true", help="export the raw weights even if the run kept an EMA")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model=args.model, data=args.data, image_size=args.image_size, batch_size=args.batch_size,
        steps=args.steps, out=args.out, lr=args.lr, finetune_lr=args.finetune_lr,
        finetune_step=args.finetune_step, mask_kind=args.mask_kind, mask_bank=args.mask_bank,
        model_args=dict(args.model_arg), loss_args=dict(args.loss_arg), max_minutes=args.max_minutes,
        device=args.device, seed=args.seed, precision=args.precision, num_workers=args.num_workers,
        sample_every=args.sample_every, checkpoint_every=args.checkpoint_every, skip_corrupt=args.skip_corrupt,
        accumulate=args.accumulate, ema=args.ema, log_every=args.log_every, eval_every=args.eval_every,
        tensorboard=args.tensorboard, compile=args.compile, ddp_timeout=args.ddp_timeout,
    )


# command-line destinations → the TrainConfig fields they set
CONFIG_FIELDS = {"model_arg": "model_args", "loss_arg": "loss_args"}


def explicit_fields(argv: list[str]) -> set[str]:
    """The ``TrainConfig`` fields that ``argv`` sets explicitly (a value equal to the default counts too)."""
    parser = build_parser()
    values = vars(parser.parse_args(argv))
    repeated = {name for name, value in values.items() if isinstance(value, list)}  # --model-arg, --loss-arg
    unset = object()  # not a string: argparse passes string defaults through the option's type
    parser.set_defaults(**dict.fromkeys(set(values) - repeated, unset))
    given = {name for name, value in vars(parser.parse_args(argv)).items()
             if value is not unset and (name not in repeated or value)}
    return {CONFIG_FIELDS.get(name, name) for name in given}


def export_main(argv: list[str]) -> int:
    args = build_export_parser().parse_args(argv)
    path = export_model(args.source, args.destination, ema=not args.no_ema)
    print(f"exported {args.source} to {path} (+ .json, .losses.csv): {path.stat().st_size / 2**20:.2f} MiB")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Train (or ``export``); errors in the arguments or the run folder raise ``ValueError``/``TypeError``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1 (torch CPU threads; leave it out for torch's choice), "
                             f"got {args.threads}")
        torch.set_num_threads(args.threads)
    trainer = Trainer(config_from_args(args), resume=args.resume, progress=not args.no_progress,
                      overwrite=args.overwrite, explicit=explicit_fields(argv))
    try:
        history = trainer.train()
    finally:
        trainer.dist.close()
    if trainer.dist.is_main:
        last = history[-1] if history else {}
        summary = ", ".join(f"{name} {value:.4g}" for name, value in last.items() if name != "step")
        print(f"step {trainer.step}/{trainer.config.steps}: {summary}; checkpoint {trainer.out / CHECKPOINT_NAME}")
    return INTERRUPTED if trainer.stop_reason == "signal" else 0


def run() -> int:
    """The console entry point: ``main`` with argument and run-folder errors as one line, exit status 2."""
    try:
        return main()
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        print(f"pconv-train: error: {error}", file=sys.stderr)
        return 2
