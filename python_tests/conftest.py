"""Shared test set-up: device parametrisation and small data helpers.

Any test that takes a `device` argument runs once per device; CUDA cases skip
visibly when no GPU is present.
"""

import pytest
import torch

CUDA = pytest.param(
    "cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
)
DEVICES = ["cpu", CUDA]


def pytest_generate_tests(metafunc):
    explicit = any("device" in str(mark.args[0]) for mark in metafunc.definition.iter_markers("parametrize"))
    if "device" in metafunc.fixturenames and not explicit:
        metafunc.parametrize("device", DEVICES)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module: training results depend on the thread count
    (float reductions), and on the 2 shared cores of the test machine one thread
    also avoids OpenMP contention."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The image folders of clue-label's example (label_support.example_folders), once per module."""
    from label_support import example_folders

    return example_folders(tmp_path_factory)
