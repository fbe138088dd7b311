"""Shared test set-up: a headless matplotlib backend, a fixed seed per test, and GPU tests skipped without CUDA."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
    yield
