"""MNIST-M-style digits: MNIST blended onto patches of natural photos.

MNIST-M (Ganin & Lempitsky, 2015) takes each MNIST digit, cuts a random patch
from a colour photo and sets every pixel to ``|patch - digit|`` per channel: the
photo shows through the background and is colour-inverted under the stroke. We
do the same with the two photos shipped in scikit-learn instead of BSDS500.
Because two photos offer far fewer textures than BSDS500's 200, each patch also
gets a random size (then resampled to 28x28) and a random horizontal flip.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_SIZE = 28
PATCH_SIDE_RANGE = (28, 56)  # side of the photo region, in photo pixels, before resampling


def _patch_grids(n: int, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
    """``grid_sample`` coordinates of ``n`` random square patches, stacked along rows.

    Stacking the patches into one tall ``(1, n*28, 28, 2)`` grid lets a single
    ``grid_sample`` call cut all of them from the one photo without ever
    replicating the photo per patch.
    """
    side = rng.integers(PATCH_SIDE_RANGE[0], PATCH_SIDE_RANGE[1] + 1, size=n)
    left = rng.uniform(0, width - side)
    top = rng.uniform(0, height - side)
    flip = rng.random(n) < 0.5

    steps = (np.arange(IMAGE_SIZE) + 0.5) / IMAGE_SIZE  # pixel centres in the patch, 0..1
    xs = left[:, None] + side[:, None] * np.where(flip[:, None], 1.0 - steps, steps)
    ys = top[:, None] + side[:, None] * steps
    # photo pixel coordinates -> grid_sample's [-1, 1] (align_corners=False)
    gx = torch.from_numpy(2.0 * xs / width - 1.0).float()
    gy = torch.from_numpy(2.0 * ys / height - 1.0).float()
    grid = torch.stack(
        [gx[:, None, :].expand(n, IMAGE_SIZE, IMAGE_SIZE), gy[:, :, None].expand(n, IMAGE_SIZE, IMAGE_SIZE)], dim=-1
    )
    return grid.reshape(1, n * IMAGE_SIZE, IMAGE_SIZE, 2)


def random_photo_patches(n: int, photos: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``n`` random 28x28 RGB patches (float32 ``(n, 3, 28, 28)``, 0..255) from ``photos``."""
    which = rng.integers(len(photos), size=n)
    patches = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for index, photo in enumerate(photos):
        members = np.flatnonzero(which == index)
        if len(members) == 0:
            continue
        height, width = photo.shape[:2]
        if height < PATCH_SIDE_RANGE[1] or width < PATCH_SIDE_RANGE[1]:
            raise ValueError(f"photo {index} is {height}x{width}, smaller than a {PATCH_SIDE_RANGE[1]}-pixel patch")
        image = torch.from_numpy(np.ascontiguousarray(photo.transpose(2, 0, 1))).float()[None]
        grid = _patch_grids(len(members), height, width, rng)
        cut = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
        patches[members] = cut[0].reshape(3, len(members), IMAGE_SIZE, IMAGE_SIZE).permute(1, 0, 2, 3).numpy()
    return patches


def blend_digits_onto_photos(
    digits: np.ndarray, photos: Sequence[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """Make MNIST-M-style images.

    Args:
        digits: uint8 ``(N, 28, 28)`` white-on-black digits.
        photos: uint8 ``(H, W, 3)`` photos to cut backgrounds from.
        rng: the random generator; the same state gives the same images.

    Returns:
        uint8 ``(N, 3, 28, 28)``: ``|patch - digit|`` per channel. The digit keeps
        its grey levels rather than being binarised as in the original script, so
        its anti-aliased edges stay smooth.
    """
    digits = np.asarray(digits)
    if digits.ndim != 3 or digits.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"digits must have shape (N, 28, 28), got {digits.shape}")
    patches = random_photo_patches(len(digits), photos, rng)
    blended = np.abs(patches - digits[:, None].astype(np.float32))
    return np.rint(np.clip(blended, 0, 255)).astype(np.uint8)
