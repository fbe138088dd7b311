"""nbval settings for the course notebooks (pytest loads this for everything below the repository root).

The test command runs nbval in lax mode: every cell must run without error, and only cells marked
``# NBVAL_CHECK_OUTPUT`` (the lessons' check cells, which print fixed sentences) have their output
compared. Even there, rich and volatile outputs are not compared: HTML, JavaScript, widget views,
images and anything on stderr (warnings, progress bars).
"""

NOT_COMPARED = (
    "text/html",
    "application/javascript",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "image/png",
    "image/svg+xml",
    "stderr",
)


def pytest_collectstart(collector):
    path = getattr(collector, "path", None)
    if path is not None and path.suffix == ".ipynb" and hasattr(collector, "skip_compare"):
        collector.skip_compare += NOT_COMPARED
