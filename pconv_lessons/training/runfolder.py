"""The run folder ``--out``, guarded so that no run silently destroys another's work.

Before the first step, ``RunFolder.open``:

- takes an exclusive lock (``OUT/.lock``, ``fcntl.flock``; the kernel drops it when the process dies), so a second
  trainer on the same folder stops at once instead of overwriting the first one's checkpoint;
- proves the folder writable (creating the lock file is the probe), instead of failing at the first checkpoint;
- refuses a fresh run where a run already is (``last.pt`` or ``losses.csv``) unless ``--resume`` or ``--overwrite``;
- removes the temporary files that a kill during a save left behind (``.last.pt.*.tmp``).

``--overwrite`` replaces the whole old run (``RUN_OUTPUTS``: checkpoint, log, curves, samples, TensorBoard), and only
after the new run's settings, data and masks were tried (``Trainer._preflight``): the old outputs are first renamed
into one hidden folder (``.previous-run.PID.tmp``; a failed rename puts the moved ones back), then that folder is
deleted, so a failure leaves the old run whole or gone, never half of it. Other files in ``OUT`` are left alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from pconv_lessons.training.checkpoints import CHECKPOINT_NAME, HISTORY_NAME
from pconv_lessons.training.files import TEMPORARY_SUFFIX, fsync_folder, stale_temporary_files

LOCK_NAME = ".lock"
RUN_OUTPUTS = (CHECKPOINT_NAME, HISTORY_NAME, "loss_curve.png", "samples", "tensorboard")


class RunFolder:
    """``OUT`` of one trainer: ``open()`` before training, ``close()`` after (or use it as a context manager)."""

    def __init__(self, path: str | Path, user: str = "trainer") -> None:
        self.path = Path(path)
        self.user = user  # who locks the folder, for the message a second one gets ("trainer", "pconv-eval run")
        self._lock: int | None = None

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def history(self) -> Path:
        return self.path / HISTORY_NAME

    def holds_a_run(self) -> bool:
        return self.checkpoint.exists() or self.history.exists()

    def check_fresh_start(self, resume: bool, overwrite: bool) -> None:
        """A fresh run (neither ``resume`` nor ``overwrite``) into a folder holding a run is a ``ValueError``."""
        if not resume and not overwrite and self.holds_a_run():
            raise ValueError(
                f"{self.path} already holds a training run ({CHECKPOINT_NAME} / {HISTORY_NAME}); continue it with "
                f"--resume, replace it with --overwrite, or choose another --out"
            )

    def open(self) -> list[Path]:
        """Lock the folder (creating it) and clean stale temporary files; returns the files removed."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise ValueError(f"--out {self.path} is not a writable folder: {error.strerror or error}") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            holder = (self.path / LOCK_NAME).read_text().strip() or "another process"
            raise ValueError(
                f"another {self.user} ({holder}) is writing to {self.path}; wait for it or use another --out"
            ) from None
        os.ftruncate(handle, 0)
        os.write(handle, f"pid {os.getpid()}\n".encode())
        self._lock = handle
        removed = stale_temporary_files(self.path)
        for path in removed:
            _remove(path)
        return removed

    def discard_previous_run(self) -> list[str]:
        """``--overwrite``: remove every output of the old run (``RUN_OUTPUTS``; the lock is held); their names.

        All are renamed into one hidden folder first (undone if a rename fails), then the folder is deleted.
        """
        present = [name for name in RUN_OUTPUTS if os.path.lexists(self.path / name)]
        if not present:
            return []
        aside = self.path / f".previous-run.{os.getpid()}{TEMPORARY_SUFFIX}"
        aside.mkdir()
        moved: list[str] = []
        try:
            for name in present:
                os.rename(self.path / name, aside / name)
                moved.append(name)
        except OSError as error:
            for name in moved:
                os.rename(aside / name, self.path / name)
            aside.rmdir()
            raise OSError(f"--overwrite could not move the old run's {name} aside ({error}); nothing was removed "
                          f"from {self.path}") from error
        fsync_folder(self.path)
        _remove(aside)
        return present

    def close(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> RunFolder:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
