"""``python -m pconv_lessons.training``: the same command line as ``python -m pconv_lessons.train``."""

from pconv_lessons.training.cli import run

if __name__ == "__main__":
    raise SystemExit(run())
