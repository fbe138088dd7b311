"""``pconv-eval``: its figures against ``evaluate_by_bucket`` called directly on the same masks, resumption after a
failure and after a real SIGKILL, refused mixed settings, fixed mask folders and the broken-model sentence."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_lessons import evaluate
from pconv_lessons.baselines import biharmonic, fill_with_mean
from pconv_lessons.data import centre_square, image_files, load_image, sample_images
from pconv_lessons.masks import generate
from pconv_lessons.metrics import PAPER_METRICS, BucketEvaluation, evaluate_by_bucket
from pconv_lessons.train import load_model

SHIPPED = Path(__file__).parents[1] / "data" / "checkpoints"
SIZE = 32
CROPS = {"chelsea": (48, 40), "coffee": (40, 56), "astronaut": (36, 36)}  # other sizes: --size brings them to 32²


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, photo in sample_images(list(CROPS)).items():
        height, width = CROPS[name]
        pixels = (photo[:, 80:80 + height, 90:90 + width].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def _run(capsys, data, out, *extra):
    argv = [str(data), "--model", "pconv_small", "--model", "lama_small", "--out", str(out), "--size", str(SIZE),
            "--no-progress", *map(str, extra)]
    status = evaluate.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _direct(data, masks_by_set):
    images = torch.stack([centre_square(load_image(path), SIZE) for path in image_files(data)])
    methods = {"pconv_small": load_model(SHIPPED / "pconv_small.safetensors"),
               "lama_small": load_model(SHIPPED / "lama_small.safetensors"),
               "biharmonic": biharmonic, "mean fill": fill_with_mean}
    return {name: evaluate_by_bucket(methods, images, masks) if masks is not None
            else evaluate_by_bucket(methods, images, kind="free_form", seed=0)
            for name, masks in masks_by_set.items()}


def _assert_same(results, name, direct: BucketEvaluation):
    table, bounds, cells = direct.table(), direct.intervals(), results["sets"][name]["table"]
    assert list(cells) == list(direct.row_labels)
    for r, row in enumerate(direct.row_labels):
        for k, metric in enumerate(direct.metrics):
            for m, method in enumerate(direct.methods):
                cell = cells[row][metric.name][method]
                # float32 convolutions: other batch shapes and thread counts round differently (seen: 1e-6 relative)
                np.testing.assert_allclose([cell["mean"], cell["low"], cell["high"]],
                                           [table[r, k, m], *bounds[r, k, m]], rtol=2e-5, atol=1e-6)


def test_figures_equal_evaluate_by_bucket_on_the_same_masks(data, tmp_path, capsys):
    status, out, err = _run(capsys, data, tmp_path / "eval", "--masks", "paper", "--masks", "lama", "--batch-size", 2)
    assert status == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert list(results["sets"]) == ["paper:free_form", "lama_thin", "lama_medium", "lama_thick"]
    direct = _direct(data, {"paper:free_form": None,
                            **{preset: {(0.0, 1.0): generate(preset, 3, SIZE, seed=0)} for preset in evaluate.LAMA_SETS}})
    for name, evaluation in direct.items():
        _assert_same(results, name, evaluation)
    markdown = (tmp_path / "eval" / "results.md").read_text()
    assert markdown in out + "\n" and "| (0.5, 0.6] |" in markdown and "mean fill" in markdown
    assert "LPIPS" in err or "LPIPS" in results["settings"]["metrics"]
    assert "scored 3 images in" in err and "4 methods × 9 masks each" in err
    assert "FID" in results["skipped_metrics"]


def test_a_run_that_fails_after_one_image_resumes_to_the_same_json(data, tmp_path, capsys, monkeypatch):
    assert _run(capsys, data, tmp_path / "whole", "--batch-size", 1)[0] == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())

    real, calls = evaluate.evaluate_by_bucket, []

    def failing_after_one(*args, **kwargs):
        if calls:
            raise RuntimeError("killed")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_by_bucket", failing_after_one)
    with pytest.raises(RuntimeError, match="killed"):
        _run(capsys, data, tmp_path / "resumed", "--batch-size", 1)
    log = tmp_path / "resumed" / evaluate.LOG_NAME
    assert len(log.read_text().splitlines()) == 2  # the header and the first image
    with open(log, "a") as stream:
        stream.write('{"index": 1, "file": "coff')  # a line cut by a kill

    scored = []

    def counting(methods, images, *args, **kwargs):
        scored.append(images.shape[0])
        return real(methods, images, *args, **kwargs)

    monkeypatch.setattr(evaluate, "evaluate_by_bucket", counting)
    assert _run(capsys, data, tmp_path / "resumed", "--batch-size", 1)[0] == 0
    assert scored == [1, 1]  # the two images left, each once
    resumed = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert resumed["sets"] == whole["sets"]
    assert [json.loads(line).get("index") for line in log.read_text().splitlines()] == [None, 0, 1, 2]


SLOWED_EVAL = """
import sys, time
from pconv_lessons import evaluate
real = evaluate.append_records
def slowed(*args, **kwargs):  # widens the window between records; the kill itself is a real SIGKILL
    real(*args, **kwargs)
    time.sleep(0.4)
