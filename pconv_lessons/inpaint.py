"""``pconv-inpaint INPUT OUTPUT --model NAME``: inpaint photos with a released or a trained model.

    pconv-inpaint photo.jpg out/ --mask photo_mask.png --model lama          # one image, one mask file
    pconv-inpaint photos/ out/ --model pconv_small                          # a folder in LaMa's layout
    python -m pconv_lessons.inpaint photos/ out/ --model runs/pconv/last.pt --device cuda --precision bf16

Inputs: one image with ``--mask FILE``, one image with its LaMa-layout masks beside it (``NAME_mask*.png``), or a
folder in LaMa's layout (``pconv_lessons.masks.files``: ``NAME.png`` + ``NAME_mask*.png``, searched recursively).
Mask files mark holes with non-zero pixels (LaMa's convention); the models get the course's 1 = known.
``--model`` is any NAME of ``pconv_lessons.named_models`` (``lama`` / ``deepfillv2`` / ``pconv``, a shipped name,
a checkpoint path).

Output: one 8-bit RGB PNG per mask, named after the mask as LaMa's ``bin/predict.py`` names it
(``OUTPUT/<mask path relative to INPUT>.png``; ``OUTPUT/NAME.png`` for ``--mask``; an OUTPUT ending in ``.png`` is
the file itself). The output is the composite I_comp = M ⊙ I + (1 − M) ⊙ clip(prediction, 0, 1): known pixels equal
the decoded input bit for bit (8-bit inputs; 16-bit ones are rounded to 8 bits; grey, palette and RGBA become RGB;
the EXIF orientation is applied). A mask with no hole copies the image through without running the model.

Any image size: each model pads internally and crops its output back, so the output has the input's size (LaMa:
symmetric padding to a multiple of 8, as its ``bin/predict.py``; DeepFill v2: replicate padding to a multiple of 8,
where the ``test.py`` of JiahuiYu's and nipponjo's code crops the image to a multiple of 8 and so drops up to 7 border
rows and columns; PConv:
zero padding, counted as hole, to its U-Net's multiple).

``--max-side S``: an image whose longer side exceeds S is inpainted at a bounded size — the image (holes zeroed) is
downscaled (bilinear, antialiased) so that its longer side is S, a pixel of the small image is a hole if
any full-size hole pixel contributes to it, the model fills the small image, the fill is upsampled (bilinear) and
pasted into the full-size holes only. Known pixels stay those of the input. Without ``--max-side`` every image is
processed at its own size (memory grows with the pixel count).

Never overwrites: an existing output stops the run before any work unless ``--overwrite``. An unreadable image or
mask, a mask without its image, or a mask whose size differs from its image's is an error naming the file;
``--skip-bad`` skips it instead, counted in the summary. Images of the same (processed) size that follow each other
are batched (``--batch-size``). ``--precision bf16`` runs the model under bf16 autocast, on CUDA only. A tqdm bar
runs over the masks; the last line sums up: images written, seconds, images/s (model loading excluded), skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from pconv_lessons.data import load_image
from pconv_lessons.masks.files import lama_layout, masks_of_image, read_mask_file
from pconv_lessons.models.compositing import composite
from pconv_lessons.named_models import load_named_model, model_label, shipped_names
from pconv_lessons.training.checkpoints import atomic_write, resolve_device

Method = Callable[[Tensor, Tensor], Tensor]
PRECISIONS = ("fp32", "bf16")


# ------------------------------------------------------------------------------------------- filling


def predictor(model: torch.nn.Module, device: torch.device, precision: str = "fp32") -> Method:
    """``model`` as a method ``(image, mask) -> prediction`` (float32) under ``precision``: fp32, or bf16 autocast
    (CUDA only; elsewhere a ``ValueError``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" and device.type != "cuda":
        raise ValueError(f"--precision bf16 runs bf16 autocast on a CUDA device; the device is {device}: use fp32")

    def predict(image: Tensor, mask: Tensor) -> Tensor:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            return model(image, mask).float()

    return predict


def bounded_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """(H, W) scaled down so that the longer side is ``max_side`` (aspect kept), or unchanged if within it / None."""
    if max_side is None or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def fill(method: Method, images: Tensor, masks: Tensor, max_side: int | None = None) -> Tensor:
    """The composite of ``method``'s fill (clipped to [0, 1]) with ``images`` (N, 3, H, W), ``masks`` (N, 1, H, W),
    1 = known; above ``max_side`` the fill is computed at a bounded size and upsampled into the holes (module doc)."""
    known = masks.to(images.dtype)
    height, width = images.shape[-2:]
    size = bounded_size(height, width, max_side)
    if size == (height, width):
        prediction = method(images * known, known)
    else:
        small = F.interpolate(images * known, size=size, mode="bilinear", antialias=True, align_corners=False)
        hole = F.interpolate(1 - known, size=size, mode="bilinear", antialias=True, align_corners=False)
        small_known = (hole <= 0).to(images.dtype)  # no full-size hole pixel reaches it
        prediction = method(small * small_known, small_known)
        prediction = F.interpolate(prediction.float(), size=(height, width), mode="bilinear", align_corners=False)
    return composite(prediction.to(images.dtype).clamp(0, 1), images, known)


def to_uint8(image: Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] → (H, W, 3) uint8 by rounding (k/255 comes back as k exactly)."""
    return (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def write_png(array: np.ndarray, path: Path) -> None:
    """An (H, W, 3) uint8 array as an RGB PNG, written atomically (temporary file, then rename)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode="RGB").save(buffer, format="PNG")
    atomic_write(path, lambda stream: stream.write(buffer.getvalue()))


