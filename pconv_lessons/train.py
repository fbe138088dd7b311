"""``pconv_lessons.train``: the trainer's public names and ``python -m pconv_lessons.train``.

The implementation lives in the package ``pconv_lessons.training`` (one module per concern); this module keeps
the names lessons and scripts import (``Trainer``, ``TrainConfig``, ``load_model``, ``load_checkpoint``,
``export_model``, ``register_model``, …) and the command line, which ``pconv-train`` also runs.
"""

from pconv_lessons.training import *  # noqa: F403 — the re-exported public API
from pconv_lessons.training import __all__  # noqa: F401
from pconv_lessons.training.cli import run

if __name__ == "__main__":
    raise SystemExit(run())
