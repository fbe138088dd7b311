"""load_pretrained("pconv"): mmagic's PConv checkpoint layout (key list written down from mmagic's model in
tests/data/pconv_mmagic_keys.txt) → PConvUNet(convention="mmagic"), on synthetic files; the parity with mmagic's own
code was measured beside the repository (see data/pretrained/README.md)."""

from pathlib import Path

import pytest
import torch

from pconv_lessons.models import PConvUNet, pconv_unet
from pconv_lessons.pretrained import (
    PretrainedFileError,
    available,
    load_pretrained,
    pconv,
)
from pconv_lessons.pretrained.common import ENV_VAR

KEY_LIST = Path(__file__).parent / "data" / "pconv_mmagic_keys.txt"
RELEASED = next(iter(pconv.FILES))


def official_shapes() -> dict[str, tuple[int, ...]]:
    """Every key of mmagic's PConvInpaintor state dict (num_layers 7) with its shape."""
    shapes = {}
    for line in KEY_LIST.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, shape = line.partition(" ")
            shapes[key] = tuple(int(d) for d in shape.split(",")) if shape else ()
    return shapes


def narrow(shape: tuple[int, ...], key: str, divisor: int) -> tuple[int, ...]:
    """The shape at base_channels 64 / divisor: channel counts (multiples of 64, or 64k + 3 where the image
    joins the skip) shrink, kernel sizes and the 3 image channels stay."""
    if not key.startswith("generator."):
        return shape

    def channels(d: int) -> int:
        return d // divisor if d % 64 == 0 else (d - 3) // divisor + 3

    return tuple(channels(d) if position < 2 else d for position, d in enumerate(shape))


def levels(shapes: dict, layer_size: int) -> dict:
    """mmagic's layout for another num_layers: levels above 7 repeat level 7, levels above layer_size go (enc1-4 and
    dec1-4 always exist in mmagic; layer_size ≥ 4 here)."""
    out = {}
    for key, shape in shapes.items():
        found = pconv.KEY.fullmatch(key.removeprefix("generator."))
        if found is None:
            out[key] = shape
        elif int(found["k"]) <= layer_size:
            out[key] = shape
            if int(found["k"]) == 7:
                for k in range(8, layer_size + 1):
                    out[key.replace(f"{found['part']}7.", f"{found['part']}{k}.")] = shape
    return out


