"""Example folders from the embedded digits, to try the loop (and test it) without data of your own.

``FOLDER/source/<digit>/*.png``: printed digits rendered from fonts, labelled
by their class folder; ``FOLDER/target/*.png``: real handwritten MNIST digits
under shuffled names, no labels; ``FOLDER/test/<digit>/*.png``: other MNIST
digits, labelled, for ``--test-dir``; ``FOLDER/answers.csv``: the true class
of every target image, standing in for the person who labels them.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from ..data import load_shift


def write_example(folder: Path, *, source_per_class: int = 200, target_images: int = 300, test_per_class: int = 20,
                  seed: int = 0, cache_dir: Optional[Path] = None) -> dict[str, int]:
    """Write the folders (see the module docstring); the number of images in each."""
    for name, value in (("source_per_class", source_per_class), ("target_images", target_images),
                        ("test_per_class", test_per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"FOLDER {str(folder)!r} exists and is not empty; write the example into a new folder")
    # Written aside and moved into place whole: a run cut short leaves no half example, and a rerun starts over.
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    counts = _write(staging, source_per_class, target_images, test_per_class, seed, cache_dir)
    if folder.exists():
        folder.rmdir()
    os.replace(staging, folder)
    return counts


def _write(folder: Path, source_per_class: int, target_images: int, test_per_class: int, seed: int,
           cache_dir: Optional[Path]) -> dict[str, int]:
    shift = load_shift("synth", "mnist", cache_dir=cache_dir, seed=0)
    rng = np.random.default_rng(seed)
    mean, std = shift.normalization
    names = [str(c) for c in shift.class_names]
    counts = {"source": 0, "target": 0, "test": 0}

    def pixels(dataset, index: int) -> np.ndarray:
        image = dataset.images[index] * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
        array = (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        return array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)

    for part, dataset, per_class in (("source", shift.source_train, source_per_class),
                                     ("test", shift.target_test, test_per_class)):
        targets = dataset.targets.numpy()
        for label, name in enumerate(names):
            chosen = rng.permutation(np.flatnonzero(targets == label))[:per_class]
            (folder / part / name).mkdir(parents=True, exist_ok=True)
            for i in chosen:
                Image.fromarray(pixels(dataset, int(i))).save(folder / part / name / f"{part}-{int(i):05d}.png")
                counts[part] += 1
    pool = shift.target_pool
    chosen = rng.permutation(len(pool))[:target_images]
    (folder / "target").mkdir(parents=True)
    with open(folder / "answers.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label"])
        for number, i in enumerate(chosen):
            name = f"img-{number:05d}.png"
            Image.fromarray(pixels(pool, int(i))).save(folder / "target" / name)
            writer.writerow([name, names[int(pool.targets[int(i)])]])
            counts["target"] += 1
    return counts
