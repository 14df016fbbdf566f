"""Weighted K-Means: greedy K-Means++ seeding, then Lloyd iterations.

The loop follows scikit-learn's `KMeans(k, n_init=1).fit(x, sample_weight=w)`:
it stops when the labels no longer change, or when the total squared centre
shift falls below `tol` times the mean per-feature variance of x.
"""

from __future__ import annotations

import math
import warnings
from types import ModuleType
from typing import NamedTuple, Optional

import torch

from . import _inputs, _magnitude
from ._precision import full_float32_matmuls
from ._sampling import draw_seed, seeded_rows
from ._variance import mean_feature_variance
from .warm_start import projected_lloyd_start, worth_projecting


class KMeansResult(NamedTuple):
    """Result of :func:`weighted_kmeans`.

    centroids: (k, D) cluster centres.
    labels: (N,) int64 cluster of each point.
    inertia: sum of w * squared distance of each point to its centre (float).
    n_iter: Lloyd iterations run.
    sq_dists: (N,) squared distance of each point to its centre.
    """

    centroids: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int
    sq_dists: torch.Tensor


#: How Lloyd is started (see weighted_kmeans):
#: - "fast" (the default): greedy K-Means++ on a seeded uniform subsample of
#:   the rows, then Lloyd on their 32-d weighted PCA projection (warm_start.py);
#: - "subsample": the same seeding, no projection;
#: - "k-means++": exact greedy K-Means++ over every row.
INITS = ("fast", "subsample", "k-means++")
DEFAULT_INIT = "fast"
#: Rows per centre of the subsampled seeding, and the fewest rows it uses.
#: 32 per centre matched full seeding's objective after Lloyd within 0.1% on
#: the three 48k x 512, k = 500 bench workloads (8 was up to 0.9% worse); on the
#: 20k x 256, k = 200 one 6,400 rows ended 1.8% worse and 12,800 0.8%, hence
#: the floor, which costs little: seeding is cheap when N or k is small.
SUBSAMPLE_PER_CLUSTER = 32
SUBSAMPLE_MIN_ROWS = 16384
#: Lloyd's label rule for the "fast" and "subsample" inits: stop once the labels
#: that changed in an iteration carry at most this share of the weight. Replaying
#: the bench's five workloads (two seeds each, bench/test_bench_select_cpu.py),
#: stopping there cost at most 0.042% of the converged objective and cut the
#: iterations from 25-27 to 11-12 (unequal clusters), 30 to 13-19 (k = 10),
#: 8-16 to 4-6 (the others). "k-means++" keeps scikit-learn's rules alone (0).
DEFAULT_LABEL_TOL = 1e-3


def default_local_trials(k: int) -> int:
    """scikit-learn's number of greedy K-Means++ candidates per centre."""
    return 2 + int(math.log(k))


def draw_uniforms(count: int, seed: Optional[int]) -> torch.Tensor:
    """`count` float64 uniforms in [0, 1) from `seed` (or from torch's global RNG when None).

    Drawn on the CPU so a seed gives the same picks on every device.
    """
    if seed is None:
        seed = draw_seed()
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, dtype=torch.float64, generator=generator)


def resolve_label_tol(label_tol, init: str) -> float:
    """The label rule's share for `init` (None: :data:`DEFAULT_LABEL_TOL`, 0 for
    ``"k-means++"``), else `label_tol` checked to be in [0, 1]."""
    if label_tol is None:
        return 0.0 if init == "k-means++" else DEFAULT_LABEL_TOL
    value = _inputs.as_non_negative_float(label_tol, "label_tol")
    if value > 1:
        raise ValueError(f"label_tol must be in [0, 1] (a share of the weight), got {value}")
    return value


