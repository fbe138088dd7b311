"""One command for the first machine with one CUDA GPU: tests, GPU benchmarks, three trainings, evaluation, lessons.

    python benchmarks/gpu_oneshot.py --out runs/gpu_oneshot            # on a CUDA machine, within ~9 minutes
    python benchmarks/gpu_oneshot.py --out runs/gpu_smoke --smoke      # the same path on a CPU, tiny sizes

In order, each step a subprocess with its own time limit inside the overall budget (``--minutes``, default 9):

1. the ``gpu`` tests (``pytest -m gpu``);
2. the GPU benchmarks: ``partial_conv.py`` (PartialConv2d vs nn.Conv2d), ``train_step.py`` (one PConv training
   step, bf16 + channels_last vs fp32), ``masks.py`` (masks/s on the GPU), ``gated_conv.py`` (fused vs split);
3. trains the three small models (``--model pconv``, ``gated``, ``lama``) at ``--image-size`` for a fixed time
   budget each and exports them as safetensors to ``OUT/checkpoints/``;
4. evaluates them against biharmonic inpainting on held-out photos, per hole-ratio bucket;
5. executes the training lessons 07, 08 and 10 in full mode (``PCONV_FAST=0``) into ``OUT/notebooks/``.

Everything lands in ``OUT``; ``OUT/report.md`` has, per step, the command, its exit status, wall time and output,
and the evaluation tables. A failing step is reported and the next one runs. ``--smoke`` keeps the path and
shrinks every size so that the whole script runs on a CPU in a few minutes (CI runs it); it skips the lessons
(full mode on a CPU takes hours) and says so in the report.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's pconv_lessons, also for the steps run in this process
LESSONS = ("07_training_pconv.ipynb", "08_gated_convolution.ipynb", "10_lama.ipynb")


@dataclass(frozen=True)
class Sizes:
    """Everything that differs between the GPU run and the CPU smoke run."""

    image_size: int
    batch_size: int
    train_minutes: float
    train_steps: int
    eval_images: int
    model_args: dict[str, list[str]]
    benchmarks: dict[str, list[str]]
    tests: list[str]


GPU = Sizes(
    image_size=128, batch_size=16, train_minutes=1.0, train_steps=100_000, eval_images=16,
    model_args={"pconv": ["layer_size=6", "base_channels=32"], "gated": ["base_channels=24"],
                "lama": ["ngf=32", "n_blocks=3"]},
    benchmarks={"partial_conv.py": ["--device", "cuda"], "train_step.py": ["--device", "cuda", "--steps", "10"],
                "masks.py": ["--sizes", "256", "512", "--repeats", "2"], "gated_conv.py": ["--device", "cuda"]},
    tests=["-m", "gpu", "tests"],
)
SMOKE = Sizes(
    image_size=32, batch_size=2, train_minutes=0.5, train_steps=3, eval_images=2,
    model_args={"pconv": ["layer_size=3", "base_channels=4"], "gated": ["base_channels=4"],
                "lama": ["ngf=4", "n_blocks=1"]},
    benchmarks={"partial_conv.py": ["--device", "cpu", "--size", "32", "--batch", "1", "--channels", "8",
                                    "--repeats", "2", "--threads", "1"],
                "train_step.py": ["--device", "cpu", "--image-size", "32", "--batch-size", "1", "--layer-size", "3",
                                  "--base-channels", "4", "--steps", "1", "--warmup", "0", "--no-compile"],
                "masks.py": ["--sizes", "64", "--kinds", "box", "free_form", "--count", "4", "--repeats", "1"],
                "gated_conv.py": ["--device", "cpu", "--size", "16", "--batch", "1", "--channels", "4",
                                  "--min-run-time", "0.01", "--rounds", "1"]},
    tests=["-m", "gpu", "tests/test_train.py"],
)
LOSS_ARGS = {"pconv": ["vgg_weights=random"], "gated": ["disc_channels=32"],
             "lama": ["adversarial=0", "perceptual=0", "l1_hole=10"]}
SMOKE_LOSS_ARGS = {"pconv": ["vgg_weights=none"], "gated": ["disc_channels=4"],
                   "lama": ["adversarial=0", "perceptual=0", "l1_hole=10"]}


@dataclass
class Step:
    title: str
    command: list[str]
    status: int | str
    seconds: float
    output: str


class Run:
    """The budget, the steps done so far and the report."""

    def __init__(self, out: Path, minutes: float, smoke: bool) -> None:
        self.out, self.smoke = out, smoke
        self.deadline = time.monotonic() + 60 * minutes
        self.steps: list[Step] = []
        self.sections: list[str] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def command(self, title: str, command: list[str], limit: float, env: dict[str, str] | None = None) -> Step:
        limit = min(limit, self.left())
        started = time.monotonic()
        if limit < 5:
            step = Step(title, command, "skipped: out of time", 0.0, "")
        else:
            try:
                result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=limit,
                                        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
                step = Step(title, command, result.returncode, time.monotonic() - started,
                            (result.stdout + result.stderr)[-4000:])
            except subprocess.TimeoutExpired as error:
                output = (error.stdout or b"").decode(errors="replace") if isinstance(error.stdout, bytes) else ""
                step = Step(title, command, f"timed out after {limit:.0f} s", time.monotonic() - started, output[-4000:])
        self.steps.append(step)
        print(f"{title}: {step.status} ({step.seconds:.1f} s; {self.left():.0f} s of the budget left)", flush=True)
        return step

    def report(self) -> Path:
        lines = ["# One-shot GPU run" + (" (smoke mode, CPU, tiny sizes)" if self.smoke else ""), ""]
        lines += ["| step | status | seconds |", "|---|---|---|"]
        lines += [f"| {step.title} | {step.status} | {step.seconds:.1f} |" for step in self.steps]
        for step in self.steps:
            lines += ["", f"## {step.title}", "", "```", " ".join(step.command), "```", "", "```",
                      step.output.strip(), "```"]
        lines += self.sections
        path = self.out / "report.md"
        path.write_text("\n".join(lines) + "\n")
        return path


def train_models(run: Run, sizes: Sizes) -> dict[str, Path]:
    from pconv_lessons.train import export_model

    exports = {}
    loss_args = SMOKE_LOSS_ARGS if run.smoke else LOSS_ARGS
    for model, knobs in sizes.model_args.items():
        out = run.out / "runs" / model
        command = [sys.executable, "-m", "pconv_lessons.train", "--model", model, "--data", "sample",
                   "--image-size", str(sizes.image_size), "--batch-size", str(sizes.batch_size),
                   "--steps", str(sizes.train_steps), "--max-minutes", str(sizes.train_minutes), "--out", str(out),
                   "--overwrite", "--no-progress", "--mask-kind", "free_form", "--ema", "0.999", "--seed", "0",
                   "--checkpoint-every", "500", "--sample-every", "500", "--eval-every", "500"]
        command += [item for knob in knobs for item in ("--model-arg", knob)]
        command += [item for knob in loss_args[model] for item in ("--loss-arg", knob)]
        if run.smoke:
            command += ["--num-workers", "0", "--threads", "1"]
        step = run.command(f"train {model}", command, limit=60 * sizes.train_minutes + 90)
        if step.status == 0:
            exports[model] = export_model(out / "last.pt", run.out / "checkpoints" / f"{model}_oneshot.safetensors")
    return exports


def evaluate(run: Run, sizes: Sizes, exports: dict[str, Path]) -> None:
    import torch

    from pconv_lessons.baselines import biharmonic
    from pconv_lessons.data import SamplePatches
    from pconv_lessons.metrics import evaluate_by_bucket
    from pconv_lessons.train import load_model

    started = time.monotonic()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    held_out = SamplePatches(sizes.image_size, split="test", seed=1234)
    images = torch.stack([held_out[i][0] for i in range(sizes.eval_images)])
    methods = {name: load_model(path, device=device) for name, path in exports.items()}

    def on_device(model):
        return lambda image, mask: model(image.to(device), mask.to(device)).cpu()

    table = evaluate_by_bucket({**{name: on_device(m) for name, m in methods.items()}, "biharmonic": biharmonic},
                               images, kind="free_form", seed=0)
    run.sections += ["", "## Evaluation against biharmonic", "",
                     f"{sizes.eval_images} held-out patches at {sizes.image_size}², one free-form mask per patch and "
                     f"bucket, composite scored ({time.monotonic() - started:.1f} s):", "", table.to_markdown()]


def execute_lessons(run: Run) -> None:
    if run.smoke:
        run.sections += ["", "## Lessons", "", "Skipped in smoke mode: full mode (PCONV_FAST=0) on a CPU takes hours."]
        return
    from pconv_lessons.losses import vgg16_cache_path

    if not vgg16_cache_path().is_file():
        run.sections += ["", "## Lessons", "", f"Note: no ImageNet VGG16 at {vgg16_cache_path()}; lesson 07 in full "
                         "mode downloads it and fails offline."]
    for index, lesson in enumerate(LESSONS):
        run.command(f"lesson {lesson} (PCONV_FAST=0)",
                    [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                     "--ExecutePreprocessor.timeout=-1", f"notebooks/{lesson}", "--output-dir", str(run.out / "notebooks")],
                    limit=run.left() / (len(LESSONS) - index), env={"PCONV_FAST": "0"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for checkpoints, notebooks and report.md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script end to end")
    parser.add_argument("--minutes", type=float, default=9.0, help="overall time budget")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else GPU
    args.out.mkdir(parents=True, exist_ok=True)
    run = Run(args.out, args.minutes, args.smoke)
    run.command("gpu tests", [sys.executable, "-m", "pytest", "-q", *sizes.tests], limit=90)
    for script, options in sizes.benchmarks.items():
        run.command(f"benchmark {script}", [sys.executable, f"benchmarks/{script}", *options], limit=90)
    exports = train_models(run, sizes)
    evaluate(run, sizes, exports)
    execute_lessons(run)
    path = run.report()
    print(f"report: {path}")
    failed = [step.title for step in run.steps if step.status != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
