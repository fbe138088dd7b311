"""``pconv-inpaint``: a folder in LaMa's layout (three small crops of the sample photos) through the shipped models and
a released-family file (LaMa's layout, tiny random weights), checked on the written PNGs."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lessons import inpaint
from pconv_lessons.data import sample_images
from pconv_lessons.masks import generate
from pconv_lessons.models.compositing import composite
from pconv_lessons.train import load_model

DATA = Path(__file__).parent / "data"
TINY_LAMA = DATA / "lama_tiny_best.ckpt"
SHIPPED = Path(__file__).parents[1] / "data" / "checkpoints"
CROPS = {"chelsea": (40, 56), "coffee": (40, 56), "astronaut": (45, 61)}  # two of one size: batched together


def _write_photo_folder(folder: Path) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    photos = {}
    for index, (name, photo) in enumerate(sample_images(list(CROPS)).items()):
        height, width = CROPS[name]
        pixels = (photo[:, 100:100 + height, 100:100 + width].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
        known = generate("free_form", 1, (height, width), seed=index)[0, 0].numpy()
        Image.fromarray(((1 - known) * 255).astype(np.uint8)).save(folder / f"{name}_mask000.png")  # white = hole
        photos[name] = pixels
    return photos


@pytest.fixture
def photos(tmp_path):
    return tmp_path / "in", _write_photo_folder(tmp_path / "in")


def _run(capsys, *argv):
    status = inpaint.main([str(arg) for arg in argv] + ["--no-progress"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _hole(mask_path: Path) -> np.ndarray:
    """Where a mask file marks holes, read here without the package: LaMa's files, non-zero = hole."""
    with Image.open(mask_path) as image:
        return np.asarray(image) > 0


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image)


@pytest.mark.parametrize("model", ["pconv_small", "gated_small", "lama_small", str(TINY_LAMA)])
def test_every_output_has_its_input_size_and_keeps_the_known_pixels(photos, tmp_path, capsys, model):
    folder, pixels = photos
    status, out, _ = _run(capsys, folder, tmp_path / "out", "--model", model, "--batch-size", "2")
    assert status == 0
    assert "3 images written (3 inpainted" in out and "0 skipped" in out and "images/s" in out
    for name, original in pixels.items():
        result = _read(tmp_path / "out" / f"{name}_mask000.png")
        hole = _hole(folder / f"{name}_mask000.png")
        assert result.shape == original.shape
        assert np.array_equal(result[~hole], original[~hole])  # bit for bit
        assert not np.array_equal(result[hole], original[hole])  # the holes were filled, not copied