def weighted_kmeans(
    x,
    weights,
    k: int,
    *,
    seed: Optional[int] = None,
    max_iter: int = 300,
    tol: float = 1e-4,
    n_local_trials: Optional[int] = None,
    init: str = DEFAULT_INIT,
    label_tol: Optional[float] = None,
) -> KMeansResult:
    """Weighted K-Means of the rows of `x` with sample weights `weights`.

    Args:
        x: (N, D) features, torch tensor or numpy array, any real dtype
            (float64 is kept, everything else is computed in float32).
        weights: (N,) non-negative sample weights. If all are zero, uniform
            weights are used (with a warning).
        k: number of clusters, 1 <= k <= N.
        seed: seed of the K-Means++ draws; None draws one from torch's global
            RNG (so `torch.manual_seed` makes runs repeatable).
        max_iter: maximum number of Lloyd iterations (0 returns the seeds).
        tol: relative tolerance on the squared centre shift (scikit-learn's).
        label_tol: Lloyd also stops once the labels that changed in an
            iteration carry at most this share of the total weight (counted
            exactly, in units of 2^-20 of the largest weight). Default (None):
            1e-3 for the ``"fast"`` and ``"subsample"`` inits, which cost at
            most 0.05% of the objective on the bench's workloads and often
            halves the iterations; 0 (scikit-learn's rules only) for
            ``"k-means++"``. Pass 0 to iterate until the labels repeat or
            `tol` holds.
        n_local_trials: candidates per centre in greedy K-Means++; default
            2 + floor(ln k), as scikit-learn.
        init: how Lloyd starts. ``"fast"`` (default): greedy K-Means++ on a
            uniform subsample of ``max(32 * k, 16384)`` rows drawn from `seed`
            (weights kept; all rows when N is smaller), then up to 20 Lloyd
            iterations on the rows projected onto their 32 leading weighted
            principal directions, whose clusters' full-space means start the
            Lloyd on every row (only when D >= 64, k >= 16 and those directions hold at
            least half the weighted variance: see warm_start.py). ``"subsample"``: the same
            without the projection. ``"k-means++"``: greedy K-Means++ over
            every row (each of the k steps streams all N rows): the exact
            method of scikit-learn and of the original CLUE code.

    Returns:
        KMeansResult(centroids, labels, inertia, n_iter), on x's device.
    """
    from . import ops

    x, w = _check_kmeans_input(x, weights)
    k = _inputs.as_count(k, "k", low=1, high=x.shape[0], high_reason="the number of rows of x")
    seed, init = _inputs.as_seed(seed), check_init(init)
    label_tol = resolve_label_tol(label_tol, init)
    largest = _magnitude.max_abs(x)
    if not _magnitude.squares_fit(largest, x.shape[1], x.dtype):
        raise ValueError(
            f"x holds values up to {largest:.3g}: squared distances between its rows would overflow {x.dtype} "
            "(clue_ext.select accepts such features, it returns indices only); pass float64 features or "
            "rescale them"
        )
    exponent = _magnitude.scale_exponent(largest, x.shape[1], x.dtype)
    normalized = _magnitude.normalized_weights(w)
    with full_float32_matmuls(x.device):
        result = run_kmeans(ops, _magnitude.scaled_by_power_of_two(x, exponent), normalized.to(x.dtype), k,
                            seed=seed, max_iter=max_iter, tol=tol, n_local_trials=n_local_trials, init=init,
                            label_tol=label_tol)
    if exponent == 0 and normalized is w:
        return result
    return _in_callers_scale(result, exponent, w)


def _in_callers_scale(result: KMeansResult, exponent: int, w: torch.Tensor) -> KMeansResult:
    """`result` of features multiplied by 2**exponent (and of normalised weights), scaled back."""
    sq_dists = result.sq_dists
    if exponent:
        sq_dists = _magnitude.scaled_by_power_of_two(sq_dists, -2 * exponent)
    # The inertia is recomputed from the caller's weights in double: scaling the
    # double back could overflow where the sum does not.
    inertia = float((w.double() * sq_dists.double()).sum())
    centroids = _magnitude.scaled_by_power_of_two(result.centroids, -exponent)
    return KMeansResult(centroids, result.labels, inertia, result.n_iter, sq_dists)


