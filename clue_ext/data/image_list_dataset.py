"""Dataset over a list of image files, decoded lazily with a per-mode transform."""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from .tensor_dataset import check_mode


def load_rgb(path: str) -> Image.Image:
    """Open an image file as RGB (grey and palette JPEGs/PNGs exist in DomainNet)."""
    with open(path, "rb") as handle:
        image = Image.open(handle)
        return image.convert("RGB")


class ImageListDataset(Dataset):
    """Images read from disk on access, with a train and an eval transform.

    The target pool of an Active DA run is used two ways: unaugmented when the
    strategy scores and embeds it, and augmented once its labels are revealed and
    the model trains on it. ``with_mode`` gives the other view cheaply (it shares
    the file list), so one dataset object serves both.

    Attributes:
        paths: image file paths, in dataset order.
        targets: int64 tensor ``(N,)`` of labels, same order as ``paths``.
        classes: class names indexed by label.
        mode: ``"train"`` (``train_transform``) or ``"eval"`` (``eval_transform``).
    """

    def __init__(
        self,
        paths: Sequence[str],
        targets: Sequence[int],
        classes: Sequence[str],
        train_transform: Callable,
        eval_transform: Callable,
        mode: str = "eval",
    ) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"got {len(paths)} paths but {len(targets)} labels")
        self.paths = list(paths)
        self.targets = torch.as_tensor(list(targets), dtype=torch.long)
        self.classes = list(classes)
        self.train_transform = train_transform
        self.eval_transform = eval_transform
        self.mode = check_mode(mode)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        transform = self.train_transform if self.mode == "train" else self.eval_transform
        return transform(load_rgb(self.paths[index])), int(self.targets[index])

    def with_mode(self, mode: str) -> "ImageListDataset":
        """Return a view of this dataset in ``mode`` (shares paths and labels)."""
        check_mode(mode)
        if mode == self.mode:
            return self
        view = copy.copy(self)
        view.mode = mode
        return view

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, classes={len(self.classes)}, mode={self.mode!r})"
