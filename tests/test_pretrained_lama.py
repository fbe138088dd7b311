"""``load_pretrained("lama", …)``: advimman/lama's ``best.ckpt`` layout → ``LamaGenerator``.

The tests' data was written once with LaMa's own code (which is not in this repository):
- ``lama_keys_big_lama.txt`` / ``lama_keys_lama_fourier.txt``: every generator tensor's key and shape, as
  ``best.ckpt`` stores them, for big-lama.yaml (18 blocks) and ffc_resnet_075.yaml (9 blocks);
- ``lama_tiny_best.ckpt``: LaMa's ``FFCResNetGenerator`` at ngf 4, 1 block, random weights and BatchNorm
  statistics, saved like a Lightning checkpoint (with discriminator / evaluator / loss tensors and an OmegaConf
  hyper-parameter object), and ``lama_tiny_reference.pt``: an image, a hole mask (1 = hole) and what LaMa's
  ``bin/predict.py`` path computes from them (symmetric padding to 24 × 40, crop back to 20 × 36);
- ``lama_tiny_omegaconf.ckpt``: the same generator tensors in the layout PyTorch Lightning 1.2.9 (LaMa's) gives
  ``best.ckpt``, with real OmegaConf 2.1.2 objects pickled by OmegaConf itself (hydra 1.1's, LaMa's): a DictConfig
  of hyper-parameters (nested configs, a list, an interpolation, an ``${env:…}`` value resolved once, so that its
  resolver cache is filled), ``hparams_type`` (the DictConfig class) and the callback state keyed by the
  ``ModelCheckpoint`` class — written once with omegaconf installed beside the course, which does not need it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from pconv_lessons.models import LamaGenerator, composite
from pconv_lessons.pretrained import (
    PretrainedFileError,
    available,
    lama,
    load_pretrained,
)
from pconv_lessons.pretrained.common import load_strict
from pconv_lessons.pretrained.reader import StandIn, read_tensors
from pconv_lessons.train import load_model

DATA = Path(__file__).parent / "data"
TINY = DATA / "lama_tiny_best.ckpt"
TOLERANCE = 1e-6  # float32 agreement with LaMa's own output (measured: identical)


def official_shapes(name: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in (DATA / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            shapes[key] = tuple(int(side) for side in shape.strip("()").split(",") if side.strip())
    return shapes


def synthetic_state(name: str) -> dict[str, torch.Tensor]:
    """Each official tensor filled with its own row number, so that a value tells which key it came from."""
    return {key[len(lama.PREFIX):]: torch.full(shape, float(row))
            for row, (key, shape) in enumerate(official_shapes(name).items())}


def tiny_reference() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    reference = torch.load(DATA / "lama_tiny_reference.pt", weights_only=True)
    return reference["image"], 1.0 - reference["hole"], reference  # course mask: 1 = known


@pytest.mark.parametrize("name, n_blocks", [("lama_keys_big_lama.txt", 18), ("lama_keys_lama_fourier.txt", 9)])
def test_official_keys_fill_every_tensor_of_the_sized_model(name, n_blocks):
    state = synthetic_state(name)
    model, ours = lama.build(state)
    assert (model.ngf, model.n_blocks, model.ratio) == (64, n_blocks, 0.75)
    assert len(ours) == len(state) == len(model.state_dict())  # one of ours per official key, none left over
    load_strict(model, ours, source=name)
    loaded = model.state_dict()
    for key, value in state.items():  # every tensor arrives unchanged (no permutation, split or reshape)
        assert torch.equal(loaded[lama.our_key(key, n_blocks)], value)


def test_key_table_examples():
    assert lama.our_key("1.ffc.convl2l.weight", 18) == "stem.1.ffc.local_to_local.weight"
    assert lama.our_key("4.bn_g.running_var", 18) == "down.2.bn_global.running_var"
    assert lama.our_key("22.conv2.ffc.convg2g.fu.conv_layer.weight", 18) == \
        "body.17.body.1.ffc.global_to_global.fourier.conv.weight"
    assert lama.our_key("24.bias", 18) == "up.0.bias" and lama.our_key("25.running_mean", 18) == "up.1.running_mean"
    assert lama.our_key("34.weight", 18) == "head.1.weight" and lama.our_key("25.weight", 9) == "head.1.weight"
    unknown = "5.conv1.ffc.convg2g.lfu.conv_layer.weight"  # LaMa's local Fourier unit, off in the released models
    assert lama.our_key(unknown, 18) == "generator.model." + unknown


def test_tiny_generator_matches_lamas_own_output():
    model = load_pretrained("lama", TINY)
    assert (model.ngf, model.n_blocks, model.ratio, model.training) == (4, 1, 0.75, False)
    image, mask, reference = tiny_reference()
    with torch.no_grad():
        prediction = model(image, mask)
    assert prediction.shape == image.shape  # 20 × 36: padded to a multiple of 8 inside and cropped back
    torch.testing.assert_close(prediction, reference["predicted_image"], atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(composite(prediction, image, mask), reference["inpainted"], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("key, channels", [
    ("5.conv1.ffc.convg2g.fu.conv_layer.weight", (0, 1)),  # Re and Im of channel 0 of a Fourier unit's input
    ("5.conv2.ffc.convg2g.fu.bn.running_mean", (2, 3)),     # Re and Im of channel 1 of its output
    ("4.bn_g.running_var", (0, 1)),                         # two global channels of the last down's split BN
    ("4.bn_l.running_mean", (0, 1)),                        # two local channels of it
    ("5.conv2.bn_l.running_mean", (0, 1)),                  # two local channels in a block
])
def test_a_wrong_mapping_is_caught(key, channels):
    state = lama.read(TINY)
    swapped = state[key].clone()
    swapped[list(channels)] = state[key][list(reversed(channels))]
    state[key] = swapped
    model, ours = lama.build(state)
    load_strict(model, ours, source="planted")
    image, mask, reference = tiny_reference()
    with torch.no_grad():
        error = (model.eval()(image, mask) - reference["predicted_image"]).abs().max()
    assert error > 10 * TOLERANCE  # the reference test above would fail


def test_lamas_interleaved_real_imaginary_order():
    # A Fourier unit whose 1×1 conv only copies input channel 1 (LaMa: Im of channel 0) to output channel 0
    # (Re of channel 0): y = F⁻¹(ReLU(Im X₀)·const) — with concatenated [Re; Im] order it would be Re of channel 1.
    state = lama.read(TINY)
    model, ours = lama.build(state)
    load_strict(model, ours, source="tiny")
    unit = model.body[0].body[0].ffc.global_to_global.fourier.eval()
    with torch.no_grad():
        unit.conv.weight.zero_()
        unit.conv.weight[0, 1] = 1.0
        unit.bn.reset_running_stats()
        unit.bn.weight.fill_(1.0)
        unit.bn.bias.zero_()
        x = torch.randn(1, unit.in_channels, 6, 8)
        spectrum = torch.fft.rfft2(x, norm="ortho")
        expected = torch.fft.irfft2(torch.relu(spectrum.imag[:, :1]) / (1 + unit.bn.eps) ** 0.5 + 0j, s=(6, 8),
                                    norm="ortho")
        torch.testing.assert_close(unit(x)[:, :1], expected, atol=1e-6, rtol=0)


def test_sizes_come_from_the_shapes():
    assert lama.sizes(lama.read(TINY)) == {"ngf": 4, "n_blocks": 1, "ratio": 0.75}
    assert lama.sizes(synthetic_state("lama_keys_lama_fourier.txt"))["n_blocks"] == 9


def save_lightning(path: Path, state: dict[str, torch.Tensor], hyper_parameters: object = None) -> Path:
    torch.save({"state_dict": state, "hyper_parameters": hyper_parameters, "epoch": 1}, path)
    return path


def test_missing_file_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PCONV_PRETRAINED_DIR", str(tmp_path))
    assert available("lama") is None
    with pytest.raises(PretrainedFileError, match=r"big-lama\.zip.*data/pretrained/README\.md"):
        load_pretrained("lama")
    with pytest.raises(PretrainedFileError, match="no file at"):
        load_pretrained("lama", tmp_path / "best.ckpt")
    target = tmp_path / "big-lama" / "models" / "best.ckpt"
    target.parent.mkdir(parents=True)
    target.write_bytes(TINY.read_bytes())
    assert available("lama") == target
    assert load_pretrained("lama").ngf == 4  # found in $PCONV_PRETRAINED_DIR


def test_a_file_of_another_family_is_named(tmp_path):
    deepfill = tmp_path / "states_tf_places2.pth"
    torch.save({"G": {"coarse.conv1.conv.weight": torch.zeros(1)}}, deepfill)
    with pytest.raises(PretrainedFileError, match="not a LaMa file.*generator.model"):
        load_pretrained("lama", deepfill)
    mmagic = save_lightning(tmp_path / "pconv.pth", {"generator.encoder.enc1.conv.weight": torch.zeros(1)})
    with pytest.raises(PretrainedFileError, match="not a LaMa file"):
        load_pretrained("lama", mmagic)
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(PretrainedFileError, match="not a readable PyTorch file"):
        load_pretrained("lama", text)


def test_missing_unexpected_and_misshapen_keys_are_listed(tmp_path):
    state = {lama.PREFIX + key: value for key, value in lama.read(TINY).items()}
    del state["generator.model.5.conv2.bn_g.running_mean"]
    state["generator.model.5.conv1.ffc.convg2g.lfu.conv_layer.weight"] = torch.zeros(24, 24, 1, 1)
    state["generator.model.8.weight"] = torch.zeros(5)  # the first up-sampling BN (1 block: ups from index 7)
    with pytest.raises(PretrainedFileError) as error:
        load_pretrained("lama", save_lightning(tmp_path / "best.ckpt", state))
    message = str(error.value)
    assert "missing keys (1): body.0.body.1.bn_global.running_mean" in message
    assert "unexpected keys (1): generator.model.5.conv1.ffc.convg2g.lfu.conv_layer.weight" in message
    assert "shape mismatches (1): up.1.weight: file (5,) vs model (16,)" in message


class _RunsCodeWhenUnpickled:
    """Pickles as a call of ``exec`` — what a hostile checkpoint would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def test_no_pickled_code_runs(tmp_path):
    marker = tmp_path / "marker"
    state = {lama.PREFIX + key: value for key, value in lama.read(TINY).items()}
    path = save_lightning(tmp_path / "best.ckpt", state, hyper_parameters=_RunsCodeWhenUnpickled(marker))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)  # so the restricted unpickler is the one that reads it
    model = load_pretrained("lama", path)
    assert not marker.exists()
    assert isinstance(model, LamaGenerator)