# ------------------------------------------------------------------------------------------- the jobs


@dataclass(frozen=True)
class Job:
    """One output: the image, its mask file and where the result goes."""

    image: Path | None
    mask: Path
    output: Path


@dataclass
class Loaded:
    job: Job
    image: Tensor  # (3, H, W)
    mask: Tensor  # (1, H, W), 1 = known


def plan_jobs(source: Path, output: Path, mask: Path | None) -> list[Job]:
    """The (image, mask, output) triples for INPUT, OUTPUT and ``--mask`` (module docstring)."""
    if source.is_dir():
        if mask is not None:
            raise ValueError("--mask goes with one input image; a folder INPUT holds its masks (NAME_mask*.png)")
        if output.suffix.lower() == ".png":
            raise ValueError(f"OUTPUT must be a folder for a folder INPUT, got the file name {output}")
        inside_output = output.resolve()
        pairs = [(image, mask_path) for image, mask_path in lama_layout(source)
                 if not mask_path.resolve().is_relative_to(inside_output)]  # an OUTPUT inside INPUT holds no inputs
        if not pairs:
            raise ValueError(f"no masks (NAME_mask*.png, LaMa's layout) found under {source}")
        return [Job(image, mask_path, output / mask_path.relative_to(source).with_suffix(".png"))
                for image, mask_path in pairs]
    if not source.is_file():
        raise ValueError(f"INPUT {source} is neither an image file nor a folder")
    masks = [mask] if mask is not None else masks_of_image(source)
    if not masks:
        raise ValueError(f"no mask for {source}: pass --mask FILE or put {source.stem}_mask*.png beside it")
    if output.suffix.lower() == ".png":
        if len(masks) > 1:
            raise ValueError(f"{source} has {len(masks)} masks; OUTPUT must be a folder, not {output}")
        return [Job(source, masks[0], output)]
    if mask is not None:
        return [Job(source, mask, output / f"{source.stem}.png")]
    return [Job(source, path, output / path.with_suffix(".png").name) for path in masks]


def load_job(job: Job) -> Loaded:
    """The image and mask of ``job``; a ``ValueError`` naming the file that is missing, unreadable or mis-sized."""
    if job.image is None:
        raise ValueError(f"mask {job.mask} has no image beside it (expected {job.mask.stem.rsplit('_mask', 1)[0]}.png)")
    image, mask = load_image(job.image), read_mask_file(job.mask)
    if mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"mask {job.mask} is {tuple(mask.shape[-2:])} (H, W) but its image {job.image} is "
                         f"{tuple(image.shape[-2:])}")
    return Loaded(job, image, mask)