def test_the_holes_hold_the_model_fill_with_the_course_mask_convention(photos, tmp_path, capsys):
    folder, pixels = photos
    assert _run(capsys, folder, tmp_path / "out", "--model", "pconv_small")[0] == 0
    model = load_model(SHIPPED / "pconv_small.safetensors")
    image = torch.from_numpy(pixels["astronaut"]).permute(2, 0, 1)[None].float() / 255
    known = torch.from_numpy(~_hole(folder / "astronaut_mask000.png")).float()[None, None]
    with torch.no_grad():
        expected = composite(model(image * known, known).clamp(0, 1), image, known)
    expected = (expected[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert np.abs(_read(tmp_path / "out" / "astronaut_mask000.png").astype(int) - expected).max() <= 1


def test_a_second_run_refuses_to_overwrite_and_overwrite_replaces(photos, tmp_path, capsys):
    folder, _ = photos
    out = tmp_path / "out"
    assert _run(capsys, folder, out, "--model", "lama_small")[0] == 0
    target = out / "coffee_mask000.png"
    target.write_bytes(b"placeholder")
    status, _, err = _run(capsys, folder, out, "--model", "lama_small")
    assert status == 1 and "exist already" in err and "--overwrite" in err
    assert target.read_bytes() == b"placeholder"
    assert _run(capsys, folder, out, "--model", "lama_small", "--overwrite")[0] == 0
    assert _read(target).shape == (*CROPS["coffee"], 3)


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(photos, capsys):
    folder, _ = photos
    assert _run(capsys, folder, folder / "out", "--model", "lama_small")[0] == 0
    status, out, _ = _run(capsys, folder, folder / "out", "--model", "lama_small", "--overwrite")
    assert status == 0 and "3 images written" in out


def test_a_bad_file_is_named_or_skipped_and_counted(photos, tmp_path, capsys):
    folder, _ = photos
    (folder / "broken.png").write_bytes(b"not a png")
    shutil.copy(folder / "coffee_mask000.png", folder / "broken_mask000.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(folder / "chelsea_mask001.png")  # another size
    status, _, err = _run(capsys, folder, tmp_path / "out", "--model", "pconv_small")
    assert status == 1 and "broken.png" in err
    status, out, err = _run(capsys, folder, tmp_path / "out2", "--model", "pconv_small", "--skip-bad")
    assert status == 0 and "3 images written" in out and "2 skipped" in out
    assert "chelsea_mask001.png" in err and "broken.png" in err
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == [
        "astronaut_mask000.png", "chelsea_mask000.png", "coffee_mask000.png"]


def test_a_mask_without_a_hole_copies_the_image_through(photos, tmp_path, capsys):
    folder, pixels = photos
    Image.fromarray(np.zeros(CROPS["coffee"], np.uint8)).save(folder / "coffee_mask000.png")
    status, out, _ = _run(capsys, folder, tmp_path / "out", "--model", "gated_small")
    assert status == 0 and "1 without a hole copied" in out
    assert np.array_equal(_read(tmp_path / "out" / "coffee_mask000.png"), pixels["coffee"])


def test_one_image_with_a_mask_file_and_a_png_output(photos, tmp_path, capsys):
    folder, pixels = photos
    mask = tmp_path / "hole.png"
    shutil.copy(folder / "chelsea_mask000.png", mask)
    assert _run(capsys, folder / "chelsea.png", tmp_path / "filled.png", "--mask", mask, "--model", "lama_small")[0] == 0
    assert _read(tmp_path / "filled.png").shape == pixels["chelsea"].shape
    assert _run(capsys, folder / "chelsea.png", tmp_path / "folder", "--mask", mask, "--model", "lama_small")[0] == 0
    assert (tmp_path / "folder" / "chelsea.png").is_file()


def test_the_released_lama_family_by_name(photos, tmp_path, capsys, monkeypatch):
    folder, _ = photos
    released = tmp_path / "pretrained"
    (released / "big-lama" / "models").mkdir(parents=True)
    shutil.copy(TINY_LAMA, released / "big-lama" / "models" / "best.ckpt")
    monkeypatch.setenv("PCONV_PRETRAINED_DIR", str(released))
    status, out, _ = _run(capsys, folder, tmp_path / "out", "--model", "lama")
    assert status == 0 and "with lama on" in out


def test_unknown_model_and_bf16_without_cuda_are_clear_errors(photos, tmp_path, capsys):
    folder, _ = photos
    status, _, err = _run(capsys, folder, tmp_path / "out", "--model", "no_such_model")
    assert status == 1 and "pconv_small" in err and "lama" in err
    status, _, err = _run(capsys, folder, tmp_path / "out", "--model", "pconv_small", "--device", "cpu",
                          "--precision", "bf16")
    assert status == 1 and "CUDA" in err


def test_max_side_runs_the_model_at_the_bounded_size_and_keeps_known_pixels():
    images = torch.rand(2, 3, 60, 90)
    masks = torch.ones(2, 1, 60, 90)
    masks[:, :, 20:30, 40:47] = 0
    seen = []

    def method(image, mask):
        seen.append((tuple(image.shape), image, mask))
        assert torch.all(image[mask.expand_as(image) < 0.5] == 0)  # holes zeroed
        return torch.full_like(image, 0.5)

    result = inpaint.fill(method, images, masks, max_side=30)
    (shape, _, small_mask), = seen
    assert shape == (2, 3, 20, 30)
    big_hole_seen_small = torch.nn.functional.interpolate(small_mask, size=(60, 90), mode="nearest")
    assert torch.all(big_hole_seen_small[masks < 0.5] == 0)  # every full-size hole pixel is a hole when small
    assert torch.equal(result[masks.expand_as(result) > 0.5], images[masks.expand_as(images) > 0.5])
    assert torch.allclose(result[masks.expand_as(result) < 0.5], torch.tensor(0.5))
    assert inpaint.bounded_size(60, 90, 100) == (60, 90) and inpaint.bounded_size(60, 90, None) == (60, 90)


def test_the_console_scripts_name_the_commands():
    import importlib

    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    for name, module in (("pconv-inpaint", "pconv_lessons.inpaint"), ("pconv-eval", "pconv_lessons.evaluate")):
        target_module, function = scripts[name].split(":")
        assert target_module == module and callable(getattr(importlib.import_module(module), function))


@pytest.mark.gpu
def test_bf16_on_cuda_keeps_the_known_pixels(photos, tmp_path, capsys):
    folder, pixels = photos
    status, out, _ = _run(capsys, folder, tmp_path / "out", "--model", "lama_small", "--device", "cuda",
                          "--precision", "bf16", "--batch-size", "2")
    assert status == 0 and "(bf16)" in out
    for name, original in pixels.items():
        hole = _hole(folder / f"{name}_mask000.png")
        assert np.array_equal(_read(tmp_path / "out" / f"{name}_mask000.png")[~hole], original[~hole])
