"""Training the gated generator with SN-PatchGAN through the Trainer: one step updates both networks; resume is exact."""

import dataclasses

import pytest
import torch

from pconv_lessons.training.gated import GatedGANObjective
from pconv_lessons.train import Trainer, TrainConfig, build_parser, load_checkpoint, load_model


def box_hole(size: int, seed: int) -> torch.Tensor:
    mask = torch.ones(1, size, size)
    start = seed % (size // 2)
    mask[:, start : start + size // 3, start : start + size // 3] = 0
    return mask


def tiny_config(tmp_path, steps: int = 1) -> TrainConfig:
    return TrainConfig(
        model="gated", data="sample", image_size=32, batch_size=2, steps=steps, out=str(tmp_path / "run"),
        model_args={"base_channels": 4, "sketch": True}, loss_args={"disc_channels": 4},
        num_workers=0, sample_every=0, checkpoint_every=0, device="cpu",
    )


def _copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def test_one_gan_step_updates_both_networks_and_stays_finite(tmp_path):
    trainer = Trainer(tiny_config(tmp_path), progress=False, mask_fn=box_hole)
    assert isinstance(trainer.objective, GatedGANObjective)
    assert set(trainer.optimizers) == {"discriminator", "generator"}
    generator_before = _copy(trainer.model)
    discriminator = trainer.objective.discriminator
    discriminator_before = _copy(discriminator)
    image, mask = next(trainer.batches())
    terms = trainer.train_step(image, mask)
    assert all(torch.isfinite(torch.tensor(value)) for value in terms.values())
    assert {"discriminator/hinge", "generator/l1_refined", "generator/adversarial"} <= set(terms)
    for name, value in trainer.model.state_dict().items():
        assert torch.isfinite(value).all(), name
    changed_generator = [name for name, value in trainer.model.state_dict().items()
                         if not torch.equal(value, generator_before[name])]
    changed_weights = [name for name, value in discriminator.state_dict().items()
                       if name.endswith("original") and not torch.equal(value, discriminator_before[name])]
    assert len(changed_generator) == len(generator_before), "every generator tensor takes an Adam step"
    assert len(changed_weights) == len(discriminator.convolutions()), "every discriminator weight takes an Adam step"


def test_checkpoint_holds_discriminator_and_both_optimizers_and_resume_is_exact(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "straight", steps=3), progress=False, mask_fn=box_hole)
    straight.train()

    first = Trainer(tiny_config(tmp_path / "resumed", steps=2), progress=False, mask_fn=box_hole)
    first.train()
    checkpoint = load_checkpoint(first.out / "last.pt")
    assert set(checkpoint["optimizers"]) == {"discriminator", "generator"}
    assert any(name.endswith("_u") for name in checkpoint["objective"]["discriminator"])  # power-iteration state
    resumed = Trainer(tiny_config(tmp_path / "resumed", steps=3), resume=True, progress=False, mask_fn=box_hole)
    assert resumed.step == 2
    resumed.train()

    for ours, theirs in [(resumed.model, straight.model),
                         (resumed.objective.discriminator, straight.objective.discriminator)]:
        for name, value in ours.state_dict().items():
            torch.testing.assert_close(value, theirs.state_dict()[name], rtol=0, atol=0, msg=name)
    model = load_model(resumed.out / "last.pt")
    assert model.sketch and model.base_channels == 4


def test_cli_knows_the_gated_model_and_rejects_unknown_loss_args(tmp_path):
    args = build_parser().parse_args(["--model", "gated", "--out", str(tmp_path)])
    assert args.model == "gated"
    config = dataclasses.replace(tiny_config(tmp_path), loss_args={"gan_wieght": 1.0})
    with pytest.raises(ValueError, match="gan_wieght"):
        Trainer(config, progress=False, mask_fn=box_hole)


def test_discriminator_has_its_own_learning_rate_whatever_the_generators_lr(tmp_path):
    config = dataclasses.replace(tiny_config(tmp_path), lr=1e-3)
    trainer = Trainer(config, progress=False, mask_fn=box_hole)
    discriminator = trainer.objective.discriminator
    before = _copy(discriminator)
    image, mask = next(trainer.batches())
    trainer.train_step(image, mask)
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 1e-4  # DeepFill v2's
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == 1e-3
    moved = max(float((value - before[name]).abs().max()) for name, value in discriminator.state_dict().items()
                if name.endswith("original"))
    assert 0.5e-4 < moved <= 1.0001e-4, "Adam's first step moves a weight by at most the learning rate"
    custom = Trainer(dataclasses.replace(config, out=str(tmp_path / "custom"), loss_args={"disc_channels": 4, "disc_lr": 3e-4}),
                     progress=False, mask_fn=box_hole)
    custom.train_step(image, mask)
    assert custom.optimizers["discriminator"].param_groups[0]["lr"] == 3e-4
    with pytest.raises(ValueError, match="disc_lr"):
        Trainer(dataclasses.replace(config, out=str(tmp_path / "bad"), loss_args={"disc_lr": -1.0}),
                progress=False, mask_fn=box_hole)
