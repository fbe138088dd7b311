"""PartialConv2d vs nn.Conv2d vs a naive partial conv, measured side by side in one run.

The naive version computes sum(M) with a full C_in→C_out convolution of the mask (what several public
implementations do). Reported per layer: median forward+backward time, and memory — peak allocated
memory on CUDA; on the CPU, where torch has no allocator statistics, the bytes autograd saves for the
backward pass (activation memory), which is what grows with batch and image size.

Defaults follow the targets: CPU fp32, N=4, 64→64, 3×3, 128²; CUDA bf16 autocast + channels_last,
N=16, 64→64, 3×3, 256².
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from pconv_lessons.layers import PartialConv2d


class NaivePartialConv2d(nn.Conv2d):
    """The same formula with the mask path as a full conv: ones kernel (C_out, C_in, k, k), mask expanded to C_in."""

    def forward(self, x, mask):
        with torch.no_grad():
            ones = torch.ones_like(self.weight, dtype=torch.float32)
            with torch.autocast(x.device.type, enabled=False):
                known = F.conv2d(mask.float().expand_as(x), ones, None, self.stride, self.padding, self.dilation)
            new_mask = (known > 0).float()
            scale = ones[0].numel() / known.clamp(min=1e-8) * new_mask
        raw = self._conv_forward(x * mask.expand_as(x).to(x.dtype), self.weight, None)
        out = raw * scale.to(raw.dtype) + self.bias.view(1, -1, 1, 1) * new_mask
        return out, new_mask


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="default 4 on CPU, 16 on CUDA")
    parser.add_argument("--size", type=int, default=None, help="default 128 on CPU, 256 on CUDA")
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--fp32", action="store_true", help="on CUDA: plain fp32 instead of bf16 + channels_last")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    return parser.parse_args()


def make_layers(channels: int, device: torch.device) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    partial = PartialConv2d(channels, channels, 3, padding=1)
    naive = NaivePartialConv2d(channels, channels, 3, padding=1)
    partial.load_state_dict(conv.state_dict())
    naive.load_state_dict(conv.state_dict())
    return {"nn.Conv2d": conv.to(device), "PartialConv2d": partial.to(device), "naive partial": naive.to(device)}


def step(name: str, layer: nn.Module, x: torch.Tensor, mask: torch.Tensor, autocast: bool):
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=autocast):
        out = layer(x) if name == "nn.Conv2d" else layer(x, mask)[0]
    out.float().square().mean().backward()


def mask_path_share(layer: PartialConv2d, x: torch.Tensor, mask: torch.Tensor, repeats: int) -> float:
    """Median forward time of the mask path (sum(M) conv + scale) over that of the feature conv, interleaved."""
    mask_times, conv_times = [], []
    with torch.no_grad():
        for _ in range(repeats):
            for record, run in ((mask_times, lambda: layer.mask_scale(mask)),
                                (conv_times, lambda: layer._conv_forward(x, layer.weight, None))):
                synchronize(x.device)
                start = time.perf_counter()
                run()
                synchronize(x.device)
                record.append(time.perf_counter() - start)
    return statistics.median(mask_times) / statistics.median(conv_times)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_bytes(name, layer, x, mask, autocast) -> int:
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step(name, layer, x, mask, autocast)
    return total


def peak_bytes(name, layer, x, mask, autocast) -> int:
    device = x.device
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    step(name, layer, x, mask, autocast)
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - baseline


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    batch = args.batch or (16 if on_cuda else 4)
    size = args.size or (256 if on_cuda else 128)
    autocast = on_cuda and not args.fp32
    memory_format = torch.channels_last if autocast else torch.contiguous_format

    layers = make_layers(args.channels, device)
    for layer in layers.values():
        layer.to(memory_format=memory_format)
    x = torch.randn(batch, args.channels, size, size, device=device).to(memory_format=memory_format)
    x.requires_grad_(True)
    mask = (torch.rand(batch, 1, size, size, device=device) > 0.3).float()

    for name, layer in layers.items():  # warm-up (cuDNN autotuning, allocator)
        for _ in range(3):
            step(name, layer, x, mask, autocast)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(args.repeats):  # interleaved, so machine load hits every variant alike
        for name, layer in layers.items():
            synchronize(device)
            start = time.perf_counter()
            step(name, layer, x, mask, autocast)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in times.items()}
    memory = {name: (peak_bytes if on_cuda else saved_bytes)(name, layer, x, mask, autocast) for name, layer in layers.items()}

    where = torch.cuda.get_device_name(device) if on_cuda else "CPU"
    precision = "bf16 autocast + channels_last" if autocast else "fp32"
    memory_kind = "peak allocated" if on_cuda else "saved for backward"
    threads = f", {torch.get_num_threads()} threads" if not on_cuda else ""
    print(f"{where}{threads}, {precision}: N={batch}, {args.channels}->{args.channels}, 3x3, {size}x{size}, "
          f"{args.repeats} interleaved repeats, forward+backward")
    print(f"{'layer':<15} {'time ratio':>11} {'memory ratio':>13}   ({memory_kind})")
    for name in layers:
        print(f"{name:<15} {median[name] / median['nn.Conv2d']:>10.2f}x {memory[name] / memory['nn.Conv2d']:>12.2f}x")
    print(f"PartialConv2d is {median['naive partial'] / median['PartialConv2d']:.2f}x faster than the naive version")
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        share = mask_path_share(layers["PartialConv2d"], x, mask, args.repeats)
    print(f"mask path forward = {100 * share:.1f}% of the feature conv forward")
    if on_cuda:
        print("absolute medians: " + ", ".join(f"{name} {median[name] * 1e3:.2f} ms" for name in layers))


if __name__ == "__main__":
    main()
