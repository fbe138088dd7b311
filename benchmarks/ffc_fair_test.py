"""Lesson 09's experiment for several training seeds: is the FFC stack's lead over the plain stack a property of the
architecture or of one training run?

Each seed initialises the three stacks of ``pconv_lessons.course.stacks`` and draws their training batches anew
(photos of the training split, ``"mixed"`` masks: thick strokes or boxes), trains them alike with the lesson's fast
sizes (600 steps of 8 patches of 32², one thread), and scores them with biharmonic and mean fill on the lesson's fixed
test set at 1×, 2× and 4×: the ``"mixed"`` masks of LaMa's ablation, and bands of half the patch (16, 32, 64 px wide),
wider than the plain stack's 13 px field. Seed 0 is the lesson's own run. The figures go to
``benchmarks/results/ffc_fair_test.json``, which lesson 09 prints with ``stacks.seed_table``.

    python benchmarks/ffc_fair_test.py --seeds 0 1 2 3
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from pconv_lessons.course.stacks import SEED_ROWS, SEED_RUNS, comparison_record, seed_run, seed_table

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default=str(SEED_RUNS))
    parser.add_argument("--save-seed0", metavar="PATH", help="also store seed 0's trained stacks there (lesson 09 loads "
                        "data/lesson09/stacks_seed0.pt)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = {"train_size": 32, "batch": 8, "steps": args.steps, "test_count": 48, "test_seed": 0, "threads": 1}
    runs = {}
    for seed in args.seeds:
        start = time.perf_counter()
        tables = seed_run(seed, train_size=32, batch=8, steps=args.steps, test_count=48, test_seed=0,
                          save_to=args.save_seed0 if seed == 0 else None)
        runs[str(seed)] = {kind: {str(scale): comparison_record(table) for scale, table in by_scale.items()}
                           for kind, by_scale in tables.items()}
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    record = {"settings": settings, "torch": torch.__version__, "runs": runs}
    temporary = f"{args.out}.tmp"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(temporary, "w") as file:
        json.dump(record, file, indent=1, ensure_ascii=False)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, args.out)
    for kind in ("bands", "mixed"):
        print(f"\n{kind} masks, hole L1 ×100, paired differences with 95 % intervals")
        print(seed_table(runs, kind, SEED_ROWS))


if __name__ == "__main__":
    main()
