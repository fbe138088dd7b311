"""lesson set-up, sample data, image loading and plotting helpers."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from pconv_lessons.data import SAMPLE_NAMES, load_image, sample_images, to_tensor
from pconv_lessons.course.lesson import fast_mode, seed_everything, start_lesson
from pconv_lessons.viz import overlay_holes, show_images, show_values, to_numpy_image



@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """start_lesson sets torch to one thread in fast mode; the other tests keep theirs."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

@pytest.mark.parametrize("value, expected", [("1", True), ("yes", True), ("0", False), ("off", False)])
def test_fast_mode_follows_the_environment_variable(monkeypatch, value, expected):
    monkeypatch.setenv("PCONV_FAST", value)
    assert fast_mode() is expected


def test_fast_mode_defaults_to_no_gpu(monkeypatch):
    monkeypatch.delenv("PCONV_FAST", raising=False)
    assert fast_mode() is (not torch.cuda.is_available())


def test_fast_mode_rejects_unclear_values(monkeypatch):
    monkeypatch.setenv("PCONV_FAST", "maybe")
    with pytest.raises(ValueError, match="PCONV_FAST must be one of"):
        fast_mode()


def test_start_lesson_seeds_and_reports(capsys, monkeypatch):
    monkeypatch.setenv("PCONV_FAST", "1")
    lesson = start_lesson(seed=3)
    first = torch.rand(3), np.random.rand(3)
    start_lesson(seed=3)
    second = torch.rand(3), np.random.rand(3)
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert lesson.fast and lesson.pick(1, 2) == 1 and lesson.seed == 3
    assert "fast mode" in capsys.readouterr().out


def test_short_warnings_hide_file_paths(monkeypatch):
    import warnings

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)
    start_lesson()
    text = warnings.formatwarning("careful", UserWarning, "/some/where/file.py", 12)
    assert text == "UserWarning: careful\n"


def test_sample_images_are_rgb_floats_in_unit_range():
    photos = sample_images()
    assert tuple(photos) == SAMPLE_NAMES and len(photos) >= 6
    for photo in photos.values():
        assert photo.dtype == torch.float32 and photo.dim() == 3 and photo.shape[0] == 3
        assert 0.0 <= photo.min() and photo.max() <= 1.0 and photo.std() > 0.05


def test_unknown_sample_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sample image"):
        sample_images(["astronaut", "mona_lisa"])


def test_load_image_round_trips_png(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "x.png")
    assert torch.equal(load_image(tmp_path / "x.png"), to_tensor(array))


def test_load_image_converts_grey_to_rgb(tmp_path):
    Image.fromarray(np.full((4, 5), 128, dtype=np.uint8)).save(tmp_path / "grey.png")
    image = load_image(tmp_path / "grey.png")
    assert image.shape == (3, 4, 5) and torch.allclose(image, torch.full_like(image, 128 / 255))


def test_load_image_names_a_corrupt_file(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_image(broken)


def test_load_image_names_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not found.*nothing.png"):
        load_image(tmp_path / "nothing.png")


def test_to_tensor_rejects_grey_arrays():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        to_tensor(np.zeros((4, 4), dtype=np.uint8))


def test_overlay_tints_holes_only():
    image = torch.rand(3, 6, 6)
    mask = torch.ones(1, 1, 6, 6)
    mask[..., 2:4, 2:4] = 0
    tinted = overlay_holes(image, mask, colour=(1.0, 0.0, 1.0), alpha=1.0)
    assert torch.equal(tinted[:, mask[0, 0] == 1], image[:, mask[0, 0] == 1])
    assert torch.equal(tinted[:, 2, 2], torch.tensor([1.0, 0.0, 1.0]))


def test_to_numpy_image_layouts():
    assert to_numpy_image(torch.rand(1, 3, 5, 4)).shape == (5, 4, 3)
    assert to_numpy_image(torch.rand(1, 1, 5, 4)).shape == (5, 4)
    assert to_numpy_image(torch.full((3, 2, 2), 2.0)).max() == 1.0
    with pytest.raises(ValueError, match="one image or mask"):
        to_numpy_image(torch.rand(2, 3, 5, 4))


def test_show_images_lays_out_a_grid():
    figure = show_images([torch.rand(3, 8, 8)] * 5, titles=list("abcde"), ncols=3)
    assert isinstance(figure, Figure) and len(figure.axes) == 6
    assert [axis.get_title() for axis in figure.axes[:5]] == list("abcde")
    with pytest.raises(ValueError, match="2 titles"):
        show_images([torch.rand(3, 8, 8)] * 3, titles=["a", "b"])


def test_show_values_writes_every_value():
    figure = show_values(torch.arange(6.0).view(2, 3), fmt="{:.0f}")
    assert sorted(text.get_text() for text in figure.axes[0].texts) == ["0", "1", "2", "3", "4", "5"]


def test_seed_everything_repeats_python_random():
    import random

    seed_everything(5)
    first = random.random()
    seed_everything(5)
    assert random.random() == first


@pytest.mark.parametrize("fast, expected_threads", [("1", 1), ("0", None)])
def test_fast_mode_on_a_cpu_uses_one_torch_thread(monkeypatch, fast, expected_threads):
    monkeypatch.setenv("PCONV_FAST", fast)
    torch.set_num_threads(2)
    start_lesson(seed=0)
    assert torch.get_num_threads() == (expected_threads or 2)
