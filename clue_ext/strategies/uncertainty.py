"""Uncertainty scores computed from a model's logits (higher = more uncertain)."""

from __future__ import annotations

import torch


def entropy_scores(log_probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of each row, from log-probabilities (no epsilon needed)."""
    return -(log_probs.exp() * log_probs).sum(dim=1)


def margin_scores(probs: torch.Tensor) -> torch.Tensor:
    """Minus the gap between the two most likely classes (small gap = high score)."""
    if probs.shape[1] < 2:
        return torch.zeros(probs.shape[0], dtype=probs.dtype, device=probs.device)
    top2 = probs.topk(2, dim=1).values
    return -(top2[:, 0] - top2[:, 1])


def least_confidence_scores(probs: torch.Tensor) -> torch.Tensor:
    """One minus the probability of the predicted class."""
    return 1.0 - probs.max(dim=1).values
