"""The repository keeps its promises: CI runs the README's test command, and every lesson is linked."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_command(kind: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- {kind}-command -->\s*```bash\n(.+?)\n```", text)
    assert match, f"README.md must hold the {kind} command in a bash block after '<!-- {kind}-command -->'"
    return match.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert _readme_command("test") in ci_lines


def test_ci_installs_with_the_readme_setup_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert _readme_command("setup") in ci_lines


def test_every_notebook_is_linked_from_the_lesson_map():
    readme = (ROOT / "README.md").read_text()
    notebooks = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, "the course has no notebooks"
    missing = [name for name in notebooks if f"(notebooks/{name})" not in readme]
    assert not missing, f"README lesson map does not link {missing}"


def _map_rows(markdown: str, link_prefix: str) -> list[str]:
    """The rows of the lesson-map table (header '| # | notebook |…'), links made relative to the notebooks folder."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| # | notebook |")), None)
    assert start is not None, "no lesson-map table ('| # | notebook | …') found"
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line.replace(f"]({link_prefix}", "]("))
    return rows


def test_lesson_00_shows_the_readme_lesson_map_row_for_row():
    readme_rows = _map_rows((ROOT / "README.md").read_text(), "notebooks/")
    notebook = json.loads((ROOT / "notebooks" / "00_setup_and_tour.ipynb").read_text())
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"]
    tour_rows = _map_rows(next(cell for cell in cells if "| # | notebook |" in cell), "")
    assert tour_rows == readme_rows, "lesson 00's course map differs from the README's lesson map"


def test_the_library_does_not_import_the_course_helpers():
    package = ROOT / "pconv_lessons"
    offenders = [str(path.relative_to(ROOT)) for path in package.rglob("*.py")
                 if "course" not in path.relative_to(package).parts and path.name != "receptive.py"
                 and "pconv_lessons.course" in path.read_text(encoding="utf-8")]
    assert not offenders, f"library modules import the lesson helpers: {offenders}"


def test_the_moved_receptive_module_keeps_its_old_name_with_a_warning():
    import importlib
    import sys

    sys.modules.pop("pconv_lessons.receptive", None)
    with pytest.warns(DeprecationWarning, match="pconv_lessons.course.receptive"):
        old = importlib.import_module("pconv_lessons.receptive")
    from pconv_lessons.course import receptive

    assert old is receptive
