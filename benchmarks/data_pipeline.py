"""Data pipeline throughput (decode + crop + mask) against the training step rate, side by side in one run.

The pipeline must deliver samples faster than training consumes them, with room to spare, or the
accelerator waits for data. This script measures, on the same machine and in the same run:

- samples/s of ``ImageFolderPairs`` over a folder of JPEG files (decode + resize + random crop + flip +
  mask) through a ``DataLoader`` with the Trainer's default worker count (``default_num_workers()``);
- samples/s of ``SamplePatches`` (in-memory photos: crop + resize + mask) the same way;
- samples/s consumed by ``Trainer.train_step`` for the given model configuration on ``--device``;

and prints pipeline rate / training rate. Run ``python benchmarks/data_pipeline.py --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from pconv_lessons.data import ImageFolderPairs, MaskSource, SamplePatches, sample_images
from pconv_lessons.train import TrainConfig, Trainer, default_num_workers, resolve_device


def write_jpeg_folder(folder: Path, count: int, size: int) -> None:
    """``count`` JPEG files of ``size``² cut from the sample photos (stand-ins for Places365-small)."""
    photos = list(sample_images().values())
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[-2:]
        side = min(height, width)
        top, left = (index * 37) % (height - side + 1), (index * 53) % (width - side + 1)
        crop = photo[:, top : top + side, left : left + side]
        array = (crop.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
        Image.fromarray(array).resize((size, size), Image.BICUBIC).save(folder / f"{index:04d}.jpg", quality=90)


def pipeline_rate(dataset, batch_size: int, workers: int, seconds: float) -> float:
    """Samples per second delivered by a DataLoader over ``dataset`` (after one warm-up batch)."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=range(10**9), num_workers=workers, drop_last=True
    )
    batches = iter(loader)
    next(batches)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        image, mask = next(batches)
        count += image.shape[0]
    return count / (time.perf_counter() - started)


def training_rate(config: TrainConfig, seconds: float) -> float:
    """Samples per second consumed by ``Trainer.train_step`` (the batch is fixed, so no data loading is timed)."""
    trainer = Trainer(config, progress=False)
    image, mask = next(trainer.batches())
    trainer.train_step(image, mask)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        trainer.train_step(image, mask)
        count += image.shape[0]
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--layer-size", type=int, default=5)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--vgg-weights", default="none", help="none, random or imagenet (the loss network)")
    parser.add_argument("--mask-kind", default="free_form,mixed")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=default_num_workers())
    parser.add_argument("--files", type=int, default=64, help="JPEG files in the temporary folder")
    parser.add_argument("--file-size", type=int, default=256, help="side of each JPEG (Places365-small: 256)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the training step")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    masks = MaskSource(args.mask_kind)
    with tempfile.TemporaryDirectory() as folder:
        write_jpeg_folder(Path(folder), args.files, args.file_size)
        folder_pairs = ImageFolderPairs(folder, args.image_size, mask_fn=masks)
        folder_rate = pipeline_rate(folder_pairs, args.batch_size, args.workers, args.seconds)
    sample_rate = pipeline_rate(SamplePatches(args.image_size, mask_fn=masks), args.batch_size, args.workers,
                                args.seconds)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            image_size=args.image_size, batch_size=args.batch_size, out=out, device=args.device,
            model_args={"layer_size": args.layer_size, "base_channels": args.base_channels},
            loss_args={"vgg_weights": args.vgg_weights}, mask_kind=args.mask_kind, num_workers=0,
        )
        train_rate = training_rate(config, args.seconds)

    print(f"PConv U-Net layer_size={args.layer_size} base_channels={args.base_channels}, "
          f"{args.image_size}² × batch {args.batch_size}, loss network: {args.vgg_weights}, "
          f"device {resolve_device(args.device)} ({torch.get_num_threads()} torch threads), "
          f"{args.workers} DataLoader workers, masks {args.mask_kind}")
    print(f"image folder (JPEG {args.file_size}² decode + resize + crop + mask): {folder_rate:8.1f} samples/s")
    print(f"sample photos (crop + resize + mask):                  {sample_rate:8.1f} samples/s")
    print(f"training step:                                         {train_rate:8.1f} samples/s")
    print(f"ratio image folder / training: {folder_rate / train_rate:.2f}×; "
          f"sample photos / training: {sample_rate / train_rate:.2f}×")


if __name__ == "__main__":
    main()
