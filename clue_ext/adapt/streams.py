"""Endless, seeded mini-batch streams over map-style datasets.

Each stream walks through back-to-back random permutations of its dataset.
It cuts them in one of two ways:

* ``ragged=False``: batches of exactly ``batch_size`` items that run across
  permutation boundaries. A dataset smaller than ``batch_size`` (e.g. 10
  target labels with batch 128) is cycled, each batch holding every item about
  ``batch_size / len`` times;
* ``ragged=True``: each permutation is one pass, cut into
  ``ceil(len / batch_size)`` batches whose last one holds the remainder, as a
  shuffling ``DataLoader`` with ``drop_last=False`` yields them. The stream that
  bounds an epoch uses this, so an epoch is exactly one pass over it (see
  ``DAHyperParams.epoch_length``).

Either way a stream never runs out, so streams of different lengths can be
zipped without one exhausting.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset


class EndlessBatchIndices:
    """Iterable of index lists drawn from consecutive permutations of ``range(n)``."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, *, ragged: bool = False):
        self.n = n
        self.batch_size = batch_size
        self.generator = generator
        self.ragged = ragged

    def __iter__(self) -> Iterator[list[int]]:
        if self.ragged:
            while True:
                yield from (part.tolist() for part in torch.randperm(self.n, generator=self.generator).split(self.batch_size))
        pending = torch.empty(0, dtype=torch.long)
        while True:
            while pending.numel() < self.batch_size:
                pending = torch.cat([pending, torch.randperm(self.n, generator=self.generator)])
            batch, pending = pending[: self.batch_size], pending[self.batch_size :]
            yield batch.tolist()


class ImagesOnly(Dataset):
    """View of an ``(image, label)`` dataset that yields the image alone.

    Wrapping the unlabeled target pool in this view guarantees that its labels
    can never reach a training loss.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        return item[0] if isinstance(item, (tuple, list)) else item


def endless_batches(
    dataset: Dataset,
    batch_size: int,
    generator: torch.Generator,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
    ragged: bool = False,
) -> Iterator:
    """Iterator yielding collated batches of ``dataset`` forever (see module docstring)."""
    if len(dataset) == 0:
        raise ValueError("cannot stream an empty dataset")
    worker_seed = torch.Generator().manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
    loader = DataLoader(
        dataset,
        batch_sampler=EndlessBatchIndices(len(dataset), batch_size, generator, ragged=ragged),
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=worker_seed,
    )
    return iter(loader)


def batches_per_pass(length: int, batch_size: int) -> int:
    """Batches in one pass over ``length`` items, the last one ragged."""
    return math.ceil(length / batch_size)