def check_init(init) -> str:
    """``init`` if it names a seeding method (see :data:`INITS`), else ValueError naming the valid ones."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(repr(i) for i in INITS)}, got {init!r}")
    return init


def subsample_rows(n: int, k: int, seed: Optional[int], per_cluster: int = SUBSAMPLE_PER_CLUSTER,
                   min_rows: int = SUBSAMPLE_MIN_ROWS) -> Optional[torch.Tensor]:
    """Sorted CPU indices of the subsampled seeding's ``max(per_cluster * k, min_rows)``
    rows, or None when every row is used.

    A function of (n, k, seed) alone, so processes holding shards of the
    rows can draw the same global sample.
    """
    return seeded_rows(n, max(per_cluster * k, min_rows), seed, salt=0x5EED5A3B)


def _check_kmeans_input(x, weights):
    x = _inputs.as_matrix(x, "x")
    # In double until normalised (weighted_kmeans): tiny float64 weights would round to 0 in float32.
    w = _inputs.as_vector(weights, "weights", x.shape[0], torch.float64, x.device)
    if bool((w < 0).any()):
        raise ValueError(f"weights must be >= 0, got {int((w < 0).sum())} negative value(s)")
    return x, w


def uniform_if_all_zero(w: torch.Tensor, where: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Uniform weights (over `where`, or everywhere) when every weight is zero."""
    if bool((w > 0).any()):
        return w
    warnings.warn(
        "every sample weight is zero (a fully confident model?): falling back to uniform weights",
        RuntimeWarning,
        stacklevel=3,
    )
    ones = torch.ones_like(w)
    return ones if where is None else ones * where.to(w.dtype)


def run_kmeans(
    backend: ModuleType,
    x: torch.Tensor,
    w: torch.Tensor,
    k: int,
    *,
    seed: Optional[int],
    max_iter: int,
    tol: float,
    n_local_trials: Optional[int] = None,
    init: str = DEFAULT_INIT,
    label_tol: float = 0.0,
) -> KMeansResult:
    """Weighted K-Means on validated input, with the ops of `backend`.

    `backend` is :mod:`clue_ext.ops` (the extension) or
    :mod:`clue_ext.reference` (plain PyTorch); both expose the same four ops.
    """
    max_iter = _inputs.as_count(max_iter, "max_iter", low=0, high=2**31, high_reason="a sane limit")
    tol = _inputs.as_non_negative_float(tol, "tol")
    trials = default_local_trials(k) if n_local_trials is None else _inputs.as_count(
        n_local_trials, "n_local_trials", low=1, high=2**20, high_reason="a sane limit")
    w = uniform_if_all_zero(w)
    if seed is None:
        seed = draw_seed()
    start = seed_centroids(backend, x, w, k, seed=seed, n_local_trials=trials, init=init)
    start = warm_start(backend, x, w, start, seed=seed, max_iter=max_iter, tol=tol, init=init, label_tol=label_tol)
    return lloyd(backend, x, w, start, max_iter=max_iter, tol=tol, label_tol=label_tol)


def warm_start(backend: ModuleType, x: torch.Tensor, w: torch.Tensor, seeds: torch.Tensor, *, seed: int,
               max_iter: int, tol: float, init: str, label_tol: float = 0.0) -> torch.Tensor:
    """The centroids the full Lloyd starts from: `seeds`, refined on the projection for ``"fast"``."""
    if init == "fast" and seeds.shape[0] > 1 and max_iter > 0 and worth_projecting(x.shape[1], seeds.shape[0]):
        return projected_lloyd_start(backend, x, w, seeds, seed=seed, tol=tol, label_tol=label_tol)
    return seeds


def seed_centroids(backend: ModuleType, x: torch.Tensor, w: torch.Tensor, k: int, *, seed: int,
                   n_local_trials: int, init: str) -> torch.Tensor:
    """(k, D) greedy K-Means++ seeds: from every row (``"k-means++"``) or from the subsample."""
    rows = subsample_rows(x.shape[0], k, seed) if init != "k-means++" else None
    candidates, candidate_w = x, w
    if rows is not None:
        rows = rows.to(x.device)
        candidates, candidate_w = x.index_select(0, rows), w.index_select(0, rows)
    uniforms = draw_uniforms(1 + (k - 1) * n_local_trials, seed).to(x.device)
    return candidates.index_select(0, backend.kmeanspp_seed(candidates, candidate_w, k, uniforms, n_local_trials))


