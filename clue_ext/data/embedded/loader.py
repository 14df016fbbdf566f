"""Build (or fetch from the cache) an embedded benchmark as a ``DomainShift``."""

from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np
import torch

from ..cache import PathLike, cache_file, load_arrays, resolve_cache_dir, save_arrays
from ..normalize import channel_stats, normalize_uint8
from ..shift import DomainShift
from ..tensor_dataset import TensorImageDataset
from .recipes import RECIPES, Arrays, Recipe

logger = logging.getLogger(__name__)

# Bump whenever a recipe changes what it builds: old cache files then miss.
FORMAT_VERSION = 1
IMAGE_SIZE = 28
NUM_CLASSES = 10
PARTS = ("source", "pool", "test")


def _valid(arrays: Arrays, recipe: Recipe) -> bool:
    """Whether ``arrays`` has every part with consistent shapes, dtypes and labels."""
    try:
        for part in PARTS:
            images, labels, origin = arrays[f"{part}_x"], arrays[f"{part}_y"], arrays[f"{part}_origin"]
            n = len(labels)
            if images.dtype != np.uint8 or images.shape != (n, recipe.channels, IMAGE_SIZE, IMAGE_SIZE):
                return False
            if labels.shape != (n,) or origin.shape != (n,) or n == 0:
                return False
            if labels.min() < 0 or labels.max() >= NUM_CLASSES:
                return False
    except KeyError:
        return False
    return True


def build_arrays(name: str, seed: int, cache_dir: Optional[PathLike] = None, use_cache: bool = True) -> Arrays:
    """The uint8 arrays of embedded benchmark ``name`` for ``seed``, cached on disk.

    With ``use_cache`` the arrays are read from ``cache_dir`` when a valid entry
    exists, and written there (atomically) after a build otherwise. An entry that
    cannot be read or fails validation is rebuilt and replaced.
    """
    recipe = RECIPES[name]
    meta = {"name": name, "seed": int(seed), "format_version": FORMAT_VERSION, "fingerprint": recipe.fingerprint()}
    path = cache_file(resolve_cache_dir(cache_dir), name, seed, FORMAT_VERSION)
    if use_cache:
        arrays = load_arrays(path, meta)
        if arrays is not None:
            if _valid(arrays, recipe):
                logger.debug("cache hit %s", path)
                return arrays
            logger.warning("cache file %s has inconsistent arrays; rebuilding", path)
    started = time.perf_counter()
    arrays = recipe.build(int(seed))
    if not _valid(arrays, recipe):  # a bug in a recipe, not a user error
        raise RuntimeError(f"recipe {name!r} built inconsistent arrays")
    logger.info("built %s (seed %d) in %.1f s", name, seed, time.perf_counter() - started)
    if use_cache:
        save_arrays(path, arrays, meta)
    return arrays


def load_embedded_shift(
    name: str, seed: int = 0, cache_dir: Optional[PathLike] = None, use_cache: bool = True
) -> DomainShift:
    """Load embedded benchmark ``name`` (e.g. ``"synth->mnist"``) as a ``DomainShift``.

    Images are float32, normalised per channel with statistics shared by both
    domains (see ``normalize.channel_stats``); all datasets are in-memory
    ``TensorImageDataset`` objects.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown embedded benchmark {name!r}; valid: {sorted(RECIPES)}")
    recipe = RECIPES[name]
    arrays = build_arrays(name, seed, cache_dir=cache_dir, use_cache=use_cache)
    mean, std = channel_stats([arrays["source_x"], arrays["pool_x"]])

    def dataset(part: str, mode: str) -> TensorImageDataset:
        return TensorImageDataset(
            normalize_uint8(arrays[f"{part}_x"], mean, std),
            torch.from_numpy(arrays[f"{part}_y"].astype(np.int64)),
            torch.from_numpy(arrays[f"{part}_origin"].astype(np.int64)),
            mode=mode,
        )

    return DomainShift(
        name=name,
        source=recipe.source,
        target=recipe.target,
        source_train=dataset("source", "train"),
        target_pool=dataset("pool", "eval"),
        target_test=dataset("test", "eval"),
        num_classes=NUM_CLASSES,
        in_channels=recipe.channels,
        image_size=IMAGE_SIZE,
        class_names=tuple(str(digit) for digit in range(NUM_CLASSES)),
        embedded=True,
        normalization=(tuple(float(m) for m in mean), tuple(float(s) for s in std)),
    )
