"""Issue 19, part 3: a run's history and the run itself survive crashes, careless commands and crafted files.

Each test failed on the trainer before the fix: a damaged ``losses.csv`` resumed into a log that disagreed with the
checkpoint (or could not resume at all), ``--overwrite`` deleted the old run before failing on what it could have
checked, ``--data ''`` trained on the current directory, crafted checkpoints gave ``KeyError``/``AttributeError``
or failed steps later, and NaN / int8 / complex weights were loaded and exported.
"""

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from pconv_lessons.data import ImageFolderPairs, SamplePatches, make_pairs
from pconv_lessons.training import export_model, load_checkpoint, load_model, main
from pconv_lessons.training.logs import read_history

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
def ten_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("ten")
    assert cli(out, 10) == 0
    return out


def _copy(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns(".lock"))
    return out


def _csv_steps(path: Path) -> list[int]:
    with open(path, newline="") as stream:
        return [int(float(row["step"])) for row in csv.DictReader(stream)]


# ------------------------------------------------------------------------------ 1. the log agrees with last.pt


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)  # the header, then rows 1 … 10


def _damaged(line: str) -> str:
    step, _, rest = line.split(",", 2)
    return f"{step},zz,{rest}"


DAMAGE = {
    "cut to rows 1-6": lambda lines: "".join(lines[:7]),  # before: resumed silently as steps 1…6, 11…15
    "header only": lambda lines: lines[0],  # before: steps 11–15 only
    "empty": lambda lines: "",  # before: steps 11–15 only
    "a trailing partial row '1'": lambda lines: "".join(lines) + "1",  # before: a bogus row of step 1
    "cut inside a number '11,0.2e'": lambda lines: "".join(lines) + "11,0.2e",  # before: could not convert string…
    "rows a crash logged after the checkpoint": lambda lines: "".join(lines) + "11,0.5,0.5\r\n",
    "a row damaged in the middle": lambda lines: "".join([*lines[:4], _damaged(lines[4]), *lines[5:]]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resume_rewrites_a_damaged_log_from_the_checkpoints_own_history(ten_steps, tmp_path, damage, capsys):
    out = _copy(ten_steps, tmp_path)
    log = out / "losses.csv"
    before = read_history(log)
    log.write_text(DAMAGE[damage](_lines(log)))
    capsys.readouterr()
    assert cli(out, 15, "--resume") == 0
    assert _csv_steps(log) == list(range(1, 16))  # steps 1 … 15, each once
    history = load_checkpoint(out / "last.pt")["history"]
    assert read_history(log) == history and history[:10] == before  # equal to the checkpoint's, the first 10 kept
    printed = [line for line in capsys.readouterr().out.splitlines() if "rewritten from the checkpoint" in line]
    assert len(printed) == 1 and str(log) in printed[0]  # one line says what was replaced


def test_an_intact_log_is_resumed_without_a_word(ten_steps, tmp_path, capsys):
    out = _copy(ten_steps, tmp_path)
    assert cli(out, 12, "--resume") == 0
    assert "rewritten" not in capsys.readouterr().out and _csv_steps(out / "losses.csv") == list(range(1, 13))


def test_the_log_is_on_disk_before_the_checkpoint_that_counts_it(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace

    def watched_fsync(handle):
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{handle}")).name))
        return fsync(handle)

    def watched_replace(source, destination):
        events.append(("replace", Path(destination).name))
        return replace(source, destination)

    monkeypatch.setattr(os, "fsync", watched_fsync)
    monkeypatch.setattr(os, "replace", watched_replace)
    assert cli(tmp_path, 2, "--checkpoint-every", "1") == 0
    checkpoints = [i for i, event in enumerate(events) if event == ("replace", "last.pt")]
    assert len(checkpoints) == 3  # steps 1 and 2 (each adds a row), and the end (no new row)
    durable_log = {("fsync", "losses.csv"), ("replace", "losses.csv")}  # appended + fsynced, or an fsynced rewrite
    for previous, index in zip([0, checkpoints[0]], checkpoints[:2]):  # before: losses.csv was never fsynced
        assert durable_log & set(events[previous:index]), events[:index]


def test_an_old_checkpoint_without_its_history_repairs_a_cut_log_and_names_a_damaged_one(ten_steps, tmp_path):
    out = _copy(ten_steps, tmp_path)
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    del checkpoint["history"]  # as written before checkpoints held their history
    torch.save(checkpoint, out / "last.pt")
    log = out / "losses.csv"
    lines = _lines(log)
    log.write_text("".join(lines) + "11,0.2e")  # a cut append: dropped
    assert [row["step"] for row in load_checkpoint(out / "last.pt")["history"]] == list(range(1, 11))
    log.write_text("".join([*lines[:4], _damaged(lines[4]), *lines[5:]]))  # damage inside: nothing to repair from
    with pytest.raises(ValueError, match=rf"{log}, line 5: column .* holds 'zz', not a number"):
        load_checkpoint(out / "last.pt")


# ---------------------------------------------------------------- 2. --overwrite checks everything first


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("old")
    assert cli(out, 4) == 0
    assert (out / "samples" / "step_0000004.png").is_file() and (out / "loss_curve.png").is_file()
    (out / "notes.txt").write_text("the user's own file")
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != ".lock"}


def _unreadable_data(tmp_path: Path) -> str:
    folder = tmp_path / "broken_images"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    return str(folder)


def _empty_data(tmp_path: Path) -> str:
    (tmp_path / "no_images").mkdir()
    return str(tmp_path / "no_images")


OVERWRITE_FAILURES = {  # before: each deleted last.pt and losses.csv, then failed
    "an unknown mask family": (lambda tmp: ["--mask-kind", "free_form,nope"], "unknown mask family"),
    "--tensorboard without the package": (lambda tmp: ["--tensorboard"], "pip install tensorboard"),
    "an unreadable image": (lambda tmp: ["--data", _unreadable_data(tmp)], "a.png"),
    "a folder without images": (lambda tmp: ["--data", _empty_data(tmp)], "no image files"),
    "a bad model argument": (lambda tmp: ["--model-arg", "base_channels=0"], "base_channels"),
}


@pytest.mark.parametrize("case", sorted(OVERWRITE_FAILURES))
def test_overwrite_checks_everything_before_it_deletes_anything(old_run, tmp_path, monkeypatch, case):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    out = _copy(old_run, tmp_path)
    before = _snapshot(out)
    extra, named = OVERWRITE_FAILURES[case]
    with pytest.raises(ValueError, match=named):
        cli(out, 2, "--overwrite", *extra(tmp_path))
    assert _snapshot(out) == before  # the old run whole: checkpoint, log, samples, curves


def test_overwrite_replaces_the_whole_old_run_and_keeps_other_files(old_run, tmp_path):
    out = _copy(old_run, tmp_path)
    assert cli(out, 2, "--overwrite") == 0
    assert sorted(path.name for path in (out / "samples").iterdir()) == ["step_0000002.png"]  # before: 4 stayed too
    assert _csv_steps(out / "losses.csv") == [1, 2] and load_checkpoint(out / "last.pt")["step"] == 2
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert not [path for path in out.iterdir() if path.name.startswith(".previous-run")]


def test_a_failure_while_moving_the_old_run_aside_puts_everything_back(old_run, tmp_path, monkeypatch):
    from pconv_lessons.training.runfolder import RunFolder

    out = _copy(old_run, tmp_path)
    before = _snapshot(out)
    rename, calls = os.rename, []

    def failing(source, destination):
        calls.append(source)
        if len(calls) == 3:
            raise PermissionError(13, "Permission denied")
        return rename(source, destination)

    monkeypatch.setattr(os, "rename", failing)
    folder = RunFolder(out)
    folder.open()
    try:
        with pytest.raises(OSError, match="nothing was removed"):
            folder.discard_previous_run()
    finally:
        folder.close()
    assert _snapshot(out) == before and not list(out.glob(".previous-run*"))


# ------------------------------------------------------------------------------------------------- 3. --data


def test_empty_data_is_an_error_naming_the_argument(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (40, 40)).save(tmp_path / "holiday.png")  # before: trained on every image under the cwd
    with pytest.raises(ValueError, match=r"data \(--data\) is empty.*unset shell variable"):
        cli(tmp_path / "run", 2, "--data", "")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_sample_means_the_built_in_photos_and_a_warning_names_the_folder_it_shadows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "sample" / "mine.png")
    with pytest.warns(UserWarning, match=r"built-in 'sample' data set.*pass --data ./sample"):  # before: silence
        pairs = make_pairs("sample", 32)
    assert isinstance(pairs, SamplePatches)
    folder = make_pairs("./sample", 32)
    assert isinstance(folder, ImageFolderPairs) and [path.name for path in folder.files] == ["mine.png"]


# ------------------------------------------------------------------------ 5. crafted or damaged checkpoints


def _crafted(run: Path, tmp_path: Path, change) -> Path:
    out = _copy(run, tmp_path)
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, out / "last.pt")
    return out


