"""The Trainer and its CLI: a short CPU run, exact resume, atomic checkpoints, the schedule, the model registry."""

import os

import pytest
import torch
from torch import nn

from pconv_lessons import train
from pconv_lessons.train import TrainConfig, Trainer, load_checkpoint, load_model, main
from toy_gan import Blend, Critic

TINY = ["--model", "pconv", "--data", "sample", "--image-size", "32", "--batch-size", "2",
        "--model-arg", "layer_size=3", "--model-arg", "base_channels=4", "--loss-arg", "vgg_weights=none",
        "--num-workers", "0", "--sample-every", "0", "--checkpoint-every", "10", "--no-progress", "--seed", "3",
        "--threads", "1"]  # one thread: tiny convolutions lose more to thread hand-offs than they gain


@pytest.fixture(scope="module", autouse=True)
def _restore_thread_count():
    """``--threads`` sets torch's global thread count; give the rest of the suite its own back (module scope,
    autouse: set up before the module-scoped run below)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def cli(out, steps, *extra):
    return main([*TINY, "--out", str(out), "--steps", str(steps), "--finetune-step", "20", *extra])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One 30-step run through the CLI, shared by the tests below."""
    out = tmp_path_factory.mktemp("uninterrupted")
    assert cli(out, 30) == 0
    return out


def test_cli_run_writes_checkpoint_curves_and_samples(uninterrupted):
    checkpoint = load_checkpoint(uninterrupted / "last.pt")
    assert checkpoint["step"] == 30 and checkpoint["samples_seen"] == 60
    assert len(checkpoint["history"]) == 30
    assert checkpoint["config"]["model_args"] == {"layer_size": 3, "base_channels": 4}
    assert checkpoint["config"]["finetune_step"] == 20
    assert (uninterrupted / "losses.csv").read_text().count("\n") == 31
    assert (uninterrupted / "loss_curve.png").stat().st_size > 0
    assert (uninterrupted / "samples" / "step_0000030.png").stat().st_size > 0
    assert not [p for p in uninterrupted.iterdir() if p.name.endswith(".tmp")]
    first, last = checkpoint["history"][0], checkpoint["history"][-1]
    assert set(first) == {"step", "valid", "hole", "perceptual", "style", "tv", "total"}
    assert all(torch.isfinite(torch.tensor(list(entry.values()))).all() for entry in checkpoint["history"])
    assert last["total"] < first["total"]


def test_resume_continues_exactly(uninterrupted, tmp_path):
    cli(tmp_path, 15)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 15
    cli(tmp_path, 30, "--resume")  # crosses into the fine-tune phase at step 20
    resumed = load_checkpoint(tmp_path / "last.pt")
    reference = load_checkpoint(uninterrupted / "last.pt")
    assert resumed["history"][15] == reference["history"][15]  # the next step after the restart: identical loss
    assert resumed["history"] == reference["history"]
    for name, value in reference["model"].items():
        assert torch.equal(resumed["model"][name], value), name


