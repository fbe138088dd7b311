"""One PConv training step (PConvUNet forward + InpaintingLoss + backward + Adam) in several precisions, side by side.

Variants, all in one run on the same data:
  fp32          eager, float32, contiguous (NCHW) tensors — the baseline
  fp32+cl       float32 with a channels_last model, images and masks (isolates the memory-format effect)
  bf16+cl       bf16 autocast and channels_last model, images and masks
  bf16+cl+comp  the same with torch.compile on the U-Net and on VGG16 (on by default on CUDA, --compile on CPU)

Each variant is built once and warmed up; then the variants take turns, one step each, for ``--steps`` rounds, so a
busy moment of a shared machine hits all of them alike, and the fastest step of each is reported. For each variant
it prints seconds per step, images per second, the speed-up over fp32, and the share of the
step spent in VGG16 (pool1–3 of I_out, I_comp and I_gt, forward and backward): measured as 1 − t_without/t_with,
where t_without is the same step with a loss network that returns no features.

Defaults: on CUDA the paper's configuration (256², N = 16, layer_size 7, base_channels 64, random-init VGG16,
whose speed equals the pretrained one); on a CPU a small one (64², N = 2, base_channels 16, layer_size 6) so
that a run takes minutes, not hours (without native bf16, as on AVX2-only CPUs, bf16 is emulated and very slow).
Every size is a flag: ``python benchmarks/train_step.py --help``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pconv_lessons.losses import InpaintingLoss, VGG16Features
from pconv_lessons.models import PConvUNet


@dataclass(frozen=True)
class Variant:
    name: str
    bf16: bool
    channels_last: bool
    compiled: bool


class NoFeatures(nn.Module):
    """A loss network that returns no feature maps: the step without VGG16, to measure VGG16's share."""

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return ()


def parse_args() -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--image-size", type=int, default=256 if cuda else 64)
    parser.add_argument("--batch-size", type=int, default=16 if cuda else 2)
    parser.add_argument("--layer-size", type=int, default=7 if cuda else 6)
    parser.add_argument("--base-channels", type=int, default=64 if cuda else 16)
    parser.add_argument("--steps", type=int, default=20 if cuda else 3, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=5 if cuda else 1, help="untimed steps per variant")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=cuda)
    return parser.parse_args()


def make_step(
    model: nn.Module, loss_fn: InpaintingLoss, optimizer: torch.optim.Optimizer, bf16: bool, device: torch.device
) -> Callable[[Tensor, Tensor], None]:
    def step(images: Tensor, masks: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            output = model(images, masks)
            total = loss_fn(output, images, masks)["total"]
        total.backward()
        optimizer.step()

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(args, variant: Variant, with_vgg: bool) -> Callable[[], None]:
    """Model, loss, optimizer and a fixed batch for one variant; returns a function that runs one step."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = PConvUNet(layer_size=args.layer_size, base_channels=args.base_channels).to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random-init VGG16 is announced; its speed is the real one
        extractor = VGG16Features(weights=None).to(device) if with_vgg else NoFeatures()
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device)
    masks = (torch.rand(args.batch_size, 1, args.image_size, args.image_size, device=device) > 0.25).float()
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
        extractor = extractor.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
        masks = masks.contiguous(memory_format=torch.channels_last)
    model.check_mask_values = False  # valid masks: no value check (a device sync and a graph break) in any variant
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    if variant.compiled:
        model = torch.compile(model)
        extractor = torch.compile(extractor) if with_vgg else extractor
    loss_fn = InpaintingLoss(extractor)
    loss_fn.check_mask_values = False
    step = make_step(model, loss_fn, optimizer, variant.bf16, device)
    return lambda: step(images, masks)


def time_once(run: Callable[[], None], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    variants = [Variant("fp32", False, False, False), Variant("fp32+cl", False, True, False),
                Variant("bf16+cl", True, True, False)]
    if args.compile:
        variants.append(Variant("bf16+cl+comp", True, True, True))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"PConvUNet(layer_size={args.layer_size}, base_channels={args.base_channels}) + InpaintingLoss, "
        f"{args.image_size}², N={args.batch_size}, on {where} ({torch.get_num_threads()} threads), "
        f"best of {args.steps} steps, variants interleaved"
    )
    runs: dict[tuple[str, bool], Callable[[], None]] = {}
    for variant in variants:
        for with_vgg in (True, False):
            try:
                run = build(args, variant, with_vgg)
                for _ in range(args.warmup):
                    run()
            except Exception as error:  # torch.compile is not available everywhere (no compiler, old GPU)
                print(f"{variant.name}: failed, left out: {type(error).__name__}: {str(error).splitlines()[0][:100]}")
                break
            runs[variant.name, with_vgg] = run
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in runs}
    for _ in range(args.steps):  # interleaved, so that a busy moment of the machine hits every variant alike
        for key, run in runs.items():
            times[key].append(time_once(run, device))

    print(f"{'variant':<14}{'s/step':>9}{'images/s':>10}{'vs fp32':>9}{'VGG share':>11}")
    baseline = min(times["fp32", True])
    for variant in variants:
        if (variant.name, False) not in times:
            continue
        full, without_vgg = min(times[variant.name, True]), min(times[variant.name, False])
        share = max(0.0, 1.0 - without_vgg / full)
        print(f"{variant.name:<14}{full:9.3f}{args.batch_size / full:10.1f}{baseline / full:8.2f}×{share:10.0%}")


if __name__ == "__main__":
    main()
