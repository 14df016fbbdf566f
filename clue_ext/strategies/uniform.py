"""``uniform``: unlabeled items drawn uniformly at random."""

from __future__ import annotations

import torch

from .base import Strategy


class Uniform(Strategy):
    """Random sampling without replacement from the unlabeled pool (needs no model output)."""

    name = "uniform"

    def _select(self, n, context):
        unlabeled = context.unlabeled_indices
        order = torch.randperm(unlabeled.numel(), generator=context.generator)[:n]
        return unlabeled[order]
