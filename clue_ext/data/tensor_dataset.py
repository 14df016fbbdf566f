"""In-memory image dataset: every image already preprocessed into one tensor."""

from __future__ import annotations

from typing import Optional

import torch
from torch.utils.data import Dataset

# Modes a dataset can be viewed in. "train" may add augmentation, "eval" never does.
DATASET_MODES = ("train", "eval")


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known dataset mode, else raise ``ValueError``."""
    if mode not in DATASET_MODES:
        raise ValueError(f"mode must be one of {DATASET_MODES}, got {mode!r}")
    return mode


class TensorImageDataset(Dataset):
    """Images and labels held as whole tensors.

    Items are ``(image, label)`` with ``image`` a float tensor of shape ``(C, H, W)``
    and ``label`` a Python int, so a plain ``DataLoader`` works. Because the whole
    set is one tensor, the runner can also skip the loader and work on
    ``dataset.images`` directly (full-batch feature extraction, indexing a pool).

    Attributes:
        images: float32 tensor ``(N, C, H, W)``, already normalised.
        targets: int64 tensor ``(N,)``, labels in the same order as ``images``.
        origin: int64 tensor ``(N,)``: for each image, the row of the raw material it
            was made from (e.g. the index into the shipped MNIST digits), or -1 when
            the image is synthetic. It lets tests and users audit which real
            samples ended up in which split.
        mode: ``"train"`` or ``"eval"``. There is no augmentation here, so both
            modes give the same items; the attribute exists so every dataset of a
            shift answers the same interface.
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        origin: Optional[torch.Tensor] = None,
        mode: str = "eval",
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be 4-D (N, C, H, W), got shape {tuple(images.shape)}")
        if targets.dim() != 1 or targets.shape[0] != images.shape[0]:
            raise ValueError(
                f"targets must be 1-D with one label per image ({images.shape[0]}), "
                f"got shape {tuple(targets.shape)}"
            )
        if origin is None:
            origin = torch.full((images.shape[0],), -1, dtype=torch.long)
        if origin.shape != targets.shape:
            raise ValueError(f"origin must have shape {tuple(targets.shape)}, got {tuple(origin.shape)}")
        self.images = images.float()
        self.targets = targets.long()
        self.origin = origin.long()
        self.mode = check_mode(mode)

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index: int):
        return self.images[index], int(self.targets[index])

    def with_mode(self, mode: str) -> "TensorImageDataset":
        """Return a view of this dataset in ``mode`` (shares the tensors)."""
        check_mode(mode)
        if mode == self.mode:
            return self
        return TensorImageDataset(self.images, self.targets, self.origin, mode=mode)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"{type(self).__name__}(n={n}, shape=({c}, {h}, {w}), mode={self.mode!r})"
