"""``benchmarks/gpu_oneshot.py --smoke``: the one-shot GPU script runs end to end on the CPU (tiny sizes).

It covers every step but the lessons (skipped in smoke mode, as the report says): the ``gpu`` tests of
``tests/test_train.py`` (skipped without CUDA), the four benchmarks at toy sizes, three 3-step trainings with
exports, and the evaluation against biharmonic. About 1.5 minutes on a busy 2-core machine.
"""

import subprocess
import sys
from pathlib import Path

import torch

from pconv_lessons.train import load_model

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_mode_runs_every_step_and_writes_the_report_and_checkpoints(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/gpu_oneshot.py", "--smoke", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    for title in ("gpu tests", "benchmark partial_conv.py", "benchmark train_step.py", "benchmark masks.py",
                  "benchmark gated_conv.py", "train pconv", "train gated", "train lama"):
        assert f"| {title} | 0 |" in report, title
    assert "## Evaluation against biharmonic" in report and "| all |" in report
    assert "Skipped in smoke mode" in report
    for model in ("pconv", "gated", "lama"):
        network = load_model(tmp_path / "checkpoints" / f"{model}_oneshot.safetensors")
        image, mask = torch.rand(1, 3, 32, 32), torch.ones(1, 1, 32, 32)
        with torch.no_grad():
            assert network(image * mask, mask).shape == image.shape
