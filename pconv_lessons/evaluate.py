"""``pconv-eval DATA --model NAME [--model NAME …] --out DIR``: score models the way the papers do, resumably.

    pconv-eval photos/ --model lama --model pconv_small --out runs/eval --size 256
    pconv-eval places_val/ --model deepfillv2 --out runs/eval_lama --masks lama --limit 2000 --device cuda

Every image of DATA (``pconv_lessons.data.image_files``: recursive, sorted; ``--limit N`` keeps the first N) is scored
with one mask per bucket of each mask set, by ``pconv_lessons.metrics.evaluate_by_bucket`` — holes zeroed at the
input, prediction clipped to [0, 1] and composited, L1 / PSNR / SSIM on the whole image, LPIPS too when the VGG16
weights are cached (``metrics.lpips_available``) — for the models named and, always, biharmonic and mean fill.

Mask sets (``--masks``, repeatable; default ``paper``):

- ``paper``: the PConv paper's six hole-ratio buckets (0.01, 0.1] … (0.5, 0.6], masks of ``--mask-kind`` (default
  DeepFill v2's ``free_form``) brought into each bucket: ``metrics.bucket_masks(N, size, kind, seed)``, exactly the
  masks ``evaluate_by_bucket(methods, images, kind=kind, seed=seed)`` draws itself;
- ``lama``: LaMa's evaluation presets thin, medium and thick (boxes included), one mask per image each,
  ``masks.generate("lama_thin", N, size, seed)`` …, each preset a table of its own with the single bucket (0, 1];
- a folder of fixed mask files (non-zero = hole, ``masks.files.read_mask_file``; resized to the scoring size by
  nearest neighbour where they differ): sorted, sorted into the paper's buckets and (0.6, 1] by hole ratio; image i
  gets mask i mod n_b of bucket b (buckets without a mask are left out, so are masks without a hole or without a
  known pixel).

Size: with ``--size S`` each image is resized (shorter side to S, bilinear, antialiased) and centre-cropped to S×S
(``data.centre_square``) — score a model at the size it was trained at; without it every image must have the size
of the first (an error names the first that does not).

Output: ``DIR/scores.jsonl`` — a header line (the settings, the SHA-256 of every mask set) then one line per image
with its per-image scores, appended and fsync'ed after every batch; ``DIR/results.json`` (every cell's mean and 95 %
bootstrap interval, per set) and ``DIR/results.md`` (the tables, and which model is below mean fill where: broken
there), built from the log by ``metrics.BucketEvaluation`` (1000 resamples, bootstrap seed 0, as
``evaluate_by_bucket``). A killed run continues where it stopped (the images in the log are not scored again; a line
cut by the kill is dropped); a run with other settings in the same DIR is refused (``--overwrite`` starts afresh).
The same ``--seed`` gives the same masks and the same figures. The folder is locked while a run writes to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from pconv_lessons.baselines import biharmonic, fill_with_mean
from pconv_lessons.data import centre_square, image_files, load_image
from pconv_lessons.inpaint import PRECISIONS, predictor
from pconv_lessons.masks import PAPER_BUCKETS, generate, hole_ratio
from pconv_lessons.masks.files import is_mask_file, read_mask_file
from pconv_lessons.metrics import (
    LPIPS_METRIC, PAPER_METRICS, Bucket, BucketEvaluation, Method, Metric, bucket_masks,
    evaluate_by_bucket, lpips_available,
)
from pconv_lessons.named_models import load_named_model, model_label
from pconv_lessons.losses import vgg16_cache_path
from pconv_lessons.training.checkpoints import atomic_write, resolve_device
from pconv_lessons.training.runfolder import RunFolder

LOG_NAME = "scores.jsonl"
LOG_FORMAT = "pconv_lessons.eval/1"
BASELINES: dict[str, Method] = {"biharmonic": biharmonic, "mean fill": fill_with_mean}
LAMA_SETS = ("lama_thin", "lama_medium", "lama_thick")
WHOLE = (0.0, 1.0)
FIXED_BUCKETS: tuple[Bucket, ...] = PAPER_BUCKETS + ((0.6, 1.0),)
RESAMPLES = 1000
BOOTSTRAP_SEED = 0


# ---------------------------------------------------------------------------------------------- masks


@dataclass(frozen=True)
class MaskSet:
    """One table's masks: bucket → bool masks (N, 1, H, W), True = known, mask i paired with image i."""

    name: str
    masks: dict[Bucket, Tensor]

    def digest(self) -> str:
        digest = hashlib.sha256()
        for bucket, masks in self.masks.items():
            digest.update(repr(bucket).encode())
            digest.update(masks.numpy().tobytes())
        return digest.hexdigest()


