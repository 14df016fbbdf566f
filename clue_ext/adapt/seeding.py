"""Deterministic randomness without touching the caller's global RNG."""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch


def derive_seeds(*entropy: int, count: int) -> list[int]:
    """``count`` independent 32-bit seeds derived from the integers ``entropy``."""
    return [int(s) for s in np.random.SeedSequence(list(entropy)).generate_state(count, dtype=np.uint32)]


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (used for shuffling)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@contextlib.contextmanager
def isolated_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed the global RNG of the CPU (and ``device`` if CUDA) inside the block, then restore it.

    Dropout and module initialisation draw from the global RNG and cannot be
    given a generator; forking it makes them reproducible from ``seed`` while
    leaving the caller's random state exactly as it was.
    """
    cuda_devices = []
    if device.type == "cuda":
        cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda_devices):
        torch.default_generator.manual_seed(seed)
        for index in cuda_devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
