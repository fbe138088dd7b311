"""Issue 13, part 6: each way a run lost work or failed late when tried, as a test (each failed on the old trainer)."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from pconv_lessons.training import Trainer, TrainConfig, export_model, load_checkpoint, load_model, main
from pconv_lessons.training.runfolder import LOCK_NAME, RunFolder

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--data", "sample", "--image-size", "32", "--batch-size", "2", "--model-arg", "layer_size=3",
        "--model-arg", "base_channels=4", "--loss-arg", "vgg_weights=none", "--num-workers", "0",
        "--sample-every", "0", "--eval-every", "0", "--checkpoint-every", "10", "--log-every", "1", "--no-progress",
        "--threads", "1"]


@pytest.fixture(scope="module", autouse=True)
def _restore_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def cli(out, steps, *extra):
    return main([*TINY, "--out", str(out), "--steps", str(steps), *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    assert cli(out, 4, "--seed", "3") == 0
    return out


def test_a_fresh_run_refuses_a_folder_that_holds_a_run_unless_overwrite(finished_run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes((finished_run / "last.pt").read_bytes())
    before = (out / "last.pt").read_bytes()
    with pytest.raises(ValueError, match="already holds a training run.*--resume.*--overwrite"):
        cli(out, 2)
    assert (out / "last.pt").read_bytes() == before
    assert cli(out, 2, "--overwrite") == 0
    assert load_checkpoint(out / "last.pt")["step"] == 2


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path):
    holder = RunFolder(tmp_path)
    holder.open()  # as a running trainer holds it
    try:
        with pytest.raises(ValueError, match="another trainer .*pid"):
            cli(tmp_path, 2)
    finally:
        holder.close()
    assert not (tmp_path / "last.pt").exists()
    assert cli(tmp_path, 2, "--overwrite") == 0  # the lock is free again


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        folder = tmp_path / "read_only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    if Path("/sys/kernel").is_dir():  # root may write anywhere but in sysfs
        return Path("/sys/kernel")
    pytest.skip("running as root without /sys: no folder is unwritable")


def test_an_unwritable_out_is_found_before_the_first_step(tmp_path, monkeypatch):
    steps = []
    original = Trainer.step_terms
    monkeypatch.setattr(Trainer, "step_terms", lambda self, batches: steps.append(1) or original(self, batches))
    config = TrainConfig(image_size=32, batch_size=2, steps=3, out=str(_unwritable_folder(tmp_path)), num_workers=0,
                         model_args={"layer_size": 3, "base_channels": 4}, loss_args={"vgg_weights": "none"},
                         sample_every=0, checkpoint_every=0, eval_every=0)
    with pytest.raises(ValueError, match="not a writable folder"):
        Trainer(config, progress=False).train()
    assert steps == []


def test_temporary_files_of_killed_saves_are_removed(tmp_path):
    stale = [tmp_path / f".last.pt.{name}.tmp" for name in ("a1b2", "c3d4")]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    assert cli(tmp_path, 2) == 0
    assert not [path for path in stale if path.exists()]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_default_fine_tune_step_follows_the_total_of_a_resumed_run(tmp_path):
    cli(tmp_path, 5)
    assert load_checkpoint(tmp_path / "last.pt")["config"]["finetune_step"] is None
    resumed = Trainer(TrainConfig(steps=20, out=str(tmp_path), num_workers=0), resume=True, progress=False)
    assert resumed.config.resolved_finetune_step() == 16  # 80 % of the new total 20, not of the first run's 5
    assert resumed.objective.learning_rate("generator", 5) == resumed.config.lr  # still phase 1 after the restart
    straight = Trainer(TrainConfig(steps=20, out=str(tmp_path / "straight"), num_workers=0,
                                   model_args={"layer_size": 3, "base_channels": 4}, loss_args={"vgg_weights": "none"}),
                       progress=False)
    assert [resumed.objective.finetuning(s) for s in range(5, 20)] == [straight.objective.finetuning(s)
                                                                       for s in range(5, 20)]


@pytest.mark.parametrize("contradiction, named", [
    (["--model", "gated"], "model='gated'"),
    (["--model-arg", "base_channels=8"], "model_args"),
    (["--lr", "0.001"], "lr=0.001"),
    (["--image-size", "48"], "image_size=48"),
    (["--batch-size", "3"], "batch_size=3"),
    (["--seed", "5"], "seed=5"),
    (["--seed", "0"], "seed=0"),  # the default value, given explicitly: still a contradiction
    (["--model", "pconv", "--model-arg", "layer_size=3", "--model-arg", "base_channels=4", "--seed", "3",
      "--lr", "0.0002", "--mask-kind", "box"], "mask_kind='box'"),
])
def test_resume_rejects_a_contradicting_setting_and_names_it(finished_run, tmp_path, contradiction, named):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes((finished_run / "last.pt").read_bytes())
    argv = ["--out", str(out), "--steps", "6", "--resume", "--no-progress", "--num-workers", "0", *contradiction]
    with pytest.raises(ValueError, match=f"contradicts.*{named}".replace("(", r"\(").replace(")", r"\)")):
        main(argv)
    assert load_checkpoint(out / "last.pt")["step"] == 4


def test_a_checkpoint_with_one_flipped_byte_is_refused(finished_run, tmp_path):
    data = bytearray((finished_run / "last.pt").read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the stored tensors, where torch.load does not look
    (tmp_path / "last.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "last.pt")
    with pytest.raises(ValueError, match="corrupt"):
        cli(tmp_path, 6, "--resume")


@pytest.mark.parametrize("bad, named", [
    (["--finetune-lr=-5e-5"], "finetune_lr"),
    (["--steps=0"], "steps"),
    (["--steps=-5"], "steps"),
    (["--max-minutes=-1"], "max_minutes"),
    (["--max-minutes", "nan"], "max_minutes"),
    (["--mask-bank=-1"], "mask_bank"),
    (["--finetune-step=-3"], "finetune_step"),
    (["--checkpoint-every=-1"], "checkpoint_every"),
    (["--loss-arg", 'weights={"hole": -6}'], "loss weight"),
    (["--loss-arg", 'weights={"style": NaN}'], "loss weight"),
])
def test_nonsense_settings_are_rejected_before_training(tmp_path, bad, named):
    argv = [*TINY, "--out", str(tmp_path), *(["--steps", "2"] if not bad[0].startswith("--steps") else []), *bad]
    with pytest.raises(ValueError, match=named):
        main(argv)
    assert not (tmp_path / "last.pt").exists()


@pytest.mark.parametrize("model, argument", [("gated", "gan_weight=-0.1"), ("lama", "l1_known=NaN")])
def test_gan_loss_weights_are_checked_too(tmp_path, model, argument):
    with pytest.raises(ValueError, match="loss weight"):
        main(["--model", model, "--out", str(tmp_path), "--steps", "1", "--device", "cpu", "--no-progress",
              "--loss-arg", argument, "--loss-arg", "disc_channels=4"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_model_on_cuda_without_cuda_says_so(finished_run):
    with pytest.raises(ValueError, match="no CUDA device"):
        load_model(finished_run / "last.pt", device="cuda")


def test_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    def full_disk(payload, stream):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 2048 vs 1937 "
                           "PytorchStreamWriter failed writing file data/3: file write failed")

    from pconv_lessons.training import atomic_save

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"could not write .*last\.pt \(the disk is full.*MiB free"):
        atomic_save({"x": 1}, tmp_path / "last.pt")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argument, message", [
    ("layer_size=abc", "model_arg layer_size must be an integer"),
    ("base_channels=2.5", "model_arg base_channels must be an integer"),
    ("channels=8", r"unknown model_args \['channels'\].*known: \['base_channels', 'conv', 'convention', 'layer_size'\]"),
])
def test_bad_model_args_name_the_argument(tmp_path, argument, message):
    with pytest.raises((TypeError, ValueError), match=message):
        main([*TINY, "--out", str(tmp_path), "--steps", "1", "--model-arg", argument])


def test_an_unknown_pconv_loss_arg_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"unknown loss_args \['style'\].*known: \['vgg_weights', 'weights'\]"):
        main([*TINY, "--out", str(tmp_path), "--steps", "1", "--loss-arg", "style=250"])


def test_a_config_naming_a_huge_model_is_rejected_before_allocating_it(finished_run, tmp_path):
    checkpoint = load_checkpoint(finished_run / "last.pt")
    checkpoint["config"]["model_args"] = {"layer_size": 7, "base_channels": 512}  # ~2 G parameters, 8 GB
    torch.save({key: checkpoint[key] for key in ("format", "config", "model", "step")}, tmp_path / "huge.pt")
    script = textwrap.dedent(f"""
        import resource, re
        from pconv_lessons.training import load_model
        size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + 2 * 2**30, resource.RLIM_INFINITY))
        try:
            load_model({str(tmp_path / "huge.pt")!r})
        except ValueError as error:
            print("ValueError:", error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert "ValueError: the weights in" in result.stdout and "shape mismatches" in result.stdout, result.stderr[-2000:]


def test_checkpoints_and_exports_get_the_permissions_of_any_new_file(finished_run, tmp_path):
    mask = os.umask(0o022)
    try:
        cli(tmp_path / "run", 2)
        weights = export_model(tmp_path / "run" / "last.pt", tmp_path / "model.safetensors")
    finally:
        os.umask(mask)
    for path in (tmp_path / "run" / "last.pt", weights, tmp_path / "model.json"):
        assert path.stat().st_mode & 0o777 == 0o644, path.name


def test_export_json_is_checked_against_its_weights(finished_run, tmp_path):
    weights = export_model(finished_run / "last.pt", tmp_path / "model.safetensors")
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SHA-256"):
        load_model(weights)
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["step"] == 4 and math.isfinite(info["elapsed_seconds"]) and not (tmp_path / LOCK_NAME).exists()