def synthetic_state(shapes: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("weight_mask_updater"):
            state[key] = torch.ones(shape)
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(500000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def save_released(path: Path, state: dict, zipped: bool = True) -> Path:
    torch.save({"meta": {"mmedit_version": "0.1.0", "iter": 500000, "config": "model = dict(...)"},
                "state_dict": state}, path, _use_new_zipfile_serialization=zipped)
    return path


def small_file(tmp_path: Path, layer_size: int = 7, divisor: int = 8, edit=None, zipped: bool = True) -> Path:
    shapes = {key: narrow(shape, key, divisor) for key, shape in levels(official_shapes(), layer_size).items()}
    state = synthetic_state(shapes)
    if edit is not None:
        edit(state)
    return save_released(tmp_path / RELEASED, state, zipped)


def test_the_key_list_maps_one_to_one_onto_the_paper_sized_model():
    shapes = official_shapes()
    generator = {key.removeprefix("generator."): shape for key, shape in shapes.items() if key.startswith("generator.")}
    assert len(generator) == 90 and sum(key.startswith("loss_percep.") for key in shapes) == 16
    with torch.device("meta"):
        ours = {key: tuple(value.shape) for key, value in PConvUNet(layer_size=7, base_channels=64).state_dict().items()}
    mapped = {pconv.our_key(key, 7): shape for key, shape in generator.items() if not key.endswith("weight_mask_updater")}
    assert mapped == ours
    assert len(mapped) == 76  # the key table's size: 90 official generator tensors, 14 mask kernels dropped


def test_the_released_layout_loads_strictly_at_full_size(tmp_path):
    state = synthetic_state(official_shapes())
    model = load_pretrained("pconv", save_released(tmp_path / RELEASED, state))
    assert isinstance(model, PConvUNet) and not model.training
    assert (model.layer_size, model.base_channels, model.convention) == (7, 64, "mmagic")
    ours = model.state_dict()
    for official, mine in [("encoder.enc1.conv.weight", "encoder.0.conv.weight"),
                           ("encoder.enc1.conv.bias", "encoder.0.conv.bias"),
                           ("encoder.enc7.bn.running_var", "encoder.6.norm.running_var"),
                           ("decoder.dec7.conv.weight", "decoder.0.conv.weight"),
                           ("decoder.dec2.bn.bias", "decoder.5.norm.bias"),
                           ("decoder.dec1.conv.bias", "decoder.6.conv.bias")]:
        assert torch.equal(ours[mine], state["generator." + official]), official


@pytest.mark.parametrize("layer_size, divisor", [(4, 8), (5, 8), (7, 16), (8, 32)])
def test_the_model_is_sized_from_the_shapes(tmp_path, layer_size, divisor):
    model = load_pretrained("pconv", small_file(tmp_path, layer_size=layer_size, divisor=divisor))
    assert (model.layer_size, model.base_channels) == (layer_size, 64 // divisor)
    image, mask = torch.rand(1, 3, 40, 72), torch.ones(1, 1, 40, 72)
    mask[..., 10:30, 20:50] = 0
    with torch.no_grad():
        prediction = model(image, mask)
    assert prediction.shape == (1, 3, 40, 72)
    assert prediction.min() >= 0 and prediction.max() <= 1  # mmagic's destruct clamps


def test_a_file_in_the_format_before_pytorch_1_6_loads(tmp_path):
    """The release dates from June 2020, when torch.save did not yet write zip archives by default."""
    zipped = load_pretrained("pconv", small_file(tmp_path, layer_size=5))
    (tmp_path / "legacy").mkdir()
    legacy = load_pretrained("pconv", small_file(tmp_path / "legacy", layer_size=5, zipped=False))
    for (key, ours), theirs in zip(zipped.state_dict().items(), legacy.state_dict().values()):
        assert torch.equal(ours, theirs), key


def first_layer_reads_blue_then_red(model: PConvUNet) -> bool:
    """Hand-computed: enc1 taps only network channel 0 (mmagic's B) into output 0 and channel 2 (R) into output 1,
    centre weight 1, no bias; on a flat colour with no hole the window ratio is 1, so at an inner pixel
    output 0 = ReLU(2·blue − 1) = 0.8 and output 1 = ReLU(2·red − 1) = 0.2."""
    red, green, blue = 0.6, 0.3, 0.9
    image = torch.tensor([red, green, blue]).view(1, 3, 1, 1).expand(1, 3, 32, 32).clone()
    with torch.no_grad():
        enc1 = model.forward_layers(image, torch.ones(1, 1, 32, 32))[1].features[0, :2, 8, 8]
    return torch.allclose(enc1, torch.tensor([2 * blue - 1, 2 * red - 1]), atol=1e-6)


def only_two_taps(state):
    """enc1's output 0 reads input channel 0 and output 1 reads input channel 2 at the centre tap, nothing else."""
    weight = state["generator.encoder.enc1.conv.weight"]
    weight.zero_()
    weight[0, 0, 3, 3] = 1.0
    weight[1, 2, 3, 3] = 1.0
    state["generator.encoder.enc1.conv.bias"].zero_()


def test_the_network_sees_bgr_in_minus_one_to_one(tmp_path):
    model = load_pretrained("pconv", small_file(tmp_path, layer_size=4, edit=only_two_taps))
    assert first_layer_reads_blue_then_red(model)


def test_a_swapped_channel_order_is_caught(tmp_path, monkeypatch):
    """The check above fails for a model that feeds RGB (a planted wrong convention)."""
    model = load_pretrained("pconv", small_file(tmp_path, layer_size=4, edit=only_two_taps))
    rgb = pconv_unet.CONVENTIONS["mmagic"]._replace(channels=(0, 1, 2))
    monkeypatch.setitem(pconv_unet.CONVENTIONS, "mmagic", rgb)
    assert not first_layer_reads_blue_then_red(model)


def test_the_prediction_comes_back_as_rgb_in_zero_one(tmp_path):
    """dec1 with no weights and bias (B, G, R) = (0.5, 0, 3) predicts R = (3+1)/2 clamped to 1 (mmagic's destruct
    clamps to 255), G = (0+1)/2 = 0.5, B = (0.5+1)/2 = 0.75, in RGB order."""
    def bias_only(state):
        state["generator.decoder.dec1.conv.weight"].zero_()
        state["generator.decoder.dec1.conv.bias"].copy_(torch.tensor([0.5, 0.0, 3.0]))

    model = load_pretrained("pconv", small_file(tmp_path, layer_size=4, edit=bias_only))
    mask = torch.ones(1, 1, 16, 24)
    mask[..., 4:12, 4:20] = 0
    with torch.no_grad():
        prediction = model(torch.rand(1, 3, 16, 24), mask)
    expected = torch.tensor([1.0, 0.5, 0.75]).view(1, 3, 1, 1).expand_as(prediction)
    assert torch.allclose(prediction, expected, atol=1e-6)


def test_the_course_convention_is_the_identity():
    torch.manual_seed(1)
    model = PConvUNet(layer_size=4, base_channels=4).eval()
    image, mask = torch.rand(2, 3, 32, 48), (torch.rand(2, 1, 32, 48) > 0.3).float() * 0.75  # models take [0, 1]
    with torch.no_grad():
        layers = model.forward_layers(image, mask)
        prediction = model(image, mask)
    assert torch.equal(layers[0].features, image)
    assert torch.equal(prediction, layers[-1].features)  # not clamped, not rescaled
    assert torch.equal(layers[0].mask, mask)  # soft masks stay soft
    with pytest.raises(ValueError, match="convention must be one of 'course', 'mmagic', got 'rgb'"):
        PConvUNet(layer_size=4, base_channels=4, convention="rgb")


def test_mmagic_makes_every_mask_value_below_one_a_hole(tmp_path):
    """mmagic's LoadMask turns every hole value > 0 into 1: a soft course mask is known only where it is 1."""
    model = load_pretrained("pconv", small_file(tmp_path, layer_size=4))
    soft = torch.ones(1, 1, 16, 16)
    soft[..., 2:6, :] = 0.5
    soft[..., 9:12, 3:9] = 0.0
    binary = (soft == 1).float()
    with torch.no_grad():
        seen = model.forward_layers(torch.rand(1, 3, 16, 16), soft)[0].mask
        assert torch.equal(seen, binary)
        image = torch.rand(1, 3, 16, 16)
        assert torch.equal(model(image, soft), model(image, binary))


def test_a_missing_file_says_where_to_get_it(tmp_path, monkeypatch):
    with pytest.raises(PretrainedFileError, match="download.openmmlab.com.*data/pretrained/README.md"):
        load_pretrained("pconv", tmp_path / "nothing.pth")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert available("pconv") is None
    with pytest.raises(PretrainedFileError, match=f"no file at .*{RELEASED}"):
        load_pretrained("pconv")


def test_the_default_file_is_found_in_the_pretrained_folder(tmp_path, monkeypatch):
    path = small_file(tmp_path, layer_size=4)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert available("pconv") == path
    assert load_pretrained("pconv").layer_size == 4


@pytest.mark.parametrize(
    "checkpoint, says",
    [
        ({"state_dict": {"generator.model.1.ffc.convl2l.weight": torch.ones(1)}}, "no encoder.enc1.conv.weight"),
        ({"G": {"coarse_gen.conv1.conv.weight": torch.ones(1)}}, "no tensors under 'generator.'.*first keys are: G"),
        ({"format": "pconv_lessons", "model": {"encoder.0.conv.weight": torch.ones(1)}}, "not a pconv file"),
        ([torch.ones(1)], "does not hold a state dict"),
    ],
    ids=["lama-like", "deepfillv2-like", "course checkpoint", "a list"],
)
def test_a_file_of_another_family_is_named(tmp_path, checkpoint, says):
    torch.save(checkpoint, tmp_path / "other.pth")
    with pytest.raises(PretrainedFileError, match=says):
        load_pretrained("pconv", tmp_path / "other.pth")


def test_missing_unexpected_and_misshapen_keys_are_listed(tmp_path):
    def damage(state):
        del state["generator.decoder.dec3.bn.running_var"]
        state["generator.encoder.enc2.bn.extra"] = torch.ones(1)
        state["generator.attention.weight"] = torch.ones(1)
        state["generator.decoder.dec2.conv.weight"] = torch.ones(8, 24, 5, 5)

    with pytest.raises(PretrainedFileError) as error:
        load_pretrained("pconv", small_file(tmp_path, layer_size=4, edit=damage))
    message = str(error.value)
    assert "missing keys (1): decoder.1.norm.running_var" in message
    assert "unexpected keys (2): attention.weight, encoder.1.norm.extra" in message
    assert "shape mismatches (1): decoder.2.conv.weight: file (8, 24, 5, 5) vs model (8, 24, 3, 3)" in message


def test_a_mask_kernel_that_is_not_all_ones_is_refused(tmp_path):
    def halve(state):
        state["generator.decoder.dec2.conv.weight_mask_updater"].mul_(0.5)

    with pytest.raises(PretrainedFileError, match="decoder.dec2.conv.weight_mask_updater must be all ones"):
        load_pretrained("pconv", small_file(tmp_path, layer_size=4, edit=halve))
