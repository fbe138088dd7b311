"""The shipped small gated checkpoint: under 10 MB, loads through the Trainer's registry, and inpaints held-out photos."""

from pathlib import Path

import torch

from pconv_lessons.baselines import fill_with_mean
from pconv_lessons.data import MaskSource, make_pairs
from pconv_lessons.models import GatedGenerator
from pconv_lessons.train import load_checkpoint, load_model

CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "gated_small.safetensors"


def _hole_l1(prediction: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> float:
    hole = 1 - masks
    return float(((prediction - images).abs() * hole).sum() / (3 * hole.sum()))


def test_shipped_gated_checkpoint_is_small_and_beats_mean_fill_on_held_out_photos():
    assert CHECKPOINT.stat().st_size < 10 * 2**20
    assert "optimizers" not in load_checkpoint(CHECKPOINT), "ship the exported (slim) checkpoint"
    model = load_model(CHECKPOINT)
    assert isinstance(model, GatedGenerator) and model.sketch
    pairs = make_pairs("sample", 64, MaskSource("free_form"), seed=5, split="test")
    images, masks = (torch.stack(parts) for parts in zip(*(pairs[i] for i in range(8))))
    with torch.no_grad():
        prediction = model(images * masks, masks)
    assert prediction.shape == images.shape
    assert _hole_l1(prediction, images, masks) < 0.8 * _hole_l1(fill_with_mean(images * masks, masks), images, masks)
