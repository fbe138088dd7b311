"""Lesson 12 in a real browser: runs with PCONV_BROWSER_TEST=1 (set by the README's test command) where Playwright
and a Chromium are installed, and is skipped with a reason otherwise.

It starts JupyterLab and drives Chromium for a minute or two, so a plain ``pytest tests`` leaves it out.
"""

import importlib.util
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


def _browser_available() -> bool:
    if os.environ.get("PCONV_BROWSER_TEST") != "1":
        return False
    if importlib.util.find_spec("playwright") is None:
        return False
    from draw_in_jupyterlab import find_chromium

    return find_chromium() is not None


@pytest.mark.skipif(not _browser_available(), reason="runs with PCONV_BROWSER_TEST=1 (the README's test command) where "
                    "Playwright and a Chromium are installed (see tests/browser/README.md)")
def test_a_mouse_stroke_in_jupyterlab_reaches_the_kernel_mask(tmp_path: Path):
    from draw_in_jupyterlab import draw_and_check

    outcome = draw_and_check(screenshot=tmp_path / "painter.png", timeout=400)
    assert outcome.holes_after > outcome.holes_before
    assert outcome.path_pixels > 0 and outcome.path_pixels_painted == outcome.path_pixels
    assert outcome.stray_pixels == 0
    assert outcome.result_shapes and all(shape[-2:] == outcome.image_size for shape in outcome.result_shapes.values())
    assert outcome.result_images_shown == len(outcome.result_shapes) + 1
    assert (tmp_path / "painter.png").stat().st_size > 0