evaluate.append_records = slowed
sys.exit(evaluate.main(sys.argv[1:]))
"""


def test_a_run_killed_with_sigkill_resumes_to_the_same_json(data, tmp_path, capsys):
    assert _run(capsys, data, tmp_path / "whole", "--batch-size", 1)[0] == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    out = tmp_path / "killed"
    argv = [str(data), "--model", "pconv_small", "--model", "lama_small", "--out", str(out), "--size", str(SIZE),
            "--no-progress", "--batch-size", "1"]
    process = subprocess.Popen([sys.executable, "-c", SLOWED_EVAL, *argv], stderr=subprocess.PIPE)
    log = out / evaluate.LOG_NAME
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:  # the header and the first image
            break
        time.sleep(0.02)
    assert process.poll() is None, process.communicate()[1].decode()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_lines = len(log.read_text().splitlines())
    assert 2 <= killed_lines < 4 and not (out / "results.json").exists()  # killed before the last image

    status, _, err = _run(capsys, data, out, "--batch-size", 1)
    assert status == 0 and f"{killed_lines - 1} from the log" in err  # nothing scored twice
    assert json.loads((out / "results.json").read_text())["sets"] == whole["sets"]
    assert [json.loads(line).get("index") for line in log.read_text().splitlines()] == [None, 0, 1, 2]


def test_other_settings_in_the_same_folder_are_refused(data, tmp_path, capsys):
    assert _run(capsys, data, tmp_path / "eval")[0] == 0
    status, _, err = _run(capsys, data, tmp_path / "eval", "--seed", 1)
    assert status == 1 and "seed" in err and "mask_sets" in err and "--overwrite" in err
    assert _run(capsys, data, tmp_path / "eval", "--seed", 1, "--overwrite")[0] == 0


def test_without_size_images_of_other_sizes_are_named(data, tmp_path, capsys):
    status = evaluate.main([str(data), "--model", "pconv_small", "--out", str(tmp_path / "eval"), "--no-progress"])
    assert status == 1 and "--size" in capsys.readouterr().err


def test_a_folder_of_fixed_masks_is_sorted_into_buckets(data, tmp_path, capsys):
    masks = tmp_path / "masks"
    masks.mkdir()
    for index, rows in enumerate((2, 5, 8, 11, 15, 0, 32)):  # hole ratios 1/16 … 15/32 of a 32² image, none, all
        hole = np.zeros((SIZE, SIZE), np.uint8)
        hole[:rows] = 255
        Image.fromarray(hole).save(masks / f"m{index}.png")
    mask_set = evaluate.fixed_masks(masks, 3, (SIZE, SIZE))
    assert list(mask_set.masks) == [(0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5)]
    assert _run(capsys, data, tmp_path / "eval", "--masks", masks)[0] == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    direct = _direct(data, {"d": {bucket: known.float() for bucket, known in mask_set.masks.items()}})["d"]
    _assert_same(results, "masks:masks", direct)


def test_a_model_below_mean_fill_is_called_broken_there():
    scores = torch.zeros(2, 3, 1, 4, dtype=torch.float64)
    scores[0, 1] = 10.0  # "bad" PSNR 10 dB
    scores[1, 1] = 20.0  # mean fill 20 dB; L1 and SSIM tied
    evaluation = BucketEvaluation(("bad", "mean fill"), PAPER_METRICS, ((0.1, 0.2),), scores)
    assert evaluate.broken_cells(evaluation, ["bad"]) == [
        "bad is below mean fill in (0.1, 0.2] on PSNR (dB): broken there.",
        "bad is below mean fill in all on PSNR (dB): broken there."]
    scores[0, 1] = 30.0
    assert evaluate.broken_cells(evaluation, ["bad"]) == []


def test_a_second_run_on_the_same_folder_is_refused_while_the_first_holds_it(data, tmp_path, capsys):
    from pconv_lessons.training.runfolder import RunFolder

    with RunFolder(tmp_path / "eval", user="pconv-eval run"):
        status, _, err = _run(capsys, data, tmp_path / "eval")
    assert status == 1 and "another pconv-eval run" in err


def test_centre_square_resizes_the_shorter_side_then_crops_the_middle():
    image = torch.rand(3, 32, 50)
    assert torch.equal(centre_square(image, 32), image[:, :, 9:41])  # shorter side already 32: a pure crop
    tall = torch.rand(3, 90, 45)
    assert centre_square(tall, 30).shape == (3, 30, 30)
    stripes = torch.zeros(3, 64, 128)
    stripes[:, :, 48:80] = 1  # the middle quarter of the width
    square = centre_square(stripes, 32)  # → 32×64, then columns 16…48: the stripe is the middle half
    assert square[:, :, 10:22].min() > 0.99 and square[:, :, :6].max() < 0.01 and square[:, :, -6:].max() < 0.01


def test_a_folder_in_lamas_layout_is_scored_on_its_photos_not_its_mask_files(capsys, data, tmp_path):
    for photo in sorted(data.glob("*.png")):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / f"{photo.stem}_mask.png")
    status, out, _ = _run(capsys, data, tmp_path / "eval")
    assert status == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["settings"]["files"] == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert f"# pconv-eval: {data}" in out  # DATA as given, not resolved
