"""Loss terms used by the DA methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-row Shannon entropy (nats) of ``softmax(logits)``, shape ``(N,)``.

    Computed from log-softmax, so no epsilon is needed for confident rows.
    """
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def gaussian_mmd(x: torch.Tensor, y: torch.Tensor, scales=(0.25, 0.5, 1.0, 2.0, 4.0)) -> torch.Tensor:
    """Unbiased estimate of the squared MMD between samples ``x`` and ``y`` (each >= 2 rows).

    The kernel is a sum of Gaussians whose bandwidths are ``scales`` times the
    mean pairwise squared distance of the pooled sample (detached: the
    bandwidth is a statistic, not something the features should learn to
    inflate). The U-statistic leaves out each point's similarity to itself;
    with small batches that diagonal would otherwise dominate the estimate and
    hide the discrepancy. It can be slightly negative when the samples match.
    """
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"gaussian_mmd needs at least 2 rows per sample, got {x.shape[0]} and {y.shape[0]}")
    pooled = torch.cat([x, y], dim=0)
    sq_dists = torch.cdist(pooled, pooled).pow(2)
    base = sq_dists.detach().mean().clamp_min(1e-12)
    kernel = sum(torch.exp(-sq_dists / (base * s)) for s in scales)
    n, m = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2 * k_xy.mean()
