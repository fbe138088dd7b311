"""FFC ResNet block vs a dilated 3×3 stack that reaches as far, and the cost of the float32 FFT under autocast.

An FFC ResNet block (two 3×3 FFCs) sees the whole image. A stack of 3×3 convs with dilations 1, 2, 4, …, 2^(L−1)
has a receptive field of 1 + 2·(2^L − 1) pixels; it covers every pixel of an S×S image from every output when
that is ≥ 2S − 1, i.e. L = log2(S) layers (8 at 256², 10 at 1024²). Both are timed forward-only, side by side
in this run, at each size; the ratio is dilated-stack time / FFC-block time.

The second table times the Fourier unit inside the block: its two FFTs alone (always float32), and the whole
block in float32 vs under autocast (bf16 on CPU, bf16 on CUDA unless --dtype float16), so the share of the
block spent in float32 FFTs under autocast is visible.

    python benchmarks/ffc.py                       # CPU, 16 channels, 1 thread, 256/512/1024
    python benchmarks/ffc.py --device cuda --channels 64 --batch 4
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from pconv_lessons.layers import FFCResnetBlock
from pconv_lessons.course.receptive import model_receptive_field


def dilated_stack(channels: int, layers: int) -> nn.Sequential:
    """3×3 conv-BN-ReLU layers with dilations 1, 2, 4, … (zero padding keeps the size)."""
    modules: list[nn.Module] = []
    for index in range(layers):
        dilation = 2**index
        modules += [
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*modules)


def timed(functions: dict[str, Callable[[], object]], device: torch.device, repeats: int) -> dict[str, float]:
    """Median wall time in seconds of each function over ``repeats`` runs after one warm-up run each.

    The functions take turns run by run, so a change in the load of a shared machine hits all of them alike.
    """

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for function in functions.values():
        function()
    sync()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def compare_receptive_fields(args: argparse.Namespace, device: torch.device) -> None:
    print(f"FFCResnetBlock vs dilated 3×3 stack, {args.channels} channels, batch {args.batch}, forward only")
    print(f"{'size':>6} {'layers':>6} {'RF':>6} {'FFC params':>10} {'stack params':>12} {'ratio stack/FFC':>16}")
    for size in args.sizes:
        layers = math.ceil(math.log2(size))
        stack = dilated_stack(args.channels, layers).to(device).eval()
        block = FFCResnetBlock(args.channels).to(device).eval()
        x = torch.randn(args.batch, args.channels, size, size, device=device)
        with torch.no_grad():
            t = timed({"block": lambda: block(x), "stack": lambda: stack(x)}, device, args.repeats)
        field = model_receptive_field(stack)
        line = f"{size:>6} {layers:>6} {field:>6} {parameters(block):>10} {parameters(stack):>12}"
        print(f"{line} {t['stack'] / t['block']:>16.2f}")


def fft_cost_under_autocast(args: argparse.Namespace, device: torch.device) -> None:
    dtype = torch.float16 if args.dtype == "float16" else torch.bfloat16
    print(f"\nFloat32 FFTs inside the block under {dtype} autocast ({args.channels} channels)")
    print(f"{'size':>6} {'FFT share fp32':>16} {'FFT share autocast':>20} {'autocast/fp32 block':>20}")
    for size in args.sizes:
        block = FFCResnetBlock(args.channels).to(device).eval()
        x = torch.randn(args.batch, args.channels, size, size, device=device)
        unit = block.body[0][0].global_to_global.fourier
        spectral_input = torch.randn(args.batch, unit.in_channels, size, size, device=device)

        def ffts() -> None:
            # the two FFTs of one Fourier unit, as it runs them (a block has two Fourier units: counted twice)
            spectrum = torch.fft.rfftn(spectral_input.float(), dim=(-2, -1), norm="ortho")
            torch.fft.irfftn(spectrum, s=(size, size), dim=(-2, -1), norm="ortho")

        def autocast_block() -> None:
            with torch.autocast(device.type, dtype=dtype):
                block(x)

        with torch.no_grad():
            t = timed({"ffts": ffts, "fp32": lambda: block(x), "autocast": autocast_block}, device, args.repeats)
        ffts_share_fp32, ffts_share_autocast = 2 * t["ffts"] / t["fp32"], 2 * t["ffts"] / t["autocast"]
        print(f"{size:>6} {ffts_share_fp32:>16.1%} {ffts_share_autocast:>20.1%} {t['autocast'] / t['fp32']:>20.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the course machine is shared)")
    parser.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16", help="autocast dtype")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"device: {where}; torch {torch.__version__}")
    compare_receptive_fields(args, device)
    fft_cost_under_autocast(args, device)


if __name__ == "__main__":
    main()
