"""Weighted Lloyd over rows sharded across ranks.

The loop and its stopping rules are kmeans.lloyd_loop's. Per iteration each
rank assigns its rows with the backend's `assign` op, sums its clusters'
weighted rows in double, and one all-reduce of (K x D sums, K weights, the
count of changed labels) gives every rank the same new centroids: they are
computed from bitwise identical sums on every rank, so the ranks never
drift apart.
"""

from __future__ import annotations

from types import ModuleType
from typing import Tuple

import torch

from ._collective import Collective

# Rows whose weighted sum is formed at once: the double temporaries stay in
# cache (4x faster than 64k-row chunks) and small.
_SUM_CHUNK = 1024


def assign(backend: ModuleType, x: torch.Tensor, centroids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The backend's assign, also on a rank holding no rows."""
    if x.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=x.device), x.new_empty(0)
    return backend.assign(x, centroids)


def cluster_sums(x: torch.Tensor, w: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """(k, D + 1) float64: each cluster's sum of w * x over this rank's rows, then its sum of w."""
    out = torch.zeros(k, x.shape[1] + 1, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _SUM_CHUNK):
        rows = slice(start, start + _SUM_CHUNK)
        wd = w[rows].double()
        out[:, :-1].index_add_(0, labels[rows], x[rows].double() * wd[:, None])
        out[:, -1].index_add_(0, labels[rows], wd)
    return out


def means_from_sums(sums: torch.Tensor, fallback: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(means in fallback's dtype, cluster weights): clusters of weight not > 0 keep `fallback`'s row."""
    weight = sums[:, -1]
    filled = weight > 0
    means = torch.where(filled[:, None], sums[:, :-1] / torch.where(filled, weight, 1.0)[:, None],
                        fallback.double())
    return means.to(fallback.dtype), weight


def cluster_means(comm: Collective, x, w, labels, fallback):
    """The global weighted means of the clusters `labels` describes (sharded centroid_update)."""
    return means_from_sums(comm.sum(cluster_sums(x, w, labels, fallback.shape[0])), fallback)


def mean_feature_variance(comm: Collective, x: torch.Tensor) -> float:
    """kmeans.mean_feature_variance over the rows of every rank."""
    moments = torch.zeros(x.shape[1] + 2, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _SUM_CHUNK):
        rows = x[start:start + _SUM_CHUNK].double()
        moments[0] += rows.pow(2).sum()
        moments[1:-1] += rows.sum(dim=0)
    moments[-1] = x.shape[0]
    moments = comm.sum(moments)
    n, d = float(moments[-1]), x.shape[1]
    mean = moments[1:-1] / n
    return max(0.0, (float(moments[0]) / n - float(mean.dot(mean))) / d)


def relocate_empty(comm: Collective, x, w, sq_dists, centroids, cluster_weights, offset: int):
    """kmeans.relocate_empty_clusters over every rank's rows: each empty cluster moves onto
    one of the rows of largest w * d^2 (positive weight), ties to the lower global index."""
    empty = (~(cluster_weights > 0)).nonzero().flatten()
    take = int(empty.numel())
    cost = w.double() * sq_dists.double()
    cost = torch.where(w > 0, cost, torch.full_like(cost, -1.0))
    local = min(take, x.shape[0])
    order = torch.sort(cost, descending=True, stable=True).indices[:local]
    # (cost, global index, row) of this rank's best rows; padding has cost -1.
    mine = torch.full((take, x.shape[1] + 2), -1.0, dtype=torch.float64, device=x.device)
    mine[:local, 0] = cost[order]
    mine[:local, 1] = (order + offset).double()
    mine[:local, 2:] = x[order].double()
    every = comm.gather_rows(mine, [take] * comm.size)
    every = every[every[:, 0] > 0]
    # Largest cost first; equal costs: lower global index first.
    every = every[torch.sort(every[:, 1], stable=True).indices]
    every = every[torch.sort(every[:, 0], descending=True, stable=True).indices][:take]
    centroids = centroids.clone()
    centroids[empty[: every.shape[0]]] = every[:, 2:].to(centroids.dtype)
    return centroids


def lloyd(comm: Collective, backend: ModuleType, x, w, centroids, *, max_iter: int, tol: float, offset: int):
    """(centroids, labels, sq_dists, n_iter) of Lloyd over every rank's rows; `tol` is absolute.

    labels and sq_dists are this rank's; centroids and n_iter are the same on every rank.
    """
    k = centroids.shape[0]
    labels_old = labels = sq_dists = None
    n_iter = 0
    converged_on_labels = False
    for n_iter in range(1, max_iter + 1):
        labels, sq_dists = assign(backend, x, centroids)
        local = cluster_sums(x, w, labels, k)
        changed = x.shape[0] if labels_old is None else int((labels != labels_old).sum())
        reduced = comm.sum(torch.cat([local.flatten(), torch.tensor([float(changed)], dtype=torch.float64,
                                                                     device=x.device)]))
        new_centroids, weights = means_from_sums(reduced[:-1].view(k, -1), centroids)
        shift = float((new_centroids - centroids).double().pow(2).sum())
        unchanged = labels_old is not None and float(reduced[-1]) == 0
        small_shift = shift <= tol
        if bool((~(weights > 0)).any()):
            new_centroids = relocate_empty(comm, x, w, sq_dists, new_centroids, weights, offset)
            unchanged = small_shift = False
        centroids = new_centroids
        if unchanged:
            converged_on_labels = True
            break
        if small_shift:
            break
        labels_old = labels
    if labels is None or not converged_on_labels:
        labels, sq_dists = assign(backend, x, centroids)
    return centroids, labels, sq_dists, n_iter


def bytes_per_iteration(k: int, d: int) -> int:
    """What each rank sends in one Lloyd iteration's all-reduce (no empty cluster)."""
    return (k * (d + 1) + 1) * 8
