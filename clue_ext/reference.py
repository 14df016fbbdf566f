"""Plain PyTorch implementations of every op: the oracle of the tests.

Each function follows the contract in csrc/ops.h, with the same signature as
its counterpart in :mod:`clue_ext.ops`, but computes distances exactly in
float64 on full (N, K) matrices and with no pruning. Written for clarity, not
speed; it runs on any device. `weighted_kmeans` and `select` here are the
library's own driver run on these ops: the plain PyTorch peer of the
benchmarks.
"""

from __future__ import annotations

import sys
from typing import Optional, Tuple

import torch

from .kmeans import DEFAULT_INIT, lloyd_loop, resolve_label_tol, run_kmeans
from .selection import check_probs, select_with


def _sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) squared distances, from exact differences in float64."""
    a, b = a.double(), b.double()
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def _points(x: torch.Tensor, x_factor: Optional[torch.Tensor]) -> torch.Tensor:
    if x_factor is None:
        return x.double()
    return (x.double()[:, :, None] * x_factor.double()[:, None, :]).flatten(1)


def _first_above(cumsum: torch.Tensor, target: float) -> int:
    """First index whose prefix sum exceeds target; the last index with mass if none."""
    i = int(torch.searchsorted(cumsum, torch.tensor([target], dtype=cumsum.dtype, device=cumsum.device), right=True))
    if i < cumsum.numel():
        return i
    steps = torch.diff(cumsum, prepend=cumsum.new_zeros(1)) > 0
    return int(steps.nonzero().max())


def _draw_unchosen(u: float, weights: torch.Tensor, chosen: torch.Tensor) -> int:
    pool = (~chosen & (weights > 0)).nonzero().flatten()
    if pool.numel() == 0:
        pool = (~chosen).nonzero().flatten()
    return int(pool[min(pool.numel() - 1, int(u * pool.numel()))])


def kmeanspp_seed(
    x: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    uniforms: torch.Tensor,
    n_local_trials: int,
    x_factor: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Weighted greedy K-Means++ seeding (see csrc/ops.h), without pruning."""
    pts = _points(x, x_factor)
    w = weights.double()
    u = uniforms.double().cpu().tolist()
    n = pts.shape[0]
    chosen = torch.zeros(n, dtype=torch.bool, device=x.device)

    total_w = float(w.sum())
    first = _first_above(torch.cumsum(w, 0), u[0] * total_w) if total_w > 0 else min(n - 1, int(u[0] * n))
    picks = [first]
    chosen[first] = True
    d2 = _sq_distances(pts, pts[first:first + 1])[:, 0]
    d2[first] = 0.0
    for j in range(1, k):
        mass = torch.cumsum(w * d2, 0)
        total = float(mass[-1])
        draws = u[1 + (j - 1) * n_local_trials: 1 + j * n_local_trials]
        cands = [(_first_above(mass, v * total) if total > 0 else _draw_unchosen(v, w, chosen)) for v in draws]
        cand_d2 = _sq_distances(pts, pts[cands])
        for t, c in enumerate(cands):
            cand_d2[c, t] = 0.0
        gains = (w[:, None] * (d2[:, None] - cand_d2).clamp_min(0.0)).sum(0)
        best = int(torch.argmax(gains))  # first maximum: the earlier candidate wins ties
        c = cands[best]
        d2 = torch.minimum(d2, cand_d2[:, best])
        d2[c] = 0.0
        chosen[c] = True
        picks.append(c)
    return torch.tensor(picks, dtype=torch.long, device=x.device)


def assign(x: torch.Tensor, centroids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid (lowest index on ties) and its squared distance."""
    d = _sq_distances(x, centroids)
    labels = torch.argmin(d, dim=1)
    return labels, d.gather(1, labels[:, None])[:, 0].to(x.dtype)


def centroid_update(
    x: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weighted means per cluster; clusters of zero weight keep their row."""
    k = centroids.shape[0]
    w = weights.double()
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
    sums.index_add_(0, labels, x.double() * w[:, None])
    mass = torch.zeros(k, dtype=torch.float64, device=x.device).index_add_(0, labels, w)
    means = sums / mass.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    out = torch.where((mass > 0)[:, None], means, centroids.double())
    return out.to(x.dtype), mass


def nearest_points(
    x: torch.Tensor, centroids: torch.Tensor, exclude: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Distinct nearest point per centroid, centroid by centroid."""
    d = _sq_distances(x, centroids)
    taken = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device) if exclude is None else exclude.clone()
    picks = []
    for j in range(centroids.shape[0]):
        col = d[:, j].masked_fill(taken, float("inf"))
        i = int(torch.argmin(col))  # first minimum: the lowest index wins ties
        taken[i] = True
        picks.append(i)
    return torch.tensor(picks, dtype=torch.long, device=x.device)


def nearest_points_labelled(x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor,
                            exclude: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:func:`nearest_points`: the labels only speed up the extension's search."""
    return nearest_points(x, centroids, exclude)


def lloyd(x: torch.Tensor, weights: torch.Tensor, centroids: torch.Tensor, max_iter: int, tol: float,
          label_tol: float = 0.0):
    """Weighted Lloyd iterations (see csrc/ops.h): the loop on the reference ops above."""
    return lloyd_loop(sys.modules[__name__], x, weights, centroids, max_iter, tol, label_tol)


def weighted_kmeans(x: torch.Tensor, weights: torch.Tensor, k: int, *, seed: Optional[int] = None,
                    max_iter: int = 300, tol: float = 1e-4, n_local_trials: Optional[int] = None,
                    init: str = DEFAULT_INIT, label_tol: Optional[float] = None):
    """:func:`clue_ext.weighted_kmeans` run on the reference ops (validated input only)."""
    return run_kmeans(sys.modules[__name__], x, weights, k, seed=seed, max_iter=max_iter, tol=tol,
                      n_local_trials=n_local_trials, init=init, label_tol=resolve_label_tol(label_tol, init))


def select(features: torch.Tensor, probs: torch.Tensor, budget: int, *, temperature: float = 1.0,
           seed: Optional[int] = None, exclude: Optional[torch.Tensor] = None, max_iter: int = 300,
           tol: float = 1e-4, init: str = DEFAULT_INIT, label_tol: Optional[float] = None) -> torch.Tensor:
    """:func:`clue_ext.select` run on the reference ops (validated input only)."""
    p = check_probs(probs, features.shape[0], features.device)
    return select_with(sys.modules[__name__], features, p, budget, temperature=temperature, seed=seed,
                       exclude=exclude, max_iter=max_iter, tol=tol, init=init,
                       label_tol=resolve_label_tol(label_tol, init))
