"""The interface shared by the torchvision-based networks: a backbone, then a linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from .validation import check_input_batch


class BackboneClassifier(nn.Module):
    """``features`` = ``backbone(x)`` (its classification layer removed), ``classifier`` = a fresh Linear.

    Subclasses set ``backbone``, ``classifier``, ``in_channels`` and ``embedding_dim``.
    """

    backbone: nn.Module
    classifier: nn.Module
    in_channels: int
    embedding_dim: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What fed the network's classification layer, shape ``(N, embedding_dim)``."""
        check_input_batch(x, self.in_channels)
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits, embedding)`` of shapes ``(N, num_classes)`` and ``(N, embedding_dim)``."""
        embedding = self.features(x)
        return self.classifier(embedding), embedding
