"""The run's loss log: ``OUT/losses.csv``, one row per step, appended while training; optional TensorBoard.

The CSV is the run's history (it is not stored in ``last.pt``): rows are appended at every checkpoint and when
the run ends for any reason (steps done, time budget, Ctrl-C, an exception), so a crash loses no logged step.
Columns are ``step`` and the logged terms; a row without a value for a column (the held-out metrics, logged every
``eval_every`` steps) leaves that cell empty. Floats are written with ``repr``, so reading back is exact.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

History = list[dict[str, float]]


def read_history(path: str | Path, last_step: float | None = None) -> History:
    """The rows of a loss CSV as dicts of floats (empty cells left out), up to ``last_step`` if given."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as stream:
        rows = [{name: float(value) for name, value in row.items() if value not in ("", None)}
                for row in csv.DictReader(stream)]
    return [row for row in rows if last_step is None or row["step"] <= last_step]


def write_history(path: str | Path, rows: Sequence[dict[str, float]], append: bool = False) -> None:
    """Write ``rows`` to the CSV at ``path`` (``append``: after its rows). A new column rewrites the file once."""
    path = Path(path)
    existing = read_history(path) if append else []
    header = _header(path) if append else []
    fields = header + [name for name in _columns(rows) if name not in header]
    if append and fields == header and path.is_file():
        with open(path, "a", newline="") as stream:
            csv.DictWriter(stream, fieldnames=fields).writerows(rows)
        return
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=fields)
        writer.writeheader()
        writer.writerows([*existing, *rows])


def _header(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with open(path, newline="") as stream:
        return next(csv.reader(stream), [])


def _columns(rows: Iterable[dict[str, float]]) -> list[str]:
    names: dict[str, None] = {"step": None}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


class TensorBoardLog:
    """The same scalars in ``OUT/tensorboard`` (``--tensorboard``); needs the optional ``tensorboard`` package."""

    def __init__(self, folder: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise RuntimeError(
                "--tensorboard needs the tensorboard package, which is not installed: "
                "python -m pip install tensorboard (or train without --tensorboard; losses.csv has every step)"
            ) from error
        self.writer = SummaryWriter(str(folder))

    def write(self, rows: Iterable[dict[str, float]]) -> None:
        for row in rows:
            step = int(row["step"])
            for name, value in row.items():
                if name != "step":
                    self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
