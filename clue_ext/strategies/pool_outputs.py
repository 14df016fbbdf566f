"""One forward pass over the target pool per round, shared by every strategy that needs it."""

from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn
from torch.utils.data import Dataset

from ..adapt import embed_dataset

logger = logging.getLogger(__name__)


class PoolOutputs:
    """Lazily computed embeddings and logits of every pool item, cached.

    The first access to :attr:`embeddings` or :attr:`logits` runs the model
    once over the whole pool (eval mode, no gradients); later accesses reuse
    the result. Build a new instance whenever the model changes (each round).

    Attributes:
        forward_passes: how many times the pool was run through the model
            (0 or 1); lets callers and tests check that strategies share it.
    """

    def __init__(self, model: nn.Module, pool: Dataset, device, *, batch_size: int = 256):
        self.model = model
        self.pool = pool
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.forward_passes = 0
        self._embeddings: Optional[torch.Tensor] = None
        self._logits: Optional[torch.Tensor] = None

    def _compute(self) -> None:
        embeddings = embed_dataset(self.model, self.pool, self.device, batch_size=self.batch_size)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                logits = self.model.classifier(embeddings)
        finally:
            self.model.train(was_training)
        for name, value in (("embeddings", embeddings), ("logits", logits)):
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"the model's {name} on the target pool contain NaN or Inf; the model has diverged")
        self._embeddings, self._logits = embeddings.float(), logits.float()
        self.forward_passes += 1
        logger.debug("pool forward pass: %d items, %d-d embeddings", embeddings.shape[0], embeddings.shape[1])

    @property
    def embeddings(self) -> torch.Tensor:
        """``(N, D)`` float32 penultimate-layer embeddings, on :attr:`device`."""
        if self._embeddings is None:
            self._compute()
        return self._embeddings

    @property
    def logits(self) -> torch.Tensor:
        """``(N, C)`` float32 logits, on :attr:`device`."""
        if self._logits is None:
            self._compute()
        return self._logits

    def probs(self) -> torch.Tensor:
        """``(N, C)`` float64 softmax probabilities (float64 keeps tiny ones non-zero)."""
        return torch.softmax(self.logits.double(), dim=1)

    def log_probs(self) -> torch.Tensor:
        """``(N, C)`` float64 log-softmax."""
        return torch.log_softmax(self.logits.double(), dim=1)
