"""``pconv_lessons.training``: DDP on 2 gloo processes, Ctrl-C keeps every step, live logs, EMA, accumulation, CLI."""

import csv
import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from pconv_lessons import train
from pconv_lessons.training import ModelEntry, Trainer, TrainConfig, load_checkpoint, load_model, main
from pconv_lessons.training.cli import run
from toy_gan import Blend, Critic

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
TINY = ["--data", "sample", "--image-size", "32", "--batch-size", "2", "--model-arg", "layer_size=3",
        "--model-arg", "base_channels=4", "--loss-arg", "vgg_weights=none", "--num-workers", "0",
        "--sample-every", "0", "--no-progress", "--threads", "1"]

DDP_WORKER = textwrap.dedent("""
    import os, sys, torch
    from pconv_lessons.training import Trainer, TrainConfig
    out, batch = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    config = TrainConfig(model="gated", image_size=32, batch_size=batch, steps=3, out=out, mask_kind="box",
                         model_args={"base_channels": 4}, loss_args={"disc_channels": 4}, num_workers=0,
                         sample_every=0, checkpoint_every=0, eval_every=0, log_every=1, device="cpu")
    trainer = Trainer(config, progress=False)
    trainer.train()
    torch.save({"generator": trainer.model.state_dict(), "discriminator": trainer.objective.discriminator.state_dict(),
                "wrapped": [type(m).__name__ for m in (trainer.network, trainer.objective.trained("discriminator"))]},
               os.path.join(out, f"rank{trainer.dist.rank}.state"))
    trainer.dist.close()
""")


@pytest.fixture(scope="module", autouse=True)
def _restore_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_two_gloo_ranks_agree_and_match_one_process_with_the_global_batch(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(DDP_WORKER)
    two, one = tmp_path / "two", tmp_path / "one"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(worker), str(two), "2"], check=True, env=ENV, capture_output=True, timeout=240)
    with pytest.MonkeyPatch.context() as patch:  # the same script in this process, with the global batch
        patch.setattr(sys, "argv", [str(worker), str(one), "4"])
        runpy.run_path(str(worker), run_name="__main__")
    rank0, rank1, single = (torch.load(path, weights_only=True)
                            for path in (two / "rank0.state", two / "rank1.state", one / "rank0.state"))
    assert rank0["wrapped"] == ["DistributedDataParallel"] * 2  # generator and discriminator
    assert single["wrapped"] == ["GatedGenerator", "SNPatchDiscriminator"]
    for part in ("generator", "discriminator"):
        for name, value in rank0[part].items():
            assert torch.equal(value, rank1[part][name]), f"{part}.{name} differs between the ranks"
    assert not (two / "rank1").exists() and (two / "last.pt").is_file()  # rank 0 alone writes
    distributed, alone = (load_checkpoint(folder / "last.pt")["history"] for folder in (two, one))
    assert len(distributed) == len(alone) == 3
    for ours, theirs in zip(distributed, alone):
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert abs(ours[name] - theirs[name]) < 1e-5, (name, ours[name], theirs[name])
    assert load_checkpoint(two / "last.pt")["samples_seen"] == load_checkpoint(one / "last.pt")["samples_seen"] == 12


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_frozen_rank_ends_the_run_with_an_error_naming_it(tmp_path):
    # issue 19: rank 1 stopped with SIGSTOP left rank 0 waiting in a collective for ever (no process-group timeout)
    started = time.monotonic()
    port = _free_port()
    command = [sys.executable, "-m", "pconv_lessons.train", *TINY, "--out", str(tmp_path), "--steps", "100000",
               "--checkpoint-every", "2", "--log-every", "1", "--eval-every", "0", "--device", "cpu",
               "--ddp-timeout", "0.25"]  # 15 s: startup on a busy machine stays below it
    ranks = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={
        **ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
        "LOCAL_RANK": str(rank)}) for rank in (0, 1)]
    try:
        while not (tmp_path / "last.pt").exists() and time.monotonic() - started < 40:
            time.sleep(0.1)
        assert (tmp_path / "last.pt").exists(), ranks[0].communicate(timeout=5)[1].decode()[-2000:]
        os.kill(ranks[1].pid, signal.SIGSTOP)
        _, stderr = ranks[0].communicate(timeout=55 - (time.monotonic() - started))
    finally:
        for process in ranks:
            process.kill()
            process.wait()
    message = stderr.decode().strip().splitlines()[-1]
    assert ranks[0].returncode == 2, stderr.decode()[-2000:]
    assert message.startswith("pconv-train: error: rank 0 waited --ddp-timeout 0.25 min at step"), message
    assert "rank 1 of 2 stopped answering (no heartbeat)" in message
    assert time.monotonic() - started < 60


def _csv_steps(path: Path) -> list[int]:
    with open(path, newline="") as stream:
        return [int(float(row["step"])) for row in csv.DictReader(stream)]


