"""Mask generation speed: masks per second for every family, one at a time (``MaskDataset[i]``, what a DataLoader
worker does), the NumPy batch path and batched torch (CPU, and CUDA if present).

    PYTHONPATH=. python benchmarks/masks.py     # 256² and 512², all families (PYTHONPATH=.: this checkout, not an installed copy)
    PYTHONPATH=. python benchmarks/masks.py --sizes 256 --kinds lama_thin lama_medium lama_thick --count 512

Each figure is the best of ``--repeats`` timed runs after one warm-up run. CPU paths are reported twice:
per second of wall-clock time, and per second of CPU time this process actually got (``time.process_time``),
which is what a busy shared machine distorts least. The ratio columns compare torch with NumPy side by side
in this run (CPU-time rates for the CPU, wall-clock for CUDA).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from pconv_lessons.masks import KINDS, MaskDataset, generate


def masks_per_second(kind: str, size: int, count: int, backend: str, device: str, repeats: int) -> tuple[float, float]:
    """(masks per wall-clock second, masks per CPU second of this process), best of ``repeats`` runs."""
    def run(seed: int) -> None:
        generate(kind, count, size, seed=seed, device=device, backend=backend)
        if device == "cuda":
            torch.cuda.synchronize()

    run(0)
    best_wall = best_cpu = float("inf")
    for repeat in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run(repeat + 1)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return count / best_wall, count / max(best_cpu, 1e-9)


def items_per_second(kind: str, size: int, count: int, repeats: int) -> float:
    """Masks per CPU second drawn one at a time, ``MaskDataset(kind, size)[i]``, best of ``repeats`` runs."""
    data = MaskDataset(kind, size, length=(repeats + 1) * count, seed=0)
    for index in range(count):  # warm-up
        data[index]
    best = float("inf")
    for repeat in range(1, repeats + 1):
        cpu = time.process_time()
        for index in range(repeat * count, (repeat + 1) * count):
            data[index]
        best = min(best, time.process_time() - cpu)
    return count / max(best, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--count", type=int, default=256, help="masks per timed run (CPU)")
    parser.add_argument("--gpu-count", type=int, default=8192,
                        help="masks per timed run on CUDA (drawn in memory-bounded chunks)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {os.cpu_count()} cores, torch threads {args.threads}, 1-min load average {load:.1f}")
    print(f"CUDA: {torch.cuda.get_device_name() if cuda else 'not available'}")
    header = (f"{'family':12s} {'size':>5s} {'item/s CPU':>10s} {'numpy/s wall':>12s} {'numpy/s CPU':>12s} "
              f"{'torch/s wall':>12s} {'torch/s CPU':>12s} {'torch/numpy':>11s}")
    print(header + (f" {'CUDA/s':>9s} {'CUDA/numpy':>10s}" if cuda else ""))
    for size in args.sizes:
        for kind in args.kinds:
            item_cpu = items_per_second(kind, size, args.count, args.repeats)
            numpy_wall, numpy_cpu = masks_per_second(kind, size, args.count, "numpy", "cpu", args.repeats)
            torch_wall, torch_cpu = masks_per_second(kind, size, args.count, "torch", "cpu", args.repeats)
            line = (f"{kind:12s} {size:5d} {item_cpu:10.0f} {numpy_wall:12.0f} {numpy_cpu:12.0f} "
                    f"{torch_wall:12.0f} {torch_cpu:12.0f} {torch_cpu / numpy_cpu:11.2f}")
            if cuda:
                cuda_wall, _ = masks_per_second(kind, size, args.gpu_count, "torch", "cuda", args.repeats)
                line += f" {cuda_wall:9.0f} {cuda_wall / numpy_wall:10.1f}"
            print(line, flush=True)
    print(f"1-min load average at the end: {os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.1f}")


if __name__ == "__main__":
    main()