def test_failed_save_leaves_the_previous_checkpoint(uninterrupted, tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    path.write_bytes((uninterrupted / "last.pt").read_bytes())

    def dying_save(payload, stream):
        stream.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train.atomic_save({"format": "anything"}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 30
    assert os.listdir(tmp_path) == ["last.pt"]


def test_missing_or_corrupt_checkpoint_is_a_clear_error(uninterrupted, tmp_path):
    with pytest.raises(ValueError, match="no checkpoint at"):
        cli(tmp_path, 5, "--resume")
    (tmp_path / "last.pt").write_bytes((uninterrupted / "last.pt").read_bytes()[:5000])
    with pytest.raises(ValueError, match="corrupt"):
        cli(tmp_path, 5, "--resume")


def test_empty_data_folder_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        main([*TINY, "--out", str(tmp_path / "run"), "--steps", "1", "--data", str(tmp_path / "images")])


def test_time_budget_stops_cleanly(tmp_path):
    cli(tmp_path, 30, "--max-minutes", "0")
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 0


def test_finetune_phase_lowers_lr_and_freezes_encoder_batchnorm(tmp_path):
    config = TrainConfig(image_size=32, batch_size=2, steps=3, finetune_step=2, out=str(tmp_path), num_workers=0,
                         model_args={"layer_size": 3, "base_channels": 4}, loss_args={"vgg_weights": "none"},
                         sample_every=0)
    trainer = Trainer(config, progress=False)
    batches = trainer.batches()
    for _ in range(2):
        trainer.train_step(*next(batches))
    encoder_norms = [m for m in trainer.model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_norms = [m for m in trainer.model.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [norm.running_mean.clone() for norm in encoder_norms]
    trainer.train_step(*next(batches))
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == config.finetune_lr
    assert encoder_norms and not any(norm.training for norm in encoder_norms)
    assert all(norm.training for norm in decoder_norms)
    assert all(torch.equal(a, norm.running_mean) for a, norm in zip(before, encoder_norms))


def test_a_registered_multi_phase_model_trains_saves_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setitem(train.MODELS, "blend", train.ModelEntry(lambda config: Blend(), Critic))
    config = TrainConfig(model="blend", image_size=16, batch_size=2, steps=4, out=str(tmp_path), num_workers=0,
                         sample_every=0, mask_kind="box")
    history = Trainer(config, progress=False).train()
    assert set(history[-1]) == {"step", "critic/fake", "critic/total", "generator/l1", "generator/total"}
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert set(checkpoint["optimizers"]) == {"critic", "generator"} and "critic" in checkpoint["objective"]
    resumed = Trainer(TrainConfig(model="blend", steps=6, out=str(tmp_path), num_workers=0), resume=True,
                      progress=False)
    assert torch.equal(resumed.objective.critic.weight, checkpoint["objective"]["critic"]["weight"])
    model = load_model(tmp_path / "last.pt")
    assert isinstance(model, Blend) and not model.training


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        main([*TINY, "--model", "nope", "--out", str(tmp_path), "--steps", "1"])


def test_loss_curve_plot_skips_zero_terms_and_marks_the_fine_tune_step():
    from pconv_lessons.viz import plot_loss_curves

    history = [{"step": s, "hole": 1.0 / s, "style": 0.0, "total": 2.0 / s} for s in range(1, 21)]
    figure = plot_loss_curves(history, marks={"fine-tune": 10}, smooth=5)
    titled = [axis for axis in figure.axes if axis.get_title()]
    assert [axis.get_title() for axis in titled] == ["hole", "total"]
    assert all(axis.get_yscale() == "log" for axis in titled)
    assert any(text.get_text().strip() == "fine-tune" for text in titled[0].texts)
    with pytest.raises(ValueError, match="non-empty"):
        plot_loss_curves([])


def test_sample_grid_composites_the_prediction_into_the_holes():
    from pconv_lessons.viz import inpainting_grid

    image = torch.zeros(2, 3, 8, 8)
    mask = torch.ones(2, 1, 8, 8)
    mask[..., :4] = 0
    figure = inpainting_grid(image, mask, torch.ones(2, 3, 8, 8), title="step 1")
    composite_panel = figure.axes[2].get_images()[0].get_array()
    assert composite_panel[:, :4].min() == 1.0 and composite_panel[:, 4:].max() == 0.0
    assert len(figure.axes) == 8 and figure.axes[2].get_title() == "composite"


def test_exported_model_is_safetensors_and_predicts_like_the_training_checkpoint(uninterrupted, tmp_path):
    weights = train.export_model(uninterrupted / "last.pt", tmp_path / "small.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.json", "small.losses.csv", "small.safetensors"]
    exported = load_checkpoint(weights)
    assert exported["step"] == 30 and exported["format"] == train.EXPORT_FORMAT and "optimizers" not in exported
    assert exported["history"] == load_checkpoint(uninterrupted / "last.pt")["history"]
    image, mask = torch.rand(1, 3, 24, 24), (torch.rand(1, 1, 24, 24) > 0.3).float()
    with torch.no_grad():
        expected = load_model(uninterrupted / "last.pt")(image * mask, mask)
        assert torch.equal(load_model(weights)(image * mask, mask), expected)
        assert torch.equal(load_model(tmp_path / "small.json")(image * mask, mask), expected)
    assert weights.stat().st_size < (uninterrupted / "last.pt").stat().st_size / 2


@pytest.mark.gpu
def test_cuda_run_uses_bf16_autocast_and_channels_last(tmp_path):
    config = TrainConfig(image_size=64, batch_size=4, steps=3, out=str(tmp_path), device="cuda", num_workers=0,
                         model_args={"layer_size": 4, "base_channels": 8}, loss_args={"vgg_weights": "random"},
                         sample_every=0)
    trainer = Trainer(config, progress=False)
    assert trainer.dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    weight = trainer.model.encoder[1].conv.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    history = trainer.train()
    assert len(history) == 3 and all(torch.isfinite(torch.tensor(entry["total"])) for entry in history)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