def _known(masks: Tensor) -> Tensor:
    return masks >= 0.5


def fixed_masks(folder: Path, count: int, size: tuple[int, int]) -> MaskSet:
    """The mask files of ``folder`` sorted into ``FIXED_BUCKETS``; image i gets mask i mod n_b of bucket b."""
    files = image_files(folder) if folder.is_dir() else []
    if not files:
        raise ValueError(f"--masks {folder}: neither 'paper', 'lama' nor a folder holding mask files")
    loaded = []
    for path in files:
        mask = read_mask_file(path)[None]
        if tuple(mask.shape[-2:]) != size:
            mask = F.interpolate(mask, size=size, mode="nearest")
        loaded.append(mask)
    masks = torch.cat(loaded)
    ratios = hole_ratio(masks)
    chosen = {}
    for low, high in FIXED_BUCKETS:
        members = masks[(ratios > low) & (ratios <= high) & (ratios < 1)]
        if len(members):
            chosen[(low, high)] = _known(members[torch.arange(count) % len(members)])
    if not chosen:
        raise ValueError(f"--masks {folder}: none of its {len(files)} mask files has both a hole (non-zero pixels) "
                         "and a known pixel")
    return MaskSet(f"masks:{folder.name}", chosen)


def mask_sets(specs: Sequence[str], count: int, size: tuple[int, int], kind: str, seed: int) -> list[MaskSet]:
    """The mask sets ``--masks`` names (module docstring), drawn for ``count`` images of ``size``."""
    sets: list[MaskSet] = []
    for spec in specs:
        if spec == "paper":
            masks = bucket_masks(count, size, kind=kind, seed=seed)
            sets.append(MaskSet(f"paper:{kind}", {bucket: _known(m) for bucket, m in masks.items()}))
        elif spec == "lama":
            sets += [MaskSet(preset, {WHOLE: _known(generate(preset, count, size, seed=seed))}) for preset in LAMA_SETS]
        else:
            sets.append(fixed_masks(Path(spec), count, size))
    names = [mask_set.name for mask_set in sets]
    if len(set(names)) != len(names):
        raise ValueError(f"--masks names the same mask set twice: {names}")
    return sets


# -------------------------------------------------------------------------------------------- metrics


def chosen_metrics() -> tuple[tuple[Metric, ...], dict[str, str]]:
    """The metrics scored here and, for those skipped, why."""
    skipped = {"FID": "a statistic of a whole image set, not a per-image score with a bootstrap interval over "
                      "images; pconv-eval does not compute it"}
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        skipped["FID"] = "torchmetrics' FID needs torch-fidelity (not installed) and its Inception weights"
    if lpips_available():
        return PAPER_METRICS + (LPIPS_METRIC,), skipped
    cache = vgg16_cache_path()
    shown = f"~/{cache.relative_to(Path.home())}" if cache.is_relative_to(Path.home()) else str(cache)
    skipped["LPIPS"] = f"torchvision's ImageNet VGG16 weights are not cached at {shown} (never downloaded here)"
    return PAPER_METRICS, skipped


# ------------------------------------------------------------------------------------------------ log


