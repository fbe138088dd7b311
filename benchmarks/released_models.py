"""The course's models at the released sizes: CPU forward time and peak memory, optionally beside a reference.

Families and their released sizes (random weights, eval mode, no autograd, float32):

    lama        LamaGenerator(ngf=64, n_blocks=18)                 Big LaMa
    deepfillv2  GatedGenerator(base_channels=48)                   DeepFill v2 (cnum 48)
    pconv       PConvUNet(layer_size=7 at ≤ 256², 8 above, base 64, convention "mmagic")   mmagic's PConv

"Ours" runs the way ``pconv-inpaint`` runs a model: ``pconv_lessons.inpaint.fill`` (inference mode, the model's own
padding, clamp, composite with the known pixels). Inputs: a seeded uniform-random RGB image in [0, 1] and a
centred square hole covering a quarter of the image (mask 1 = known), the same for both sides.

A reference is any implementation the user supplies: ``--reference FAMILY=MODULE:FACTORY``, where MODULE is an
importable module name or a path to a ``.py`` file and ``FACTORY(size)`` returns ``(model, run)``: ``model`` an
``nn.Module`` (its parameter count is printed), ``run(image, mask)`` its own inference path from the course's
inputs (image (1, 3, S, S) in [0, 1], mask (1, 1, S, S), 1 = known). This script knows nothing about any
particular reference.

Every configuration runs in a fresh subprocess (``sys.executable`` with this environment):

    time    one per (family, size, threads): both implementations built, one warm-up run each at
            min(size, 256)², then ``--repeats`` rounds, ours and the reference alternating (the first in each
            round alternates too), on the same inputs; medians are reported, and ratio = median ours / median reference
    memory  one per (family, size, implementation), 1 thread, one forward: peak = ru_maxrss after the forward minus
            the RSS of the idle interpreter (torch and pconv_lessons imported, inputs made, nothing built: it counts
            the weights, any import the factory does, and the forward's activations); forward = ru_maxrss after
            minus the RSS just before the forward (the forward's own working memory).

``--same-weights`` gives our model the reference model's own weights for the timing: its ``state_dict()`` (under the
original's key names, LaMa's ``model.`` prefix dropped) goes through ``pconv_lessons.pretrained.from_original_state``
(the converter ``load_pretrained`` uses), and the time table gains the largest difference between the two sides'
outputs on the timed input (the reference's ``run`` must then return [0, 1] images). Random weights of two
different initialisations can time differently for reasons that are not the code's (subnormal activations are slow
on some CPUs); the same weights remove that.

(torch keeps no allocator statistics for the CPU, so RSS is the measure.) The workers run with
``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it: on a CPU shared with other jobs, OpenMP threads that
spin at every barrier waste the time slices the other thread needs (on a loaded 2-core machine this made
2-thread runs 10× slower than 1-thread ones); both sides run under the same policy.

    python benchmarks/released_models.py                                   # ours only, all families and sizes
    python benchmarks/released_models.py --families lama --sizes 256 512 \\
        --reference lama=/path/to/factories.py:lama --json runs/lama.json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

Runner = Callable[[Tensor, Tensor], Tensor]
FAMILIES = ("lama", "deepfillv2", "pconv")
SIZES = (256, 512, 1024)
WARMUP_SIDE = 256
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


# ------------------------------------------------------------------------------------------- the two sides


def build_ours(family: str, size: int, fuse: bool = True) -> nn.Module:
    """The course's model of ``family`` at its released size (random weights, eval mode); ``fuse``: DeepFill v2's
    attention propagation (on in the released TensorFlow model, off in nipponjo's PyTorch port)."""
    from pconv_lessons.models import GatedGenerator, LamaGenerator, PConvUNet

    if family == "lama":
        model = LamaGenerator(ngf=64, n_blocks=18)
    elif family == "deepfillv2":
        model = GatedGenerator(base_channels=48, fuse=fuse)
    elif family == "pconv":
        model = PConvUNet(layer_size=7 if size <= 256 else 8, base_channels=64, convention="mmagic")
    else:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return model.eval()


def ours(family: str, size: int, fuse: bool = True) -> tuple[nn.Module, Runner]:
    """Our model and ``pconv-inpaint``'s inference path for it."""
    model = build_ours(family, size, fuse)
    return model, inpaint_path(model)


def inpaint_path(model: nn.Module) -> Runner:
    """``pconv-inpaint``'s inference path for ``model`` on the CPU."""
    from pconv_lessons.inpaint import fill, predictor

    predict = predictor(model, torch.device("cpu"))
    return lambda image, mask: fill(predict, image, mask)


ORIGINAL_PREFIX = {"lama": "model.", "deepfillv2": "", "pconv": ""}  # before the names the converters read


def ours_with_weights_of(family: str, reference_model: nn.Module, fuse: bool = True) -> tuple[nn.Module, Runner]:
    """Our model carrying ``reference_model``'s weights (``from_original_state``: the converter ``load_pretrained``
    uses, strict), and ``pconv-inpaint``'s inference path for it."""
    from pconv_lessons.pretrained import from_original_state

    prefix = ORIGINAL_PREFIX[family]
    state = {key.removeprefix(prefix): value for key, value in reference_model.state_dict().items()}
    model = from_original_state(family, state, source=f"the {family} reference's state dict")
    if family == "deepfillv2":
        model.refine.attention.fuse = fuse
    return model, inpaint_path(model)


def load_factory(spec: str) -> Callable[[int], tuple[nn.Module, Runner]]:
    """``MODULE:FACTORY`` → the callable; MODULE is a dotted module name or a path to a ``.py`` file."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"a reference factory is MODULE:FACTORY, got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"reference module file {module_name!r} does not exist")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"{attribute!r} in {module_name!r} is not a callable factory")
    return factory


def parse_references(specs: list[str]) -> dict[str, str]:
    """``["lama=m:f", …]`` → {"lama": "m:f", …}, each family at most once."""
    references: dict[str, str] = {}
    for spec in specs:
        family, sep, factory = spec.partition("=")
        if not sep or family not in FAMILIES or ":" not in factory:
            raise ValueError(f"--reference is FAMILY=MODULE:FACTORY with FAMILY one of {FAMILIES}, got {spec!r}")
        if family in references:
            raise ValueError(f"--reference given twice for {family!r}")
        references[family] = factory
    return references


def inputs(size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A seeded random image (1, 3, S, S) in [0, 1] and a mask with a centred S/2 × S/2 hole (1 = known)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, size, size, generator=generator)
    mask = torch.ones(1, 1, size, size)
    mask[..., size // 4: size // 4 + size // 2, size // 4: size // 4 + size // 2] = 0
    return image, mask


def parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# ------------------------------------------------------------------------------------------- workers


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


def peak_rss_bytes() -> int:
    """ru_maxrss of this process (kibibytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(run: Runner, image: Tensor, mask: Tensor) -> float:
    start = time.perf_counter()
    run(image, mask)
    return time.perf_counter() - start


def time_worker(
    family: str, size: int, threads: int, repeats: int, reference: str | None, fuse: bool = True,
    same_weights: bool = False,
) -> dict[str, Any]:
    """Interleaved timing of ours and (if given) the reference in this process; ``same_weights``: ours carries the
    reference's weights and the result holds the largest output difference between the sides."""
    torch.set_num_threads(threads)
    sides = {}
    if reference is not None:
        sides["reference"] = load_factory(reference)(size)
    sides["ours"] = ours_with_weights_of(family, sides["reference"][0], fuse) if same_weights else ours(family, size, fuse)
    warm_image, warm_mask = inputs(min(size, WARMUP_SIDE))
    image, mask = inputs(size)
    times: dict[str, list[float]] = {name: [] for name in sides}
    extra: dict[str, Any] = {}
    with torch.inference_mode():
        for _, run in sides.values():
            run(warm_image, warm_mask)
        if same_weights:
            outputs = [sides[name][1](image, mask) for name in ("ours", "reference")]
            extra["max_abs_difference"] = (outputs[0] - outputs[1]).abs().max().item()
        for round_index in range(repeats):
            order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
            for name in order:
                times[name].append(timed(sides[name][1], image, mask))
    return {
        "family": family, "size": size, "threads": threads, "repeats": repeats,
        "parameters": {name: parameter_count(model) for name, (model, _) in sides.items()},
        "seconds": times, "median": {name: statistics.median(values) for name, values in times.items()}, **extra,
    }


def memory_worker(family: str, size: int, side: str, reference: str | None, fuse: bool = True) -> dict[str, Any]:
    """Peak RSS of one forward of one implementation in this (fresh) process."""
    torch.set_num_threads(1)
    image, mask = inputs(size)
    idle = rss_bytes()
    if side == "ours":
        model, run = ours(family, size, fuse)
    else:
        model, run = load_factory(reference)(size)
    before = rss_bytes()
    with torch.inference_mode():
        run(image, mask)
    peak = peak_rss_bytes()
    return {
        "family": family, "size": size, "side": side, "parameters": parameter_count(model),
        "peak_mib": (peak - idle) / MIB, "forward_mib": (peak - before) / MIB,
    }


# ------------------------------------------------------------------------------------------- driver


def in_subprocess(worker_arguments: list[str], threads: int) -> dict[str, Any]:
    """Run this script as a worker in a fresh interpreter with ``threads`` threads; its last stdout line is JSON."""
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    environment.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # module docstring: spinning threads on a shared CPU
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *worker_arguments],
        capture_output=True, text=True, env=environment,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"worker {' '.join(worker_arguments)} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def repeats_for(size: int, repeats: int, overrides: dict[int, int]) -> int:
    return overrides.get(size, repeats)


def parse_overrides(items: list[str]) -> dict[int, int]:
    """``["1024=1"]`` → {1024: 1}."""
    overrides = {}
    for item in items:
        size, sep, count = item.partition("=")
        if not sep or not size.isdigit() or not count.isdigit() or int(count) < 1:
            raise ValueError(f"--repeats-at is SIZE=COUNT (positive integers), got {item!r}")
        overrides[int(size)] = int(count)
    return overrides


def format_time_row(result: dict[str, Any]) -> str:
    median = result["median"]
    cells = [result["family"], f"{result['size']}²", str(result["threads"]), str(result["repeats"]),
             f"{median['ours']:.3f}"]
    if "reference" in median:
        cells += [f"{median['reference']:.3f}", f"{median['ours'] / median['reference']:.2f}"]
    if "max_abs_difference" in result:
        cells.append(f"{result['max_abs_difference']:.1e}")
    return "| " + " | ".join(cells) + " |"


def format_memory_row(rows: dict[str, dict[str, Any]]) -> str:
    ours_row = rows["ours"]
    cells = [ours_row["family"], f"{ours_row['size']}²", f"{ours_row['peak_mib']:.0f}", f"{ours_row['forward_mib']:.0f}"]
    if "reference" in rows:
        reference = rows["reference"]
        cells += [f"{reference['peak_mib']:.0f}", f"{reference['forward_mib']:.0f}",
                  f"{ours_row['peak_mib'] / reference['peak_mib']:.2f}"]
    return "| " + " | ".join(cells) + " |"


def table_headers(with_reference: bool, same_weights: bool = False) -> tuple[str, str]:
    time_header = "| family | size | threads | runs | ours s |"
    memory_header = "| family | size | ours peak MiB | ours forward MiB |"
    if with_reference:
        time_header += " reference s | ours / reference |" + (" max output difference |" if same_weights else "")
        memory_header += " reference peak MiB | reference forward MiB | ours / reference (peak) |"
    return time_header, memory_header


def markdown_header(header: str) -> str:
    return header + "\n" + "|" + "---|" * (header.count("|") - 1)


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    references = parse_references(args.reference)
    overrides = parse_overrides(args.repeats_at)

    def common(family: str, size: int, reference: str | None) -> list[str]:
        return ["--family", family, "--size", str(size), "--fuse", args.fuse] + (["--ref", reference] if reference else [])

    results: dict[str, Any] = {"load_average_start": os.getloadavg(), "cpus": os.cpu_count(),
                               "torch": torch.__version__, "time": [], "memory": []}

    def save() -> None:  # after every measurement, so an interrupted run keeps what it measured
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=1))

    print(f"{os.cpu_count()} CPUs, load average {' '.join(f'{value:.1f}' for value in os.getloadavg())}, "
          f"torch {torch.__version__}", flush=True)
    for family in args.families:
        reference = references.get(family)
        time_header, memory_header = table_headers(reference is not None, args.same_weights)
        if not args.no_memory:
            print(f"\n{family}: peak memory (MiB above the idle interpreter; one forward, 1 thread)\n")
            print(markdown_header(memory_header), flush=True)
            for size in args.sizes:
                rows = {}
                for side in ("ours", "reference") if reference else ("ours",):
                    rows[side] = in_subprocess(["memory", "--side", side, *common(family, size, reference)], 1)
                    results["memory"].append(rows[side])
                    save()
                print(format_memory_row(rows), flush=True)
        if args.no_time:
            continue
        print(f"\n{family}: forward seconds (median; ours and the reference interleaved run by run)\n")
        print(markdown_header(time_header), flush=True)
        for size in args.sizes:
            for threads in args.threads:
                repeats = repeats_for(size, args.repeats, overrides)
                worker = ["time", "--threads", str(threads), "--repeats", str(repeats), *common(family, size, reference)]
                if args.same_weights and reference:
                    worker.append("--same-weights")
                result = in_subprocess(worker, threads)
                results["time"].append(result)
                save()
                print(format_time_row(result), flush=True)
    results["load_average_end"] = os.getloadavg()
    save()
    print(f"load average at the end {' '.join(f'{value:.1f}' for value in os.getloadavg())}", flush=True)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="square image sides")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per implementation (median kept)")
    parser.add_argument("--repeats-at", nargs="*", default=[], metavar="SIZE=COUNT",
                        help="fewer (or more) runs at some sizes, e.g. 1024=1")
    parser.add_argument("--reference", action="append", default=[], metavar="FAMILY=MODULE:FACTORY",
                        help="time a reference implementation beside ours (module docstring); repeatable")
    parser.add_argument("--fuse", choices=("on", "off"), default="on",
                        help="DeepFill v2's attention propagation: on as the released model, off as nipponjo's port")
    parser.add_argument("--same-weights", action="store_true",
                        help="time ours with the reference model's own weights (module docstring)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-time", action="store_true", help="skip the timing subprocesses")
    parser.add_argument("--json", help="also write every measurement to this JSON file")
    return parser


def worker_main(argv: list[str]) -> None:
    """One measurement in this process (the driver's subprocess): prints its result as a JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("time", "memory"))
    parser.add_argument("--family", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--side", choices=("ours", "reference"), default="ours")
    parser.add_argument("--ref")
    parser.add_argument("--fuse", choices=("on", "off"), default="on")
    parser.add_argument("--same-weights", action="store_true")
    args = parser.parse_args(argv)
    fuse = args.fuse == "on"
    if args.kind == "time":
        result = time_worker(args.family, args.size, args.threads, args.repeats, args.ref, fuse, args.same_weights)
    else:
        result = memory_worker(args.family, args.size, args.side, args.ref, fuse)
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker_main(argv[1:])
        return
    args = build_parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1, got {args.repeats}")
    if args.same_weights and not args.reference:
        raise SystemExit("--same-weights needs a --reference whose weights ours can take")
    try:
        run_all(args)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    main()
