"""How the biharmonic baseline's cost grows with image size, next to fill-with-mean, measured in one run.

Each size gets the same hole layout scaled up: one centred box holding 25 % of the pixels (one large sparse
solve) and, separately, 25 % of the pixels in scattered 8×8 squares (many small solves). Prints seconds per
image relative to the smallest size, so the ratios hold on any machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from pconv_lessons.baselines import biharmonic, fill_with_mean
from pconv_lessons.data import sample_images


def box_mask(size: int) -> torch.Tensor:
    mask = torch.ones(1, 1, size, size)
    mask[..., size // 4 : size // 4 + size // 2, size // 4 : size // 4 + size // 2] = 0
    return mask


def squares_mask(size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    cells = (size // 8) ** 2
    chosen = torch.randperm(cells, generator=generator)[: cells // 4]
    grid = torch.ones(cells)
    grid[chosen] = 0
    return grid.view(1, 1, size // 8, size // 8).repeat_interleave(8, 2).repeat_interleave(8, 3)


def seconds(function, image: torch.Tensor, mask: torch.Tensor, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(image * mask, mask)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    photo = sample_images(["astronaut"])["astronaut"][None]
    rows = []
    for size in args.sizes:
        image = torch.nn.functional.interpolate(photo, size=(size, size), mode="bilinear", antialias=True)
        times = {
            layout: (seconds(biharmonic, image, mask, args.repeats), seconds(fill_with_mean, image, mask, args.repeats))
            for layout, mask in (("box", box_mask(size)), ("squares", squares_mask(size)))
        }
        rows.append((size, times))
    base = rows[0][1]
    print(f"seconds per image relative to biharmonic at {args.sizes[0]}² (same hole layout); 25 % holes")
    print(f"{'size':>6} {'box':>10} {'squares':>10} {'box / mean-fill':>16} {'squares / mean-fill':>20}")
    for size, times in rows:
        print(
            f"{size:>5}² {times['box'][0] / base['box'][0]:>9.1f}× {times['squares'][0] / base['squares'][0]:>9.1f}×"
            f" {times['box'][0] / times['box'][1]:>15.0f}× {times['squares'][0] / times['squares'][1]:>19.0f}×"
        )


if __name__ == "__main__":
    main()
