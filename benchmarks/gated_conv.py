"""Gated convolution: one fused conv (2·C_out channels, split) vs two separate convs, and vs PartialConv2d.

All three layers map C_in → C_out channels with the same kernel on the same input; the two-conv version
holds exactly the fused layer's weights (checked before timing). Forward and forward + backward are timed
with ``torch.utils.benchmark``, the three layers interleaved round by round (so a busy machine slows them
alike), and the median over rounds is kept; the script prints ratios (and absolute times, which mean
something only on a named GPU).

    python benchmarks/gated_conv.py                    # CPU, small sizes
    python benchmarks/gated_conv.py --device cuda --batch 16 --size 256 --channels 64
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import benchmark

from pconv_lessons.layers import GatedConv2d, PartialConv2d


class TwoConvGated(nn.Module):
    """φ(conv_f(x)) · σ(conv_g(x)) with two separate convolutions (the unfused reference)."""

    def __init__(self, fused: GatedConv2d) -> None:
        super().__init__()
        conv = fused.conv
        half = fused.out_channels
        self.feature = nn.Conv2d(conv.in_channels, half, conv.kernel_size, conv.stride, conv.padding, conv.dilation)
        self.gate = nn.Conv2d(conv.in_channels, half, conv.kernel_size, conv.stride, conv.padding, conv.dilation)
        with torch.no_grad():
            self.feature.weight.copy_(conv.weight[:half])
            self.feature.bias.copy_(conv.bias[:half])
            self.gate.weight.copy_(conv.weight[half:])
            self.gate.bias.copy_(conv.bias[half:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(self.feature(x)) * torch.sigmoid(self.gate(x))


def median_seconds(function, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="function()", globals={"function": function})
    return timer.blocked_autorange(min_run_time=min_run_time).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=32, help="C_in = C_out")
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; the median is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    channels, padding = args.channels, args.kernel // 2

    fused = GatedConv2d(channels, channels, args.kernel, padding=padding).to(device)
    two_convs = TwoConvGated(fused).to(device)
    partial = PartialConv2d(channels, channels, args.kernel, padding=padding).to(device)
    partial.check_mask_values = False
    x = torch.randn(args.batch, channels, args.size, args.size, device=device)
    mask = (torch.rand(args.batch, 1, args.size, args.size, device=device) > 0.3).float()
    with torch.no_grad():
        torch.testing.assert_close(fused(x), two_convs(x), rtol=1e-4, atol=1e-5)

    x_grad = x.clone().requires_grad_(True)
    cases = {
        "fused GatedConv2d": (lambda: fused(x), lambda: fused(x_grad).sum().backward()),
        "two separate convs": (lambda: two_convs(x), lambda: two_convs(x_grad).sum().backward()),
        "PartialConv2d": (lambda: partial(x, mask)[0], lambda: partial(x_grad, mask)[0].sum().backward()),
    }
    print(f"device {device}, batch {args.batch}, {channels}→{channels} channels, {args.size}×{args.size}, "
          f"kernel {args.kernel}, {torch.get_num_threads()} thread(s)")
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (forward, forward_backward) in cases.items():
            with torch.no_grad():
                forward_time = median_seconds(forward, args.min_run_time)
            rounds[name].append((forward_time, median_seconds(forward_backward, args.min_run_time)))
    times = {name: tuple(statistics.median(column) for column in zip(*measured)) for name, measured in rounds.items()}
    for name in cases:
        print(f"  {name:20s} forward {1e3 * times[name][0]:8.2f} ms   forward+backward {1e3 * times[name][1]:8.2f} ms")
    fused_times = times["fused GatedConv2d"]
    for name in ("two separate convs", "PartialConv2d"):
        ratios = [other / mine for other, mine in zip(times[name], fused_times)]
        print(f"{name} / fused: forward {ratios[0]:.2f}×, forward+backward {ratios[1]:.2f}×")


if __name__ == "__main__":
    main()
