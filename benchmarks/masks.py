"""Mask generation speed: masks per second for every family, NumPy path vs batched torch (CPU, and CUDA if present).

    python benchmarks/masks.py                  # 256² and 512², all families
    python benchmarks/masks.py --sizes 256 --kinds lama_thin lama_medium lama_thick --count 512

Each figure is the best of ``--repeats`` timed runs after one warm-up run, so that a busy shared machine
disturbs it less. The last column is the torch/NumPy speed ratio measured side by side in this run.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from pconv_lessons.masks import KINDS, generate


def masks_per_second(kind: str, size: int, count: int, backend: str, device: str, repeats: int) -> float:
    def run(seed: int) -> None:
        generate(kind, count, size, seed=seed, device=device, backend=backend)
        if device == "cuda":
            torch.cuda.synchronize()

    run(0)
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        run(repeat + 1)
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--count", type=int, default=256, help="masks per timed run (CPU)")
    parser.add_argument("--gpu-count", type=int, default=8192, help="masks per timed run on CUDA")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {os.cpu_count()} cores, torch threads {args.threads}, 1-min load average {load:.1f}")
    print(f"CUDA: {torch.cuda.get_device_name() if cuda else 'not available'}")
    header = f"{'family':12s} {'size':>5s} {'numpy masks/s':>14s} {'torch-CPU masks/s':>18s} {'torch-CPU/numpy':>16s}"
    print(header + (f" {'CUDA masks/s':>13s} {'CUDA/numpy':>11s}" if cuda else ""))
    for size in args.sizes:
        for kind in args.kinds:
            numpy_rate = masks_per_second(kind, size, args.count, "numpy", "cpu", args.repeats)
            torch_rate = masks_per_second(kind, size, args.count, "torch", "cpu", args.repeats)
            line = f"{kind:12s} {size:5d} {numpy_rate:14.0f} {torch_rate:18.0f} {torch_rate / numpy_rate:16.2f}"
            if cuda:
                cuda_rate = masks_per_second(kind, size, args.gpu_count, "torch", "cuda", args.repeats)
                line += f" {cuda_rate:13.0f} {cuda_rate / numpy_rate:11.1f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