def _first_weight(checkpoint) -> str:
    return next(name for name, value in checkpoint["model"].items() if value.dim() == 4)


def _set_weight(transform):
    def change(checkpoint):
        name = _first_weight(checkpoint)
        checkpoint["model"][name] = transform(checkpoint["model"][name])
    return change


def _poison(value):
    value = value.clone()
    value.view(-1)[3] = float("nan")
    return value


CRAFTED = {  # before: KeyError 'config', AttributeError, or accepted
    "no config": (lambda c: c.pop("config"), r"field 'config' is missing"),
    "no model": (lambda c: c.pop("model"), r"field 'model' is missing"),
    "config a list": (lambda c: c.update(config=[1, 2]), r"field 'config' must be of type dict, got list"),
    "config with a bad value": (lambda c: c["config"].update(image_size="64"), r"field 'config' .*image_size"),
    "model a list": (lambda c: c.update(model=[1, 2]), r"field 'model' must be of type dict, got list"),
    "a weight not a tensor": (lambda c: c["model"].update({_first_weight(c): 3.0}), r"field 'model' .* holds float"),
    "step a string": (lambda c: c.update(step="10"), r"field 'step' must be of type int, got str"),
    "history damaged": (lambda c: c["history"].update(values=torch.zeros(3)), r"field 'history' is damaged"),
    "NaN weights": (_set_weight(_poison), r"non-finite value"),
    "int8 weights": (_set_weight(lambda v: v.to(torch.int8)), r"is torch.int8, the model needs real floating"),
    "complex weights": (_set_weight(lambda v: v.to(torch.complex64)), r"is torch.complex64"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_checkpoint_names_the_file_and_the_field(ten_steps, tmp_path, case):
    change, named = CRAFTED[case]
    out = _crafted(ten_steps, tmp_path, change)
    path = out / "last.pt"
    for action in (lambda: load_model(path), lambda: export_model(path, tmp_path / "export.safetensors"),
                   lambda: cli(out, 12, "--resume")):
        with pytest.raises(ValueError, match=named) as error:
            action()
        assert str(path) in str(error.value)
    assert not (tmp_path / "export.safetensors").exists()


def test_an_adam_state_of_the_wrong_shape_is_caught_at_resume_not_at_the_first_step(ten_steps, tmp_path,
                                                                                  monkeypatch):
    from pconv_lessons.training import Trainer

    def change(checkpoint):
        state = next(iter(checkpoint["optimizers"].values()))["state"]
        state[0]["exp_avg"] = torch.zeros(7)

    out = _crafted(ten_steps, tmp_path, change)
    monkeypatch.setattr(Trainer, "step_terms", lambda *args: pytest.fail("a step was started"))
    # before: resumed, then "output with shape [7] doesn't match the broadcast shape [4, 3, 7, 7]" at the first step
    with pytest.raises(ValueError, match=rf"{out / 'last.pt'} \(field optimizers\[.*\]\): state\[0\]\['exp_avg'\] "
                                         r"has shape \[7\], its parameter \[4, 3, 7, 7\]"):
        cli(out, 12, "--resume")


def test_a_safetensors_export_with_a_broken_header_names_the_file(ten_steps, tmp_path):
    weights = export_model(ten_steps / "last.pt", tmp_path / "model.safetensors")
    weights.write_bytes((10**12).to_bytes(8, "little") + b"{}")  # a header length beyond the file
    info_path = weights.with_suffix(".json")
    info = json.loads(info_path.read_text())
    info["sha256"] = __import__("hashlib").sha256(weights.read_bytes()).hexdigest()  # a consistent crafted pair
    info_path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=rf"export {weights} is not a readable safetensors file"):
        load_model(weights)  # before: SafetensorError … invalid header length


def test_an_export_with_a_crafted_config_names_the_field(ten_steps, tmp_path):
    weights = export_model(ten_steps / "last.pt", tmp_path / "model.safetensors")
    info_path = weights.with_suffix(".json")
    info = json.loads(info_path.read_text())
    del info["config"]
    info_path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=rf"export {info_path}: field 'config' is missing"):  # before: KeyError
        load_model(weights)


# --------------------------------------------------------------------------------------- 6. bad arguments


@pytest.mark.parametrize("argument, named", [
    (["--threads", "0"], r"--threads must be >= 1.*got 0"),  # before: torch's RuntimeError
    (["--seed", str(2**64)], r"seed must be <= 4294967295, got 18446744073709551616"),  # before: NumPy's message
])
def test_bad_command_line_numbers_name_the_argument(tmp_path, argument, named):
    with pytest.raises(ValueError, match=named):
        cli(tmp_path, 2, *argument)
    assert not (tmp_path / "last.pt").exists()