def read_log(path: Path, header: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The per-image records of a log written with ``header``; {} if there is none. A last line cut by a kill is
    removed from the file; a log of other settings is a ``ValueError`` saying what differs."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as stream:
            stream.truncate(len(complete))
    lines = complete.decode().splitlines()
    if not lines:
        return {}
    stored = json.loads(lines[0]).get("header")
    if stored != header:
        different = sorted(key for key in set(header) | set(stored or {}) if (stored or {}).get(key) != header.get(key))
        raise ValueError(f"{path} holds a run with other settings ({', '.join(different)} differ); use another --out, "
                         "the same settings, or --overwrite")
    records = [json.loads(line) for line in lines[1:]]
    return {record["index"]: record for record in records}


def append_records(path: Path, lines: Sequence[dict[str, Any]]) -> None:
    """Append JSON lines and fsync, so a record is either whole on disk or dropped as a cut line on resume."""
    with open(path, "a", encoding="utf-8") as stream:
        for line in lines:
            stream.write(json.dumps(line) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


# ------------------------------------------------------------------------------------------- results


def evaluation_of(mask_set: MaskSet, records: dict[int, dict[str, Any]], methods: Sequence[str],
                  metrics: Sequence[Metric]) -> BucketEvaluation:
    """The ``BucketEvaluation`` of one mask set from the logged per-image scores [method][metric][bucket]."""
    per_image = [records[index]["scores"][mask_set.name] for index in sorted(records)]
    scores = torch.tensor(per_image, dtype=torch.float64).permute(1, 2, 3, 0).contiguous()
    return BucketEvaluation(methods=tuple(methods), metrics=tuple(metrics), buckets=tuple(mask_set.masks),
                            scores=scores, resamples=RESAMPLES, bootstrap_seed=BOOTSTRAP_SEED)


def broken_cells(evaluation: BucketEvaluation, models: Sequence[str]) -> list[str]:
    """Sentences naming each model and row where its mean is worse than mean fill's (the course calls it broken)."""
    table, sentences = evaluation.table(), []
    reference = evaluation.methods.index("mean fill")
    for model in models:
        m = evaluation.methods.index(model)
        for r, row in enumerate(evaluation.row_labels):
            worse = [metric.name for k, metric in enumerate(evaluation.metrics)
                     if (table[r, k, m] < table[r, k, reference]) == metric.higher_is_better
                     and table[r, k, m] != table[r, k, reference]]
            if worse:
                sentences.append(f"{model} is below mean fill in {row} on {', '.join(worse)}: broken there.")
    return sentences


def results_of(evaluations: dict[str, BucketEvaluation], models: Sequence[str], header: dict[str, Any],
               skipped: dict[str, str], data_as_given: str) -> tuple[dict[str, Any], str]:
    """``results.json``'s content and ``results.md``'s text (titled with DATA as given on the command line)."""
    sets, markdown = {}, [f"# pconv-eval: {data_as_given}", ""]
    for name, evaluation in evaluations.items():
        table, bounds = evaluation.table(), evaluation.intervals()
        cells = {row: {metric.name: {method: {"mean": float(table[r, k, m]), "low": float(bounds[r, k, m, 0]),
                                              "high": float(bounds[r, k, m, 1])}
                                     for m, method in enumerate(evaluation.methods)}
                       for k, metric in enumerate(evaluation.metrics)}
                 for r, row in enumerate(evaluation.row_labels)}
        broken = broken_cells(evaluation, models)
        sets[name] = {"images": evaluation.scores.shape[3], "buckets": [list(b) for b in evaluation.buckets],
                      "table": cells, "broken": broken}
        markdown += [f"## {name} ({evaluation.scores.shape[3]} images, {header['size'][0]}×{header['size'][1]})", "",
                     evaluation.to_markdown(),
                     f"Mean [95 % bootstrap interval over the images, {evaluation.resamples} resamples].", ""]
        markdown += broken + ([""] if broken else [])
    markdown += [f"Skipped: {name}: {reason}." for name, reason in skipped.items()]
    results = {"format": LOG_FORMAT, "settings": header, "skipped_metrics": skipped, "sets": sets}
    return results, "\n".join(markdown) + "\n"


# --------------------------------------------------------------------------------------------- images


def scored_image(path: Path, size: int | None, expected: tuple[int, int] | None) -> Tensor:
    """The image as scored: ``centre_square`` at ``size``, or as it is (its size must be ``expected``)."""
    image = load_image(path)
    if size is not None:
        return centre_square(image, size)
    if expected is not None and tuple(image.shape[-2:]) != expected:
        raise ValueError(f"{path} is {tuple(image.shape[-2:])} (H, W), the first image {expected}: pass --size S "
                         "to score every image at S×S (centre crop)")
    return image


# ------------------------------------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv-eval",
        description="Score models (and biharmonic and mean fill) per hole-ratio bucket with 95 %% bootstrap "
                    "intervals; DIR/results.json and DIR/results.md; resumable.",
    )
    parser.add_argument("data", type=Path, help="a folder of images (searched recursively)")
    parser.add_argument("--model", action="append", required=True, metavar="NAME",
                        help="lama | deepfillv2 | pconv | a shipped name | a checkpoint path (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="DIR: scores.jsonl, results.json, results.md")
    parser.add_argument("--masks", action="append", default=None, metavar="SET",
                        help="paper (default: the six hole-ratio buckets), lama (thin, medium, thick) or a folder of "
                             "mask files (non-zero = hole); repeatable")
    parser.add_argument("--mask-kind", default="free_form", help="the mask family of the paper buckets")
    parser.add_argument("--size", type=int, default=None, metavar="S",
                        help="score at S×S: shorter side resized to S, centre crop (default: the images' own size)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="the first N images only")
    parser.add_argument("--seed", type=int, default=0, help="the masks' seed")
    parser.add_argument("--batch-size", type=int, default=8, help="images scored (and logged) together")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, …")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="bf16: autocast on CUDA only")
    parser.add_argument("--overwrite", action="store_true", help="discard the scores already in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run_eval(args: argparse.Namespace) -> str:
    """Score (or finish scoring) DATA; writes the results and returns the Markdown text."""
    if args.batch_size < 1 or (args.size is not None and args.size < 16) or (args.limit is not None and args.limit < 1):
        raise ValueError(f"--batch-size ≥ 1, --size ≥ 16 and --limit ≥ 1 expected, got {args.batch_size}, "
                         f"{args.size}, {args.limit}")
    files = [path for path in image_files(args.data) if not is_mask_file(path)] if args.data.is_dir() else []
    if not files:
        raise ValueError(f"DATA {args.data} is not a folder holding images (mask files, NAME_mask*.png, are not scored)")
    files = files[: args.limit]
    first = scored_image(files[0], args.size, None)
    size = tuple(first.shape[-2:])
    labels = [model_label(name) for name in args.model]
    if len(set(labels) | set(BASELINES)) != len(labels) + len(BASELINES):
        raise ValueError(f"two models go by the same name (or a baseline's): {labels}")
    metrics, skipped = chosen_metrics()
    sets = mask_sets(args.masks or ["paper"], len(files), size, args.mask_kind, args.seed)
    header = {"format": LOG_FORMAT, "data": str(args.data.resolve()), "files": [str(p.relative_to(args.data)) for p in files],
              "size": list(size), "models": args.model, "precision": args.precision, "seed": args.seed,
              "metrics": [metric.name for metric in metrics],
              "mask_sets": {mask_set.name: mask_set.digest() for mask_set in sets}}
    device = resolve_device(args.device)
    methods: dict[str, Method] = {label: predictor(load_named_model(name, device), device, args.precision)
                                  for label, name in zip(labels, args.model)}
    methods.update(BASELINES)
    for name, reason in skipped.items():
        print(f"{name} skipped: {reason}", file=sys.stderr)

    with RunFolder(args.out, user="pconv-eval run") as folder:
        log = folder.path / LOG_NAME
        if args.overwrite:
            log.unlink(missing_ok=True)
        records = read_log(log, header)
        if not log.exists() or not log.stat().st_size:
            append_records(log, [{"header": header}])
        todo = [index for index in range(len(files)) if index not in records]
        bar = tqdm(total=len(files), initial=len(files) - len(todo), desc="scoring", unit="image",
                   disable=args.no_progress)
        start_time = time.perf_counter()
        for start in range(0, len(todo), args.batch_size):
            chunk = todo[start: start + args.batch_size]
            images = torch.stack([scored_image(files[i], args.size, size) for i in chunk]).to(device)
            new = {i: {"index": i, "file": header["files"][i], "scores": {}} for i in chunk}
            for mask_set in sets:
                masks = {bucket: known[chunk].float().to(device) for bucket, known in mask_set.masks.items()}
                scores = evaluate_by_bucket(methods, images, masks, metrics=metrics, batch_size=len(chunk)).scores
                for j, i in enumerate(chunk):
                    new[i]["scores"][mask_set.name] = scores[..., j].tolist()
            append_records(log, list(new.values()))
            records.update(new)
            bar.update(len(chunk))
        bar.close()
        seconds = time.perf_counter() - start_time
        print(f"scored {len(todo)} images in {seconds:.1f} s ({len(todo) / seconds if seconds > 0 else 0.0:.2f} "
              f"images/s; {len(files) - len(todo)} from the log, {len(methods)} methods × "
              f"{sum(len(mask_set.masks) for mask_set in sets)} masks each)", file=sys.stderr)
        evaluations = {mask_set.name: evaluation_of(mask_set, records, list(methods), metrics) for mask_set in sets}
        results, markdown = results_of(evaluations, labels, header, skipped, str(args.data))
        atomic_write(folder.path / "results.json", lambda s: s.write((json.dumps(results, indent=1) + "\n").encode()))
        atomic_write(folder.path / "results.md", lambda s: s.write(markdown.encode()))
    return markdown


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        print(run_eval(args))
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