def test_a_lightning_checkpoint_with_real_omegaconf_objects_loads_exactly():
    with_omegaconf = load_pretrained("lama", DATA / "lama_tiny_omegaconf.ckpt")
    plain = load_pretrained("lama", TINY)
    for (key, ours), theirs in zip(with_omegaconf.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(ours, theirs), key
    checkpoint = read_tensors(DATA / "lama_tiny_omegaconf.ckpt")
    hyper_parameters = checkpoint["hyper_parameters"]  # OmegaConf's classes, as inert stand-ins
    assert isinstance(hyper_parameters, StandIn) and hyper_parameters.FOREIGN == "omegaconf.dictconfig.DictConfig"
    assert hyper_parameters.state["_metadata"].FOREIGN == "omegaconf.base.ContainerMetadata"
    assert hyper_parameters.state["_metadata"].state["resolver_cache"] == {"env": {("TORCH_HOME",): "/home/user/.torch"}}
    assert checkpoint["hparams_type"].FOREIGN == "omegaconf.dictconfig.DictConfig"
    (callback,) = checkpoint["callbacks"]
    assert callback.FOREIGN == "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"


def test_the_shipped_small_lama_predicts_as_before_the_conversion():
    # lama_small.pt was converted to the LaMa-exact layout; the stored prediction was computed before, with the
    # old layout (concatenated real/imag, one BN per FFC, no up-sampling biases).
    reference = torch.load(DATA / "lama_small_reference.pt", weights_only=True)
    model = load_model(Path(__file__).resolve().parents[1] / "data" / "checkpoints" / "lama_small.safetensors")
    with torch.no_grad():
        prediction = model(reference["image"] * reference["mask"], reference["mask"])
    torch.testing.assert_close(prediction, reference["prediction"], atol=1e-5, rtol=0)
