"""The mechanism the three released-weight families share (pconv_lessons.pretrained.common and load_pretrained)."""

import pickle
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from pconv_lessons import pretrained
from pconv_lessons.pretrained import common
from pconv_lessons.pretrained.common import (
    PretrainedFileError,
    load_strict,
    rename,
    sub_state,
)
from pconv_lessons.pretrained.reader import StandIn, read_tensors


class WritesAFile:
    """Unpickling this would open (create) ``path`` for writing: code that must never run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class Hyperparameters:
    """A foreign class, as a Lightning checkpoint's OmegaConf hyper-parameters are."""

    def __init__(self) -> None:
        self.lr = 1e-3
        self.layers = [1, 2, 3]


# torch.save's zip archive (PyTorch ≥ 1.6) and the older format that files released before it use
FORMATS = pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])


def hostile_checkpoint(tmp_path: Path, zipped: bool) -> tuple[Path, Path, dict]:
    trap = tmp_path / "code_ran.txt"
    tensors = {"generator.weight": torch.arange(6.0).view(2, 3), "generator.bias": torch.ones(2)}
    path = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": tensors, "hyper_parameters": Hyperparameters(), "callback": WritesAFile(str(trap))},
               path, _use_new_zipfile_serialization=zipped)
    return path, trap, tensors


@FORMATS
def test_the_trap_would_run_with_a_plain_unpickler(tmp_path, zipped):
    """Without the restricted reader the trap fires: so the next test means something."""
    path, trap, _ = hostile_checkpoint(tmp_path, zipped)
    torch.load(path, weights_only=False)
    assert trap.exists()


@FORMATS
def test_the_reader_returns_the_tensors_and_runs_no_pickled_code(tmp_path, zipped):
    path, trap, tensors = hostile_checkpoint(tmp_path, zipped)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # weights_only alone refuses the file: the stand-ins make it readable
    obj = read_tensors(path)
    assert not trap.exists()
    assert set(obj["state_dict"]) == set(tensors)
    for key, value in tensors.items():
        assert torch.equal(obj["state_dict"][key], value)
    stub = obj["hyper_parameters"]
    assert isinstance(stub, StandIn) and not isinstance(stub, Hyperparameters)
    assert stub.FOREIGN == f"{Hyperparameters.__module__}.Hyperparameters"
    assert stub.state == {"lr": 1e-3, "layers": [1, 2, 3]}  # stored, inert
    callback = obj["callback"]  # open(trap, "w") became a stand-in that only keeps its arguments
    assert isinstance(callback, StandIn) and callback.FOREIGN == "io.open" and callback.args == (str(trap), "w")


@FORMATS
def test_a_plain_state_dict_is_read_exactly(tmp_path, zipped):
    state = {"weight": torch.randn(3, 2), "nested": {"bias": torch.zeros(3), "half": torch.randn(4).half()},
             "view": torch.arange(10.0)[2:8:2], "step": 7, "name": "x", "shape": torch.Size([2, 3])}
    torch.save(state, tmp_path / "plain.pt", _use_new_zipfile_serialization=zipped)
    obj = read_tensors(tmp_path / "plain.pt")
    expected = torch.load(tmp_path / "plain.pt", weights_only=True)
    for key in ("weight", "view"):
        assert torch.equal(obj[key], expected[key]) and obj[key].stride() == expected[key].stride()
    assert torch.equal(obj["nested"]["half"], expected["nested"]["half"]) and obj["nested"]["half"].dtype == torch.half
    assert (obj["step"], obj["name"], obj["shape"]) == (7, "x", torch.Size([2, 3]))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_is_a_clear_error(tmp_path, damage):
    torch.save({"weight": torch.randn(64, 64)}, tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    content = {"truncated": data[: len(data) // 2], "garbage": b"not a checkpoint\n" * 50, "empty": b""}[damage]
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(PretrainedFileError, match="bad.pt.* not a readable PyTorch file.*download it again"):
        read_tensors(tmp_path / "bad.pt")


def test_sub_state_strips_the_prefix_and_names_the_family_when_nothing_is_there(tmp_path):
    state = {"generator.a": torch.ones(1), "generator.b": torch.zeros(2), "generator.note": "text", "loss.c": torch.ones(1)}
    assert set(sub_state(state, "generator.", tmp_path, "lama", "a Lightning checkpoint")) == {"a", "b"}
    with pytest.raises(PretrainedFileError, match="no tensors under 'model.': not a lama file.*first keys are: generator.a"):
        sub_state(state, "model.", tmp_path, "lama", "a Lightning checkpoint")
    with pytest.raises(PretrainedFileError, match="does not hold a state dict"):
        sub_state([torch.ones(1)], "model.", tmp_path, "lama", "a Lightning checkpoint")


def test_rename_applies_the_table_and_drops_none():
    state = {"a.weight": torch.ones(1), "a.buffer": torch.zeros(1)}
    renamed = rename(state, lambda key: None if key.endswith("buffer") else "b." + key.split(".")[1])
    assert list(renamed) == ["b.weight"]


def test_load_strict_lists_every_missing_unexpected_and_misshapen_key():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    state = model.state_dict()
    del state["1.running_var"]
    state["2.weight"] = torch.ones(1)
    state["0.weight"] = torch.ones(3, 4)
    with pytest.raises(PretrainedFileError) as error:
        load_strict(model, state, source="test file x.pt")
    message = str(error.value)
    assert message.startswith("test file x.pt does not fit Sequential: ")
    assert "missing keys (1): 1.running_var" in message
    assert "unexpected keys (1): 2.weight" in message
    assert "shape mismatches (1): 0.weight: file (3, 4) vs model (3, 2)" in message


def test_load_strict_shortens_a_long_list_and_loads_a_fitting_state():
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(30)])
    with pytest.raises(PretrainedFileError, match=r"missing keys \(60\): .* …"):
        load_strict(model, {}, source="empty")
    state = {key: torch.full_like(value, 2.0) for key, value in model.state_dict().items()}
    load_strict(model, state, source="full")
    assert all(torch.equal(value, torch.full_like(value, 2.0)) for value in model.state_dict().values())


def test_an_unknown_family_lists_the_families():
    with pytest.raises(ValueError, match="name must be one of 'lama', 'deepfillv2', 'pconv', got 'big-lama'"):
        pretrained.load_pretrained("big-lama", "x.ckpt")
    with pytest.raises(ValueError, match="name must be one of"):
        pretrained.available(None)


def test_the_folder_is_data_pretrained_unless_the_environment_variable_says_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv(common.ENV_VAR, raising=False)
    assert common.pretrained_dir() == Path(common.__file__).resolve().parents[2] / "data" / "pretrained"
    monkeypatch.setenv(common.ENV_VAR, str(tmp_path))
    assert common.pretrained_dir() == tmp_path


def test_default_path_and_available_look_in_the_folder(tmp_path, monkeypatch):
    family = ModuleType("toy")
    family.FILES = {"first.ckpt": "from A: https://example.org/first", "second.pth": "from B"}
    monkeypatch.setenv(common.ENV_VAR, str(tmp_path))
    assert common.find_file(family) is None
    with pytest.raises(PretrainedFileError, match=f"no file at {tmp_path}/first.ckpt.*first.ckpt: from A.*second.pth: from B"):
        common.default_path(family)
    (tmp_path / "second.pth").write_bytes(b"")
    assert common.default_path(family) == tmp_path / "second.pth"
    assert pretrained.available("pconv") is None  # no released file in this folder
