"""load_pretrained("deepfillv2", …): nipponjo/deepfillv2-pytorch's converted files → GatedGenerator, strictly.

The key list (tests/data/deepfillv2_keys.txt) and the reference outputs (tests/data/deepfillv2_reference.json) were
written down from the original code (nipponjo's networks_tf.Generator, run beside ours; see the JSON's note); the
original code itself is not part of this repository.
"""

import json
import time
from pathlib import Path

import pytest
import torch

from pconv_lessons.layers import collect_gates
from pconv_lessons.models import GatedGenerator
from pconv_lessons.pretrained import PretrainedFileError, available, deepfillv2, load_pretrained

DATA = Path(__file__).parent / "data"


def official_keys() -> dict[str, tuple[int, ...]]:
    lines = (DATA / "deepfillv2_keys.txt").read_text().splitlines()
    return {key: tuple(map(int, shape.split("x")))
            for key, shape in (line.split() for line in lines if line and not line.startswith("#"))}


def synthetic_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the official names and shapes: biases N(0, 0.1²); the feature half of a weight
    N(0, 2.6²/fan_in) and the gate half N(0, 1/fan_in) (3-channel output layers: all features), in file order."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_keys().items():
        if len(shape) == 1:
            state[key] = torch.randn(shape, generator=generator) * 0.1
            continue
        fan_in = shape[1] * shape[2] * shape[3]
        half = shape[0] if shape[0] == 3 else shape[0] // 2
        scale = torch.full((shape[0], 1, 1, 1), fan_in**-0.5)
        scale[:half] *= 2.6
        state[key] = torch.randn(shape, generator=generator) * scale
    return state


def save(state: dict, path: Path) -> Path:
    torch.save({"G": state}, path)
    return path