def lloyd(backend: ModuleType, x: torch.Tensor, w: torch.Tensor, centroids: torch.Tensor, *,
          max_iter: int, tol: float, label_tol: float = 0.0) -> KMeansResult:
    """Lloyd iterations from `centroids` until scikit-learn's stopping rules (or the label rule) hold.

    `tol` is relative to the mean per-feature variance of x, as in scikit-learn.
    """
    tol_abs = mean_feature_variance(x) * tol if tol > 0 else 0.0
    centroids, labels, sq_dists, n_iter = backend.lloyd(x, w, centroids, max_iter, tol_abs, label_tol)
    inertia = float((w.double() * sq_dists.double()).sum())
    return KMeansResult(centroids, labels, inertia, int(n_iter), sq_dists)


def weight_quanta(w: torch.Tensor, largest: Optional[float] = None) -> torch.Tensor:
    """int64 quanta of each weight, floor(w / largest * 2^20), largest = max(w) unless given
    (csrc/weight_quanta.h): the label rule's exact, order-free measure of weight."""
    wd = w.double()
    if largest is None:
        largest = float(wd.max()) if wd.numel() else 0.0
    if not largest > 0:
        return torch.zeros(w.shape, dtype=torch.long, device=w.device)
    return torch.floor(wd / largest * 2.0**20).long()


def few_labels_changed(changed: int, total: int, label_tol: float) -> bool:
    """The label rule: `changed` quanta out of `total` within label_tol (never when it is off)."""
    return label_tol > 0 and total > 0 and float(changed) <= label_tol * float(total)


def lloyd_loop(backend: ModuleType, x: torch.Tensor, w: torch.Tensor, centroids: torch.Tensor,
               max_iter: int, tol: float, label_tol: float = 0.0):
    """The `lloyd` op's loop (see csrc/ops.h) written on the backend's assign
    and centroid_update ops: (centroids, labels, sq_dists, n_iter). `tol` is absolute.

    The reference's `lloyd`, and the oracle of the fused C++/CUDA loops.
    """
    labels_old = None
    labels = None
    n_iter = 0
    converged_on_labels = False
    no = torch.zeros((), dtype=torch.bool, device=x.device)
    quanta = weight_quanta(w) if label_tol > 0 else None
    total_quanta = int(quanta.sum()) if quanta is not None else 0
    for n_iter in range(1, max_iter + 1):
        labels, sq_dists = backend.assign(x, centroids)
        new_centroids, cluster_weights = backend.centroid_update(x, w, labels, centroids)
        shift = (new_centroids - centroids).double().pow(2).sum()
        unchanged = (labels == labels_old).all() if labels_old is not None else no
        unchanged, small_shift, any_empty = torch.stack(
            [unchanged, shift <= tol, (~(cluster_weights > 0)).any()]).tolist()
        # After a relocation no rule stops the loop.
        few_changed = label_tol > 0 and few_labels_changed(
            total_quanta if labels_old is None else int(quanta[labels != labels_old].sum()), total_quanta, label_tol)
        if any_empty:
            new_centroids = relocate_empty_clusters(x, w, sq_dists, new_centroids, cluster_weights)
            unchanged = small_shift = few_changed = False
        centroids = new_centroids
        if unchanged:
            converged_on_labels = True
            break
        if small_shift:
            break
        if few_changed:
            break
        labels_old = labels

    if labels is None or not converged_on_labels:
        # The labels must describe the final centroids.
        labels, sq_dists = backend.assign(x, centroids)
    return centroids, labels, sq_dists, torch.tensor(n_iter, device=x.device)


def relocate_empty_clusters(
    x: torch.Tensor,
    w: torch.Tensor,
    sq_dists: torch.Tensor,
    centroids: torch.Tensor,
    cluster_weights: torch.Tensor,
) -> torch.Tensor:
    """Moves each cluster of zero total weight onto a point that costs the most.

    The points with the largest w * d^2 (positive weight only) become the new
    centres, one per empty cluster, in cluster order. If fewer such points
    exist, the remaining empty clusters keep their centre.
    """
    empty = (~(cluster_weights > 0)).nonzero().flatten()
    if empty.numel() == 0:
        return centroids
    cost = w.double() * sq_dists.double()
    cost = torch.where(w > 0, cost, torch.full_like(cost, -1.0))
    n_take = min(int(empty.numel()), int((cost > 0).sum()))
    if n_take == 0:
        return centroids
    far = torch.sort(cost, descending=True, stable=True).indices[:n_take]  # ties: the lower index
    centroids = centroids.clone()
    centroids[empty[:n_take]] = x.index_select(0, far)
    return centroids
