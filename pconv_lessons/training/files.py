"""Files that survive a crash: atomic replacement and durable appends, both on disk (``fsync``) when they return.

``atomic_write`` writes a temporary file beside the target, ``fsync``s it, renames it over the target and
``fsync``s the folder (so the rename itself is on disk); ``durable_append`` appends and ``fsync``s. A kill or a
power cut at any moment leaves the old complete file or the new one (at worst a ``.NAME.*.tmp``, which
``stale_temporary_files`` finds and the next run in that folder removes), never a file that claims more than
the disk holds. Both give new files the permissions of any new file (0666 & ~umask).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEMPORARY_SUFFIX = ".tmp"


def _new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_folder(folder: str | Path) -> None:
    """Put the folder's entries (a file just created, renamed or removed) on disk."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _write_error(path: Path, error: BaseException) -> OSError:
    free = shutil.disk_usage(path.parent).free / 2**20
    full = isinstance(error, OSError) and error.errno == errno.ENOSPC or "write" in str(error).lower()
    reason = "the disk is full or the write failed" if full else type(error).__name__
    return OSError(f"could not write {path} ({reason}; {free:.0f} MiB free there): {error}")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write(stream)`` into a temporary file beside ``path``, then rename it over ``path`` (all fsynced).

    A failed write — a full disk among others — is an ``OSError`` naming the file and the free space left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(handle, _new_file_mode())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        fsync_folder(path.parent)
    except (OSError, RuntimeError) as error:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise _write_error(path, error) from error
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


def durable_append(path: str | Path, text: str) -> None:
    """Append ``text`` to ``path`` (created if missing) and ``fsync`` it before returning."""
    path = Path(path)
    created = not path.exists()
    try:
        with open(path, "a", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        if created:
            fsync_folder(path.parent)
    except OSError as error:
        raise _write_error(path, error) from error


def stale_temporary_files(folder: str | Path) -> list[Path]:
    """Temporary files ``atomic_write`` leaves behind when killed mid-write (``.NAME.*.tmp``) in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMPORARY_SUFFIX))