def reference_inputs(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, height, width, generator=generator)
    mask = torch.ones(1, 1, height, width)
    mask[..., height // 4 : height // 2, width // 5 : width // 2] = 0  # a box
    mask[..., height // 2 :, 2 * width // 3] = 0  # and a one-pixel line
    return image, mask


@pytest.fixture(scope="module")
def released_file(tmp_path_factory):
    return save(synthetic_state(), tmp_path_factory.mktemp("deepfillv2") / "states_tf_places2.pth")


def test_key_table_maps_the_official_layout_onto_ours_in_order():
    """The official keys, in the original's layer order, land on our state dict's keys in our layer order, with the
    same shapes. Two same-shaped layers swapped in the table would break the order (see the planted test)."""
    keys = official_keys()
    assert len(keys) == 84 and len(deepfillv2.KEY_TABLE) == 42
    ours = GatedGenerator(base_channels=48).state_dict()
    assert [deepfillv2.our_key(key) for key in keys] == list(ours)
    assert [keys[key] for key in keys] == [tuple(tensor.shape) for tensor in ours.values()]


def test_the_order_check_catches_two_swapped_layers(monkeypatch):
    table = dict(deepfillv2.KEY_TABLE)
    table["conv11"], table["conv12"] = table["conv12"], table["conv11"]  # same shapes: only the order tells
    monkeypatch.setattr(deepfillv2, "KEY_TABLE", table)
    with pytest.raises(AssertionError):
        test_key_table_maps_the_official_layout_onto_ours_in_order()


def test_loads_strictly_into_the_full_width_model(released_file):
    start = time.perf_counter()
    model = load_pretrained("deepfillv2", released_file)
    assert time.perf_counter() - start < 10
    assert isinstance(model, GatedGenerator) and model.base_channels == 48 and not model.sketch
    assert not model.training and model.refine.attention.fuse
    state, ours = synthetic_state(), model.state_dict()
    for key, tensor in state.items():
        torch.testing.assert_close(ours[deepfillv2.our_key(key)], tensor, rtol=0, atol=0)


def test_sizing_from_the_file(tmp_path):
    """A narrower generator under the official names (cnum 16) builds a base_channels=16 model."""
    inverse = {ours: theirs for theirs, ours in deepfillv2.KEY_TABLE.items()}
    narrow = GatedGenerator(base_channels=16).state_dict()

    def official(key):
        for module, layer in inverse.items():
            if key.startswith(module + "."):
                return layer + key[len(module):]
        raise KeyError(key)

    path = save({official(key): tensor for key, tensor in narrow.items()}, tmp_path / "narrow.pth")
    assert load_pretrained("deepfillv2", path).base_channels == 16


def test_features_come_first_and_gates_second_as_in_the_original(tmp_path):
    """The original splits each gated layer's 2·C outputs as (features, gates) = torch.split(x, C). A file whose
    conv1 gate half has bias −30 (and zero weights) must close every gate of our first layer; with the two halves
    swapped by the loader the gates would sit at σ(1) ≈ 0.73."""
    state = synthetic_state()
    half = state["conv1.conv.bias"].shape[0] // 2
    state["conv1.conv.weight"] = torch.zeros_like(state["conv1.conv.weight"])
    state["conv1.conv.bias"] = torch.cat([torch.ones(half), torch.full((half,), -30.0)])
    model = load_pretrained("deepfillv2", save(state, tmp_path / "closed.pth"))
    image, mask = reference_inputs(16, 16)
    gates = collect_gates(model, image, mask)["coarse.0"]
    assert gates.max() < 1e-12


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("size", ["32x40", "64x64"])
def test_equals_the_original_on_reference_inputs(released_file, fuse, size):
    """Outputs of nipponjo's networks_tf.Generator (its test.py preparation) for synthetic_state(0) on
    reference_inputs, written down in tests/data/deepfillv2_reference.json; ours within 1e-4."""
    reference = json.loads((DATA / "deepfillv2_reference.json").read_text())[f"fuse={fuse}"][size]
    model = load_pretrained("deepfillv2", released_file)
    model.refine.attention.fuse = fuse
    height, width = map(int, size.split("x"))
    with torch.no_grad():
        prediction = model(*reference_inputs(height, width))
    assert abs(prediction.mean().item() - reference["mean"]) < 1e-4
    for (channel, y, x), value in zip(reference["pixels"], reference["values"]):
        assert abs(prediction[0, channel, y, x].item() - value) < 1e-4, (channel, y, x)


def test_missing_file_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PCONV_PRETRAINED_DIR", str(tmp_path))
    assert available("deepfillv2") is None
    with pytest.raises(PretrainedFileError, match="states_tf_places2.pth.*nipponjo/deepfillv2-pytorch.*gdown"):
        load_pretrained("deepfillv2")
    with pytest.raises(PretrainedFileError, match="no file at"):
        load_pretrained("deepfillv2", tmp_path / "nothing.pth")
    save(synthetic_state(), tmp_path / "states_tf_celebahq.pth")
    assert available("deepfillv2") == tmp_path / "states_tf_celebahq.pth"
    assert isinstance(load_pretrained("deepfillv2"), GatedGenerator)


def test_a_file_of_another_family_is_named_as_such(tmp_path):
    lama_like = tmp_path / "best.ckpt"
    torch.save({"state_dict": {"generator.model.1.ffc.convl2l.weight": torch.zeros(1)}}, lama_like)
    with pytest.raises(PretrainedFileError, match="not a deepfillv2 file.*state_dict"):
        load_pretrained("deepfillv2", lama_like)
    pconv_like = tmp_path / "pconv.pth"
    torch.save({"G": {"generator.enc1.weight": torch.zeros(1)}}, pconv_like)
    with pytest.raises(PretrainedFileError, match="not a deepfillv2 networks_tf generator"):
        load_pretrained("deepfillv2", pconv_like)


def test_missing_unexpected_and_misshapen_keys_are_listed(tmp_path):
    state = synthetic_state()
    del state["conv5.conv.bias"]
    state["extra_layer.conv.weight"] = torch.zeros(1)
    state["xconv3.conv.weight"] = torch.zeros(4, 4, 3, 3)
    with pytest.raises(PretrainedFileError) as error:
        load_pretrained("deepfillv2", save(state, tmp_path / "broken.pth"))
    message = str(error.value)
    assert "missing keys (1): coarse.4.conv.bias" in message
    assert "unexpected keys (1): extra_layer.conv.weight" in message
    assert "refine.dilated.2.conv.weight: file (4, 4, 3, 3) vs model (96, 24, 3, 3)" in message


def test_a_first_layer_of_the_wrong_shape_is_explained(tmp_path):
    state = synthetic_state()
    state["conv1.conv.weight"] = torch.zeros(48, 4, 5, 5)
    with pytest.raises(PretrainedFileError, match=r"conv1.conv.weight has shape \(48, 4, 5, 5\)"):
        load_pretrained("deepfillv2", save(state, tmp_path / "four_inputs.pth"))
