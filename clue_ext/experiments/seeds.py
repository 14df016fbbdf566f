"""Every random stream of an experiment, derived from the config seed and a position.

Deriving a fresh seed for each (run, DA method, strategy, round) — rather than
carrying one RNG through the loop — makes each round's randomness a function
of where it is, so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import zlib

from ..adapt.seeding import derive_seeds

_SOURCE_TAG = 1
_RUN_TAG = 2
_ROUND_TAG = 3
_SOURCE_SPLIT_TAG = 4


def tag(name: str) -> int:
    """A stable integer for a name (Python's ``hash`` of a str changes between processes)."""
    return zlib.crc32(name.encode())


def source_seed(seed: int) -> int:
    """Seed of the source model's initialisation and training."""
    return derive_seeds(seed, _SOURCE_TAG, count=1)[0]


def source_split_seed(data_seed: int) -> int:
    """Seed of the source train / validation split (data, so it follows ``data_seed``)."""
    return derive_seeds(data_seed, _SOURCE_SPLIT_TAG, count=1)[0]


def run_seed(seed: int, run: int, da_method: str) -> int:
    """Seed of a run's DA method (shared by all strategies in the run: paired comparisons)."""
    return derive_seeds(seed, _RUN_TAG, run, tag(da_method), count=1)[0]


def round_seeds(seed: int, run: int, da_method: str, strategy: str, round_index: int) -> tuple[int, int]:
    """``(global_rng_seed, strategy_seed)`` of one acquisition round."""
    first, second = derive_seeds(seed, _ROUND_TAG, run, tag(da_method), tag(strategy), round_index, count=2)
    return first, second
