"""``benchmarks/released_models.py`` at a toy size: the reference plumbing (factory loading, interleaving, ratios,
per-side memory) measures what it says.

The toy reference is our own DeepFill v2 run twice per call, holding an extra 1 GiB while it runs: a correct
driver must report ours at about half the reference's time and the reference's peak memory ≥ 600 MiB above ours.
A driver that swapped the sides, timed one side twice, or measured both in one process would fail.

``--same-weights`` is checked with a reference that answers ``state_dict()`` under nipponjo's key names: its weights
must reach our model through the course's converter (output difference 0), and a reference whose ``run`` uses other
weights than its model holds must show a large difference.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "released_models.py"
EXTRA_BYTES = 2**30  # far above the forward's own working memory and its occasional transients (seen: ~420 MiB)


def toy_reference(size: int):
    """Our DeepFill v2 wrapped as a 'reference': two forwards and 1 GiB of touched scratch per call."""
    sys.path.insert(0, str(SCRIPT.parent))
    import released_models

    model, run = released_models.ours("deepfillv2", size)

    def slow_heavy_run(image, mask):
        scratch = torch.ones(EXTRA_BYTES // 4)  # written, so resident
        run(image, mask)
        result = run(image, mask)
        return result + 0 * scratch[0]

    return model, slow_heavy_run


class OriginalNames(nn.Module):
    """Our DeepFill v2 whose ``state_dict()`` uses the original's layer names (the converter's key table inverted)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def state_dict(self, *args, **kwargs):
        from pconv_lessons.pretrained.deepfillv2 import KEY_TABLE

        original = {module: layer for layer, module in KEY_TABLE.items()}
        renamed = {}
        for key, value in self.inner.state_dict().items():
            module, rest = re.fullmatch(r"(coarse\.\d+|refine\.\w+?\.\d+)\.(.+)", key).groups()
            renamed[f"{original[module]}.{rest}"] = value
        return renamed


def toy_original_named(size: int):
    sys.path.insert(0, str(SCRIPT.parent))
    import released_models

    model, run = released_models.ours("deepfillv2", size, fuse=False)
    return OriginalNames(model), run


def toy_other_weights(size: int):
    """A planted mistake: the model handed over is not the one ``run`` uses."""
    sys.path.insert(0, str(SCRIPT.parent))
    import released_models

    torch.manual_seed(1)
    handed_over, _ = released_models.ours("deepfillv2", size, fuse=False)
    torch.manual_seed(2)
    _, run = released_models.ours("deepfillv2", size, fuse=False)
    return OriginalNames(handed_over), run


def load_script():
    spec = importlib.util.spec_from_file_location("released_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_interleaved_timed_and_measured_separately(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import pconv_lessons from this checkout
    out = tmp_path / "result.json"
    load_script().main(["--families", "deepfillv2", "--sizes", "32", "--threads", "1", "--repeats", "3",
                        "--reference", f"deepfillv2={Path(__file__).resolve()}:toy_reference", "--json", str(out)])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())

    (timing,) = results["time"]
    assert timing["parameters"]["ours"] == timing["parameters"]["reference"] == 4052478  # cnum 48
    assert len(timing["seconds"]["ours"]) == len(timing["seconds"]["reference"]) == 3
    assert timing["median"]["ours"] / timing["median"]["reference"] < 0.8  # the reference does twice the work

    memory = {row["side"]: row for row in results["memory"]}
    assert memory["reference"]["forward_mib"] - memory["ours"]["forward_mib"] > 600
    assert memory["ours"]["peak_mib"] > 0

    ratio = timing["median"]["ours"] / timing["median"]["reference"]
    assert f"| deepfillv2 | 32² | 1 | 3 | {timing['median']['ours']:.3f} |" in printed
    time_rows = [line for line in printed.splitlines() if line.startswith("| deepfillv2 | 32² | 1 | 3 |")]
    assert len(time_rows) == 1 and time_rows[0].endswith(f"| {ratio:.2f} |")  # the memory table may share the digits
    assert sum(line.startswith("|---|") for line in printed.splitlines()) == 2  # the memory and the time table


def test_bad_reference_spec_is_named() -> None:
    with pytest.raises(SystemExit, match="MODULE:FACTORY"):
        load_script().main(["--families", "pconv", "--sizes", "32", "--reference", "pconv=no_colon_here"])


@pytest.mark.parametrize(("factory", "same"), [("toy_original_named", True), ("toy_other_weights", False)])
def test_same_weights_reach_our_model_through_the_converter(factory: str, same: bool, tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    out = tmp_path / "result.json"
    load_script().main(["--families", "deepfillv2", "--sizes", "32", "--threads", "1", "--repeats", "1",
                        "--no-memory", "--fuse", "off", "--same-weights",
                        "--reference", f"deepfillv2={Path(__file__).resolve()}:{factory}", "--json", str(out)])
    (timing,) = json.loads(out.read_text())["time"]
    difference = timing["max_abs_difference"]
    assert (difference == 0) if same else (difference > 1e-2)
    assert "max output difference |" in capsys.readouterr().out


def test_same_weights_without_a_reference_is_refused() -> None:
    with pytest.raises(SystemExit, match="--same-weights needs a --reference"):
        load_script().main(["--families", "pconv", "--sizes", "32", "--same-weights"])
