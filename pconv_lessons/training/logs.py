"""The run's loss log: ``OUT/losses.csv``, one row per logged step, appended while training; optional TensorBoard.

Rows are appended (and ``fsync``ed) at every checkpoint, before ``last.pt`` is written, and when the run ends for any
reason (steps done, time budget, Ctrl-C, an exception), so a crash loses no logged step. ``last.pt`` holds its own
copy of the history as a table (``history_table``: float64 values, a flag per cell, ~8 bytes per number), and
``--resume`` rewrites the CSV from it: whatever a crash or a careless edit did to the file (cut, emptied, a row
half written), after resume the log holds exactly the checkpoint's steps, once each, and a printed line says what
was replaced (``resync_history``).

Columns are ``step`` and the logged terms; a row without a value for a column (the held-out metrics, logged every
``eval_every`` steps) leaves that cell empty. Floats are written with ``repr``, so reading back is exact. Reading
(``read_history``) drops a last line without its line end (a write cut short) and names the file and line of
anything else it cannot read.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pconv_lessons.training.files import atomic_write, durable_append

History = list[dict[str, float]]


# ------------------------------------------------------------------------------------------------ the CSV


def parse_history(text: str, source: str) -> tuple[History, str]:
    """The rows of a loss CSV's ``text``, and a note of what was dropped ("" if nothing).

    A last line without its line end is an append cut short: dropped (the note says so). A row with more or
    fewer cells than the header, or a cell that is not a number, is a ``ValueError`` naming ``source`` and line.
    """
    lines = text.splitlines(keepends=True)
    note = ""
    if lines and not lines[-1].endswith(("\n", "\r")):
        note = f"ended in an unfinished line {lines[-1]!r} (a write cut short)"
        lines = lines[:-1]
    table = list(csv.reader(lines))
    if not table:
        return [], note
    header, rows = table[0], []
    if not header or header[0] != "step":
        raise ValueError(f"{source} is not a loss log: its first line should be a header starting with 'step', "
                         f"got {header!r}")
    for number, cells in enumerate(table[1:], start=2):
        if len(cells) != len(header):
            raise ValueError(f"{source}, line {number}: {len(cells)} cells for the {len(header)} columns "
                             f"{header}; the file is damaged")
        row = {}
        for name, cell in zip(header, cells):
            if cell == "":
                continue
            try:
                row[name] = float(cell)
            except ValueError:
                raise ValueError(f"{source}, line {number}: column {name!r} holds {cell!r}, not a number; "
                                 f"the file is damaged") from None
        if "step" not in row:
            raise ValueError(f"{source}, line {number}: the row has no step; the file is damaged")
        rows.append(row)
    return rows, note


def read_history(path: str | Path, last_step: float | None = None) -> History:
    """The rows of a loss CSV as dicts of floats (empty cells left out), up to ``last_step`` if given."""
    path = Path(path)
    if not path.is_file():
        return []
    rows, _ = parse_history(path.read_text(), str(path))
    return [row for row in rows if last_step is None or row["step"] <= last_step]


def history_csv(rows: Sequence[Mapping[str, float]], fields: Sequence[str], header: bool = True) -> str:
    """``rows`` as CSV text with columns ``fields`` (and the header line unless ``header=False``)."""
    stream = io.StringIO(newline="")
    writer = csv.DictWriter(stream, fieldnames=list(fields))
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


def write_history(path: str | Path, rows: Sequence[dict[str, float]], append: bool = False) -> None:
    """Write ``rows`` to the CSV at ``path`` (``append``: after its rows), on disk when it returns.

    An append with the file's columns adds lines (``durable_append``); a new column, or no ``append``, rewrites the
    whole file atomically (``atomic_write``).
    """
    path = Path(path)
    existing = read_history(path) if append else []
    header = _header(path) if append else []
    fields = header + [name for name in _columns(rows) if name not in header]
    if append and header and fields == header:
        durable_append(path, history_csv(rows, fields, header=False))
        return
    text = history_csv([*existing, *rows], fields)
    atomic_write(path, lambda stream: stream.write(text.encode()))


def resync_history(path: str | Path, rows: Sequence[dict[str, float]]) -> str | None:
    """Make the CSV at ``path`` hold exactly ``rows`` (a checkpoint's history); a one-line note if it did not.

    Returns None when the file already agreed (nothing is written), else what the file held instead.
    """
    path = Path(path)
    existed = path.is_file()
    try:
        found, note = parse_history(path.read_text(), str(path)) if existed else ([], "")
    except ValueError as error:
        found, note = None, f"was unreadable ({error})"
    if found is not None and not note and found == list(rows):
        return None
    write_history(path, rows)
    held = note or (f"held {_span(found)}" if existed else "was missing")
    return f"{path} {held}; rewritten from the checkpoint's history: {_span(rows)}."


def _span(rows: Sequence[Mapping[str, float]] | None) -> str:
    if not rows:
        return "no rows"
    steps = [int(row["step"]) for row in rows]
    return f"{len(steps)} row(s), steps {steps[0]}–{steps[-1]}"


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


# --------------------------------------------------------------------------------- the copy in last.pt


def history_table(rows: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """``rows`` as ``{"columns": [...], "values": float64 (rows, columns), "present": bool (rows, columns)}``."""
    columns = _columns(rows)
    values = torch.tensor([[float(row.get(name, math.nan)) for name in columns] for row in rows],
                          dtype=torch.float64).reshape(len(rows), len(columns))
    present = torch.tensor([[name in row for name in columns] for row in rows],
                           dtype=torch.bool).reshape(len(rows), len(columns))
    return {"columns": columns, "values": values, "present": present}


def history_from_table(table: Any, source: str) -> History:
    """The rows of a ``history_table``; a ``ValueError`` naming ``source`` if it is not one."""
    problem = _table_problem(table)
    if problem:
        raise ValueError(f"{source}: field 'history' is damaged ({problem})")
    columns, values, present = table["columns"], table["values"].tolist(), table["present"].tolist()
    return [{name: value for name, value, here in zip(columns, row, flags) if here}
            for row, flags in zip(values, present)]


def _table_problem(table: Any) -> str:
    if not isinstance(table, dict) or set(table) != {"columns", "values", "present"}:
        return "expected a dict with columns, values and present"
    columns, values, present = table["columns"], table["values"], table["present"]
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns) or columns[:1] != ["step"]:
        return f"columns must be a list of names starting with 'step', got {columns!r:.80}"
    shape = (values.shape[0] if isinstance(values, torch.Tensor) and values.dim() == 2 else -1, len(columns))
    if not isinstance(values, torch.Tensor) or values.dtype != torch.float64 or tuple(values.shape) != shape:
        return f"values must be a float64 tensor of (rows, {len(columns)}), got {_describe(values)}"
    if not isinstance(present, torch.Tensor) or present.dtype != torch.bool or present.shape != values.shape:
        return f"present must be a bool tensor shaped like values {tuple(values.shape)}, got {_describe(present)}"
    if not bool(present[:, 0].all()):
        return "a row has no step"
    return ""


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of {tuple(value.shape)}"
    return type(value).__name__


# ------------------------------------------------------------------------------------------ TensorBoard


def tensorboard_writer_class() -> type:
    """``SummaryWriter``, or a ``RuntimeError`` saying how to install it (checked before a run touches its folder)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise RuntimeError(
            "--tensorboard needs the tensorboard package, which is not installed: "
            "python -m pip install tensorboard (or train without --tensorboard; losses.csv has every step)"
        ) from error
    return SummaryWriter


class TensorBoardLog:
    """The same scalars in ``OUT/tensorboard`` (``--tensorboard``); needs the optional ``tensorboard`` package."""

    def __init__(self, folder: str | Path) -> None:
        self.writer = tensorboard_writer_class()(str(folder))

    def write(self, rows: Iterable[dict[str, float]]) -> None:
        for row in rows:
            step = int(row["step"])
            for name, value in row.items():
                if name != "step":
                    self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
