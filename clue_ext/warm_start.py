"""The "fast" init's warm start: Lloyd on a low-dimensional projection first.

On features without tight clusters (low-rank CNN embeddings, noisy unequal
components) Lloyd from K-Means++ seeds creeps for 25-60 full iterations, each
a (N x D) by (D x K) product. Most of that creeping happens along the few
directions where the features vary most. So the seeds first go through Lloyd
on the rows projected onto their q leading *weighted* principal directions
(an (N x q) problem: each iteration costs about q/D of a full one), the
full-space weighted means of the clusters found there become the start, and
the full Lloyd then needs a handful of iterations (bench/init_probe.py).

Everything is a function of (x, w, seed) and of per-row sums, so processes
holding shards of the rows can compute the same start with all-reduces.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional

import torch

from ._sampling import seeded_rows
from ._variance import mean_feature_variance

#: Dimension of the projection. 32 made the full Lloyd 4-5x shorter on the
#: bench's hard workloads at D = 500-512; below twice this many features the
#: projection saves too little to pay for itself, and is skipped.
PROJECTION_DIMS = 32
#: Rows the principal directions are estimated from (a seeded uniform sample).
COVARIANCE_ROWS = 4096
#: The projection is used only when its directions hold at least this share of
#: the weighted variance. Below it, clusters that are apart in the full space
#: can overlap in the projection, and Lloyd there merges them for good: on the
#: bench's 345-component mixtures (22-31% of the variance in 32 directions)
#: the projected start ended up to 1.6% worse; on low-rank features (62%) it
#: was 0.3% better and cut the full Lloyd from 57 to 14-17 iterations.
MIN_VARIANCE_SHARE = 0.5
#: Lloyd iterations at most in the projection: the full Lloyd finishes the job,
#: and iterating the projected one to convergence bought < 0.1% (init_probe.py).
PROJECTED_MAX_ITER = 20

_COVARIANCE_SALT = 0xC0FA71A5


#: Fewest clusters the projection is tried for. Its own GEMM (N x D x 32) costs
#: what a full-space assignment to 32 centroids does, and finding its
#: directions a fixed 35-55 ms (a D x D eigendecomposition); below 16 clusters a
#: full-space Lloyd iteration costs less than half that GEMM. On the 60k x 500,
#: k = 10 bench workload the directions were computed, then not taken, and cost
#: 5% of select.
MIN_CLUSTERS = 16


def worth_projecting(d: int, k: int) -> bool:
    """Whether features of width `d` clustered into `k` get the projected warm start."""
    return d >= 2 * PROJECTION_DIMS and k >= MIN_CLUSTERS


def covariance_rows(n: int, seed: int) -> Optional[torch.Tensor]:
    """Sorted CPU indices of the rows the directions come from, or None for all rows.

    A function of (n, seed) alone, like :func:`clue_ext.kmeans.subsample_rows`.
    """
    return seeded_rows(n, COVARIANCE_ROWS, seed, salt=_COVARIANCE_SALT)


def weighted_principal_directions(x: torch.Tensor, w: torch.Tensor, q: int, min_share: float = 0.0):
    """(mean (D,), directions (D, q), share) of the weighted rows of x.

    mean and directions in x's dtype, on x's device; share is the part of the
    weighted variance the q directions hold. The mean is accumulated in
    double, the centred product runs in x's dtype, and the covariance is
    decomposed on the CPU in double, so the directions do not depend on the
    device's eigensolver. None when the rows carry no weight or no variance;
    directions None when share < `min_share` (they are then not computed, and
    share may be an upper bound of it, itself below `min_share`).
    """
    wd = w.double()
    total = float(wd.sum())
    if not total > 0:
        return None
    mean = (wd @ x.double()) / total
    # Centred first, so the product in x's dtype loses nothing to cancellation.
    centred = x - mean.to(x.dtype)
    covariance = ((centred * w[:, None]).T @ centred).double()
    covariance = covariance.cpu()
    if min_share > 0:
        # The q largest eigenvalues of a PSD matrix sum to at most
        # sqrt(q) ||C||_F (Cauchy-Schwarz): on features without a dominant
        # subspace that settles it without the eigensolver.
        trace = float(torch.diagonal(covariance).clamp(min=0).sum())
        if not trace > 0:
            return None
        bound = q ** 0.5 * float(torch.linalg.matrix_norm(covariance)) / trace
        if bound * (1 + 1e-9) < min_share:
            return mean.to(x.dtype), None, bound
    # The eigenvalues alone cost half the decomposition: they decide first.
    # Both sort in ascending order: the last q lead.
    values = torch.linalg.eigvalsh(covariance)
    total_variance = float(values.clamp(min=0).sum())
    if not total_variance > 0:
        return None
    share = float(values[-q:].clamp(min=0).sum()) / total_variance
    if share < min_share:
        return mean.to(x.dtype), None, share
    vectors = torch.linalg.eigh(covariance)[1]
    return mean.to(x.dtype), vectors[:, -q:].to(device=x.device, dtype=x.dtype).contiguous(), share


def projected_lloyd_start(backend: ModuleType, x: torch.Tensor, w: torch.Tensor, seeds: torch.Tensor, *,
                          seed: int, tol: float, label_tol: float = 0.0) -> torch.Tensor:
    """Full-space starting centroids: `seeds` refined by Lloyd on the projection of x.

    `tol` is relative (scikit-learn's), here to the projection's variance;
    `label_tol` is the lloyd op's label rule.
    Clusters that end up empty in the projection keep their seed. Returns
    `seeds` themselves when the projection would hold too little of the
    variance (MIN_VARIANCE_SHARE).
    """
    rows = covariance_rows(x.shape[0], seed)
    if rows is None:
        sample_x, sample_w = x, w
    else:
        rows = rows.to(x.device)
        sample_x, sample_w = x.index_select(0, rows), w.index_select(0, rows)
    found = weighted_principal_directions(sample_x, sample_w, min(PROJECTION_DIMS, x.shape[1]), MIN_VARIANCE_SHARE)
    if found is None or found[1] is None:
        return seeds
    mean, directions, _ = found
    offset = mean @ directions
    projected = torch.addmm(offset, x, directions, beta=-1).contiguous()
    projected_seeds = torch.addmm(offset, seeds, directions, beta=-1).contiguous()
    tol_abs = mean_feature_variance(projected) * tol
    _, labels, _, _ = backend.lloyd(projected, w, projected_seeds, PROJECTED_MAX_ITER, tol_abs, label_tol)
    del projected
    start, _ = backend.centroid_update(x, w, labels, seeds)
    return start
