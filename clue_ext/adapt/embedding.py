"""Embedding a whole dataset with a frozen model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .streams import ImagesOnly


@torch.no_grad()
def embed_dataset(
    model: nn.Module, dataset: Dataset, device, *, batch_size: int = 256, num_workers: int = 0
) -> torch.Tensor:
    """``model.features`` of every item of ``dataset`` in order, shape ``(N, embedding_dim)``.

    The model runs in eval mode (no dropout, BatchNorm running statistics);
    its previous mode is restored afterwards. Labels are ignored.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        loader = DataLoader(ImagesOnly(dataset), batch_size=batch_size, shuffle=False, num_workers=num_workers)
        chunks = [model.features(images.to(device)) for images in loader]
    finally:
        model.train(was_training)
    if not chunks:
        return torch.empty(0, model.embedding_dim, device=device)
    return torch.cat(chunks)