def batches(items: Sequence[Loaded], batch_size: int) -> Iterator[list[Loaded]]:
    """Runs of consecutive items of the same size, at most ``batch_size`` long."""
    run: list[Loaded] = []
    for item in items:
        if run and (len(run) == batch_size or item.image.shape != run[0].image.shape):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


# ----------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv-inpaint",
        description="Inpaint an image (with --mask, or its NAME_mask*.png) or a folder in LaMa's layout "
                    "(NAME.png + NAME_mask*.png, non-zero mask pixels = holes) into OUTPUT (PNG, known pixels kept).",
    )
    parser.add_argument("input", type=Path, help="an image file or a folder in LaMa's layout")
    parser.add_argument("output", type=Path, help="the output folder (or a .png file for one image and one mask)")
    parser.add_argument("--model", required=True,
                        help="lama | deepfillv2 | pconv (released weights), a shipped name ("
                             + ", ".join(shipped_names()) + ") or a checkpoint/export path")
    parser.add_argument("--mask", type=Path, default=None, help="the mask file of a single INPUT image")
    parser.add_argument("--max-side", type=int, default=None, metavar="S",
                        help="inpaint images whose longer side exceeds S at that size and upsample the fill "
                             "into the holes (default: every image at its own size)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, …")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="bf16: autocast on CUDA only")
    parser.add_argument("--batch-size", type=int, default=1, help="images of one size inpainted together")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--skip-bad", action="store_true",
                        help="skip (and count) unreadable or mis-sized inputs instead of stopping")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check_arguments(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    if args.max_side is not None and args.max_side < 8:
        raise ValueError(f"--max-side must be ≥ 8 pixels, got {args.max_side}")


def run_inpaint(args: argparse.Namespace) -> str:
    """Do the work of one command line; returns the summary line."""
    _check_arguments(args)
    jobs = plan_jobs(args.input, args.output, args.mask)
    existing = [job.output for job in jobs if job.output.exists()]
    if existing and not args.overwrite:
        raise ValueError(f"{len(existing)} output(s) exist already, e.g. {existing[0]}; pass --overwrite to "
                         "replace them or choose another OUTPUT")
    device = resolve_device(args.device)
    model = load_named_model(args.model, device)
    method = predictor(model, device, args.precision)
    written = copied = 0
    skipped: list[str] = []
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc=f"inpainting ({model_label(args.model)})", unit="image", disable=args.no_progress)
    pending: list[Loaded] = []

    def flush() -> None:
        nonlocal written
        for run in batches(pending, args.batch_size):
            images = torch.stack([item.image for item in run]).to(device)
            masks = torch.stack([item.mask for item in run]).to(device)
            for item, result in zip(run, fill(method, images, masks, args.max_side)):
                write_png(to_uint8(result), item.job.output)
            written += len(run)
            bar.update(len(run))
        pending.clear()

    for job in jobs:
        try:
            item = load_job(job)
        except ValueError as error:
            if not args.skip_bad:
                raise
            skipped.append(str(error))
            tqdm.write(f"skipped: {error}", file=sys.stderr)
            bar.update()
            continue
        if bool((item.mask >= 0.5).all()):  # no hole: the image itself
            write_png(to_uint8(item.image), job.output)
            copied += 1
            bar.update()
            continue
        pending.append(item)
        if len(pending) >= args.batch_size:
            flush()
    flush()
    bar.close()
    seconds = time.perf_counter() - start
    done = written + copied
    return (f"{done} images written ({written} inpainted, {copied} without a hole copied) in {seconds:.2f} s "
            f"({done / seconds if seconds > 0 else 0.0:.2f} images/s) with {model_label(args.model)} on {device} "
            f"({args.precision}); {len(skipped)} skipped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        print(run_inpaint(args))
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
