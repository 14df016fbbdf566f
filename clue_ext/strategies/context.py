"""What a strategy may look at when it picks instances to label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from .pool_outputs import PoolOutputs


@dataclass
class QueryContext:
    """Everything one round's query can use.

    Build it with :meth:`create`, once per round: it holds the model's pool
    outputs for this round, computed at most once whichever strategies read them.

    Attributes:
        model: the current model (``features``, ``classifier``, ``embedding_dim``).
        pool: the unlabeled target pool (eval mode: no augmentation).
        labeled: ``(N,)`` bool CPU mask of pool items already labeled.
        device: where the model runs.
        generator: CPU ``torch.Generator``, the strategy's only source of randomness.
        outputs: the shared, cached pool embeddings and logits.
        da_method: the learning strategy, when one is in use (AADA reads DANN's
            domain discriminator from it).
        source_train: labeled source data (AADA trains a discriminator on it when
            the DA method has none).
        batch_size: batch size of any extra forward pass a strategy makes.
        progress: whether strategies may show progress bars.
    """

    model: nn.Module
    pool: Dataset
    labeled: torch.Tensor
    device: torch.device
    generator: torch.Generator
    outputs: PoolOutputs
    da_method: Optional[object] = None
    source_train: Optional[Dataset] = None
    batch_size: int = 256
    progress: bool = False
    _unlabeled: Optional[torch.Tensor] = field(default=None, init=False, repr=False)

    @classmethod
    def create(
        cls,
        model: nn.Module,
        pool: Dataset,
        labeled,
        *,
        device="cpu",
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        da_method=None,
        source_train: Optional[Dataset] = None,
        batch_size: int = 256,
        progress: bool = False,
    ) -> "QueryContext":
        """Validate the pieces and build a context.

        Args:
            labeled: ``(N,)`` bool mask, or a sequence/tensor of labeled pool indices.
            seed: seeds a fresh generator (ignored when ``generator`` is given;
                with neither, the generator is seeded from torch's global RNG).
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not hasattr(pool, "__len__") or not hasattr(pool, "__getitem__"):
            raise TypeError(f"pool must be a map-style Dataset, got {type(pool).__name__}")
        n = len(pool)
        mask = labeled_mask(labeled, n)
        if generator is None:
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())
            generator = torch.Generator().manual_seed(int(seed))
        elif not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        device = torch.device(device)
        return cls(
            model=model,
            pool=pool,
            labeled=mask,
            device=device,
            generator=generator,
            outputs=PoolOutputs(model, pool, device, batch_size=batch_size),
            da_method=da_method,
            source_train=source_train,
            batch_size=batch_size,
            progress=progress,
        )

    @property
    def pool_size(self) -> int:
        return int(self.labeled.shape[0])

    @property
    def unlabeled_indices(self) -> torch.Tensor:
        """Sorted int64 CPU indices of the pool items not labeled yet."""
        if self._unlabeled is None:
            self._unlabeled = (~self.labeled).nonzero().flatten()
        return self._unlabeled

    def random_seed(self) -> int:
        """A seed drawn from :attr:`generator`, for APIs that take an int seed."""
        return int(torch.randint(0, 2**62, (1,), generator=self.generator).item())


def labeled_mask(labeled, n: int) -> torch.Tensor:
    """``(n,)`` bool CPU mask from a mask or from a collection of indices."""
    if labeled is None:
        return torch.zeros(n, dtype=torch.bool)
    tensor = labeled if isinstance(labeled, torch.Tensor) else torch.as_tensor(list(labeled), dtype=torch.long)
    tensor = tensor.cpu()
    if tensor.dtype == torch.bool:
        if tensor.shape != (n,):
            raise ValueError(f"labeled as a mask must have shape ({n},) (one entry per pool item), got {tuple(tensor.shape)}")
        return tensor.clone()
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dim() != 1:
        raise ValueError(f"labeled must be a bool mask or a 1-D collection of integer indices, got {tensor.dtype} {tuple(tensor.shape)}")
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= n):
        raise ValueError(f"labeled indices must lie in [0, {n}), got min {int(tensor.min())} max {int(tensor.max())}")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[tensor.long()] = True
    return mask