def test_ctrl_c_keeps_every_logged_step_and_a_matching_checkpoint(tmp_path):
    command = [sys.executable, "-m", "pconv_lessons.train", *TINY, "--out", str(tmp_path), "--steps", "100000",
               "--checkpoint-every", "5", "--log-every", "1", "--eval-every", "0"]
    process = subprocess.Popen(command, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "losses.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a few more steps past the first checkpoint
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr.decode()[-2000:]
    checkpoint = load_checkpoint(tmp_path / "last.pt")
    steps = _csv_steps(tmp_path / "losses.csv")
    assert steps == list(range(1, checkpoint["step"] + 1)) and checkpoint["step"] > 5
    assert f"Stopped by signal at step {checkpoint['step']}; saving.".encode() in stdout


def test_losses_csv_grows_at_each_checkpoint_and_holds_the_held_out_metrics(tmp_path, monkeypatch):
    seen = []
    original = Trainer.save_checkpoint

    def watching(self):
        path = original(self)
        seen.append((self.step, _csv_steps(self.out / "losses.csv")[-1]))
        return path

    monkeypatch.setattr(Trainer, "save_checkpoint", watching)
    assert main([*TINY, "--out", str(tmp_path), "--steps", "8", "--checkpoint-every", "4", "--eval-every", "4",
                 "--log-every", "2"]) == 0
    assert seen == [(4, 4), (8, 8), (8, 8)]  # at each checkpoint the log is as far as the checkpoint (and at the end)
    history = load_checkpoint(tmp_path / "last.pt")["history"]
    assert [sorted(k for k in row if k.startswith("eval_")) for row in history if "eval_l1" in row] == \
        [["eval_l1", "eval_psnr", "eval_ssim"]] * 2
    assert [row["step"] for row in history if "eval_psnr" in row] == [4.0, 8.0]
    table = torch.load(tmp_path / "last.pt", weights_only=True)["history"]  # its own copy, as a compact table
    assert table["values"].shape == (8, len(table["columns"])) and table["values"].dtype == torch.float64


def test_a_non_finite_loss_stops_before_a_checkpoint_holds_it(tmp_path, monkeypatch):
    from pconv_lessons.training.pconv import PConvObjective

    original, calls = PConvObjective.loss, []

    def poisoned(self, *args):
        terms = original(self, *args)
        calls.append(len(calls) + 1)
        return {**terms, "total": terms["total"] * float("nan")} if len(calls) == 3 else terms

    monkeypatch.setattr(PConvObjective, "loss", poisoned)
    with pytest.raises(FloatingPointError, match="not finite at step 3"):
        main([*TINY, "--out", str(tmp_path), "--steps", "8", "--checkpoint-every", "2", "--log-every", "2",
              "--eval-every", "0"])
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert _csv_steps(tmp_path / "losses.csv") == [1, 2, 3, 4]  # every logged step kept, the bad one included


def _blend_trainer(tmp_path, name, **changes):
    values = dict(model="blend", image_size=16, batch_size=4, steps=3, out=str(tmp_path / name), num_workers=0,
                  sample_every=0, checkpoint_every=0, eval_every=0, mask_kind="box", log_every=1)
    return Trainer(TrainConfig(**{**values, **changes}), progress=False)


@pytest.fixture
def blend(monkeypatch):
    monkeypatch.setitem(train.MODELS, "blend", ModelEntry(lambda config: Blend(), Critic))


def test_gradient_accumulation_equals_the_larger_batch(tmp_path, blend):
    large = _blend_trainer(tmp_path, "large")
    accumulated = _blend_trainer(tmp_path, "accumulated", batch_size=2, accumulate=2)
    history_large, history_accumulated = large.train(), accumulated.train()
    assert accumulated.samples_seen == large.samples_seen == 12
    for ours, theirs in zip(history_accumulated, history_large):
        assert all(abs(ours[name] - theirs[name]) < 1e-6 for name in ours)
    for name, value in large.model.state_dict().items():
        torch.testing.assert_close(accumulated.model.state_dict()[name], value, rtol=0, atol=1e-6)


def test_ema_is_the_moving_average_and_is_what_samples_exports_and_load_model_use(tmp_path, blend):
    trainer = _blend_trainer(tmp_path, "ema", ema=0.9, steps=1)
    start = {name: value.clone() for name, value in trainer.model.state_dict().items()}
    trainer.train()
    for name, value in trainer.model.state_dict().items():
        torch.testing.assert_close(trainer.ema.state_dict()[name], 0.9 * start[name] + 0.1 * value)
    assert trainer.inference_model is trainer.ema.average
    weights = train.export_model(trainer.out / "last.pt", tmp_path / "ema.safetensors")
    for model in (load_model(trainer.out / "last.pt"), load_model(weights)):
        assert torch.equal(model.conv.weight, trainer.ema.average.conv.weight)
    assert torch.equal(load_model(trainer.out / "last.pt", ema=False).conv.weight, trainer.model.conv.weight)


def test_gans_use_adam_beta1_one_half_and_pconv_the_default(tmp_path):
    from pconv_lessons.training.gated import GatedGANObjective
    from pconv_lessons.training.pconv import PConvObjective

    assert GatedGANObjective.adam_betas == (0.5, 0.999) and PConvObjective.adam_betas == (0.9, 0.999)
    config = TrainConfig(model="gated", image_size=32, batch_size=2, steps=1, out=str(tmp_path), num_workers=0,
                         model_args={"base_channels": 4}, loss_args={"disc_channels": 4})
    trainer = Trainer(config, progress=False)
    assert {phase: opt.param_groups[0]["betas"] for phase, opt in trainer.optimizers.items()} == \
        {"discriminator": (0.5, 0.999), "generator": (0.5, 0.999)}


def test_compile_wraps_the_generator_only(tmp_path, blend, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module: compiled.append(module) or module)
    trainer = _blend_trainer(tmp_path, "compiled", compile=True)
    assert compiled == [trainer.model]


def test_tensorboard_without_the_package_is_a_clear_error(tmp_path, blend, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ValueError, match="pip install tensorboard"):
        _blend_trainer(tmp_path, "tb", tensorboard=True).train()


def test_tensorboard_receives_every_logged_scalar(tmp_path, blend, monkeypatch):
    import types

    written = []

    class Writer:
        def __init__(self, folder):
            self.folder = folder

        def add_scalar(self, name, value, step):
            written.append((name, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    _blend_trainer(tmp_path, "tb", tensorboard=True, steps=2).train()
    assert sorted(written) == sorted((name, step) for step in (1, 2)
                                     for name in ("critic/fake", "critic/total", "generator/l1", "generator/total"))


def test_console_entry_point_prints_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pconv-train", *TINY, "--out", str(tmp_path), "--steps=-1"])
    assert run() == 2
    assert capsys.readouterr().err.strip() == "pconv-train: error: steps must be >= 1, got -1"


def test_export_subcommand_converts_an_old_slim_checkpoint(tmp_path):
    run = tmp_path / "run"
    assert main([*TINY, "--out", str(run), "--steps", "3", "--log-every", "1", "--eval-every", "0"]) == 0
    trained = load_checkpoint(run / "last.pt")
    old = {**{key: trained[key] for key in ("config", "model", "step", "history", "elapsed_seconds")},
           "format": "pconv_lessons.train/1"}  # what export_model wrote before: history inside, no CSV beside
    torch.save(old, tmp_path / "old.pt")
    assert main(["export", str(tmp_path / "old.pt"), str(tmp_path / "new.safetensors")]) == 0
    new = load_checkpoint(tmp_path / "new.safetensors")
    assert new["step"] == 3 and new["config"] == old["config"] and new["history"] == old["history"]
    image, mask = torch.rand(1, 3, 32, 32), (torch.rand(1, 1, 32, 32) > 0.3).float()
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "new.safetensors")(image * mask, mask),
                           load_model(tmp_path / "old.pt")(image * mask, mask))


def test_the_shipped_pconv_model_is_a_checked_safetensors_export_with_its_history():
    shipped = load_checkpoint(ROOT / "data" / "checkpoints" / "pconv_small.safetensors")
    assert shipped["format"] == "pconv_lessons.export/1" and shipped["step"] == 28_600
    assert [row["step"] for row in shipped["history"]] == [float(step) for step in range(1, 28_601)]
    model = load_model(ROOT / "data" / "checkpoints" / "pconv_small.safetensors")
    assert (model.layer_size, model.base_channels) == (5, 16) and not model.training

def test_each_rank_draws_a_disjoint_slice_of_the_global_batch_stream():
    from pconv_lessons.training.trainer import _StreamBatches

    def first_batches(sampler, count):
        iterator = iter(sampler)
        return [next(iterator) for _ in range(count)]

    single = first_batches(_StreamBatches(start=10, batch_size=6, rank=0, world_size=1), 3)
    ranks = [first_batches(_StreamBatches(start=10, batch_size=3, rank=r, world_size=2), 3) for r in range(2)]
    for step in range(3):
        assert set(ranks[0][step]).isdisjoint(ranks[1][step])
        assert ranks[0][step] + ranks[1][step] == single[step]


def test_find_checkpoints_prefers_the_export_of_a_converted_pt(tmp_path):
    from pconv_lessons.training import find_checkpoints

    for name in ("a.pt", "a.safetensors", "a.json", "b.pt", "c.safetensors", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in find_checkpoints(tmp_path)] == ["a.safetensors", "b.pt", "c.safetensors"]


@pytest.mark.gpu
def test_a_pconv_training_step_never_waits_for_the_gpu(tmp_path):
    config = TrainConfig(image_size=64, batch_size=4, steps=3, out=str(tmp_path), device="cuda", num_workers=0,
                         model_args={"layer_size": 4, "base_channels": 8}, loss_args={"vgg_weights": "random"},
                         sample_every=0, eval_every=0, checkpoint_every=0, ema=0.99)
    trainer = Trainer(config, progress=False)
    batch = next(trainer.batches())
    trainer.step_terms([batch])  # warm-up: lazy initialisation may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        terms = trainer.step_terms([batch])
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(value.device.type == "cuda" for value in terms.values())
