"""Index views of datasets that keep the interface every shift dataset offers."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset

from ..data import DomainShift, TensorImageDataset


class DatasetView(Dataset):
    """The items of ``dataset`` at ``indices``, in that order.

    Unlike ``torch.utils.data.Subset`` it keeps ``.targets`` and
    ``.with_mode(mode)``, so a view can stand wherever a shift's dataset can.
    """

    def __init__(self, dataset: Dataset, indices):
        self.dataset = dataset
        self.indices = torch.as_tensor(indices, dtype=torch.long).flatten()

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getitem__(self, index: int):
        return self.dataset[int(self.indices[index])]

    @property
    def targets(self) -> torch.Tensor:
        return torch.as_tensor(self.dataset.targets)[self.indices]

    def with_mode(self, mode: str) -> "DatasetView":
        """The view over ``dataset.with_mode(mode)``; itself when the dataset has no modes."""
        if not hasattr(self.dataset, "with_mode"):
            return self
        return DatasetView(self.dataset.with_mode(mode), self.indices)


def subsample(dataset: Dataset, limit, seed: int) -> Dataset:
    """A seeded random subset of ``limit`` items (the dataset itself if it has no more).

    In-memory datasets stay in-memory datasets (with ``.images``), anything
    else becomes a :class:`DatasetView`.
    """
    if limit is None or limit >= len(dataset):
        return dataset
    rng = np.random.default_rng(seed)
    indices = torch.from_numpy(np.sort(rng.choice(len(dataset), size=limit, replace=False)))
    if isinstance(dataset, TensorImageDataset):
        return TensorImageDataset(
            dataset.images[indices], dataset.targets[indices], dataset.origin[indices], mode=dataset.mode
        )
    return DatasetView(dataset, indices)


def limit_shift(shift: DomainShift, limit_source, limit_pool, limit_test, seed: int) -> DomainShift:
    """``shift`` with its three datasets subsampled (independent streams of ``seed``)."""
    if limit_source is None and limit_pool is None and limit_test is None:
        return shift
    seeds = np.random.SeedSequence([int(seed), 7]).generate_state(3)
    return dataclasses.replace(
        shift,
        source_train=subsample(shift.source_train, limit_source, int(seeds[0])),
        target_pool=subsample(shift.target_pool, limit_pool, int(seeds[1])),
        target_test=subsample(shift.target_test, limit_test, int(seeds[2])),
    )
