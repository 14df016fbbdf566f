"""Weighted Lloyd over rows sharded across ranks.

The loop and its stopping rules are kmeans.lloyd_loop's. Per iteration each
rank labels its rows (Labeller), sums its clusters' weighted rows in
double (LocalSums, in centroid_update's order), and one all-reduce of (K x D
sums, K weights, K counts of rows of positive weight, the count of changed
labels) gives every rank the same new centroids: they are computed from
bitwise identical sums on every rank, so the ranks never drift apart.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable, Optional, Tuple

import torch

from .._variance import centred_square_sum, column_sums
from ..kmeans import few_labels_changed, weight_quanta
from ._collective import Collective

# Rows of a cluster summed one after the other before their sum joins the
# cluster's total: centroid_update's runs (csrc/summation_order.h).
MEANS_RUN = 256
# Rows whose weighted values are formed at once: a few tens of MB of doubles at most.
_SUM_ROWS = 8192


class Labeller:
    """Nearest-centroid labels of this rank's rows for successive centroids.

    On the CPU with the extension's ops, the CPU Lloyd kernel's assignment
    step (ops.lloyd_assigner): it keeps each row's nearest centroids and
    distance bounds between calls and measures only the rows whose label may
    have changed, as the one-process `lloyd` op does. Otherwise every call is
    the backend's full `assign`.
    """

    def __init__(self, backend: ModuleType, x: torch.Tensor, k: int):
        self.backend, self.x = backend, x
        self.previous: Optional[torch.Tensor] = None
        self.labels = torch.empty(0, dtype=torch.long, device=x.device)
        self._sq_dists = x.new_empty(0)
        make = getattr(backend, "lloyd_assigner", None)
        self.state = make(x, k) if make is not None and x.shape[0] and x.device.type == "cpu" else None

    def __call__(self, centroids: torch.Tensor) -> torch.Tensor:
        if self.x.shape[0] == 0:
            return self.labels
        if self.state is None:
            self.labels, self._sq_dists = self.backend.assign(self.x, centroids)
        else:
            drift = torch.zeros(centroids.shape[0], dtype=torch.float64) if self.previous is None else \
                (centroids.double() - self.previous.double()).pow(2).sum(dim=1).sqrt()
            self.labels = self.state.assign(centroids, drift)
        self.previous = centroids
        return self.labels

    def sq_dists(self, centroids: torch.Tensor) -> torch.Tensor:
        """Exact squared distance of each row to its label's row of `centroids`."""
        if self.x.shape[0] == 0:
            return self._sq_dists
        if self.state is None:
            if centroids is self.previous:
                return self._sq_dists
            return (self.x - centroids[self.labels]).pow(2).sum(dim=1)
        return self.state.sq_dists(centroids)


def cluster_sums(x: torch.Tensor, w: torch.Tensor, labels: torch.Tensor, k: int,
                 rows: Optional[torch.Tensor] = None, *, by_steps: Optional[bool] = None) -> torch.Tensor:
    """(k, D + 2) float64: each cluster's sum of w * x over this rank's rows (or over `rows`,
    ascending row indices, alone), its sum of w, and its number of rows of positive weight
    (which alone says whether it is empty: a sum of positive weights is positive).

    In centroid_update's order (csrc/summation_order.h): a cluster's rows in row
    order, in runs of MEANS_RUN added one after the other (multiply, then add),
    the runs' sums then added in order. A cluster's sums are thus a function of
    its rows alone, the same whatever other rows are summed with them, on any
    device and from run to run; in one process they are the op's.

    On the CPU, index_add_ adds the rows one after the other, in their order.
    On CUDA it adds with atomics, in whatever order the threads arrive, so
    there (or with `by_steps`) step s adds the s-th row of every run at once,
    one row per run, so that no two adds meet.
    """
    out = torch.zeros(k, x.shape[1] + 2, dtype=torch.float64, device=x.device)
    if rows is None:
        rows = torch.arange(x.shape[0], device=x.device)
    if rows.numel() == 0:
        return out
    cluster, order = torch.sort(labels[rows], stable=True)
    sizes = torch.bincount(cluster, minlength=k)
    position = torch.arange(rows.numel(), device=x.device) - (torch.cumsum(sizes, 0) - sizes)[cluster]
    in_run = position % MEANS_RUN
    starts = in_run == 0
    run = torch.cumsum(starts, 0) - 1  # the run of each row (sorted order); runs in (cluster, position) order
    runs = torch.zeros(int(run[-1]) + 1, x.shape[1] + 2, dtype=torch.float64, device=x.device)
    if by_steps if by_steps is not None else x.device.type != "cpu":
        by_step = torch.sort(in_run, stable=True).indices
        for step in torch.split(by_step, torch.bincount(in_run).tolist()):
            runs.index_add_(0, run[step], _weighted(x, w, rows[order[step]]))
    else:
        run_of = torch.empty_like(run)
        run_of[order] = run
        for start in range(0, rows.numel(), _SUM_ROWS):
            part = slice(start, start + _SUM_ROWS)
            runs.index_add_(0, run_of[part], _weighted(x, w, rows[part]))
    # Then every cluster's runs in order, likewise one run per cluster at a time.
    run_cluster, run_index = cluster[starts], position[starts] // MEANS_RUN
    by_index = torch.sort(run_index, stable=True).indices
    for step in torch.split(by_index, torch.bincount(run_index).tolist()):
        out.index_add_(0, run_cluster[step], runs[step])
    return out


def _weighted(x, w, rows):
    """(len(rows), D + 2) float64: w * x, w, and whether w > 0, of `rows`."""
    d = x.shape[1]
    out = torch.empty(rows.numel(), d + 2, dtype=torch.float64, device=x.device)
    out[:, d] = w[rows]
    out[:, :d] = x[rows]
    out[:, :d] *= out[:, d:d + 1]
    torch.gt(out[:, d], 0, out=out[:, d + 1])
    return out


class LocalSums:
    """This rank's cluster_sums for successive labels, summed afresh for the clusters whose
    rows changed (as the one-process Lloyd kernel does).

    Late Lloyd iterations move few rows, so few clusters need new sums. A
    running sum updated by the rows that moved would be cheaper still, but it
    keeps the rounding of every row that passed through: 2.8e-17 of weight
    stayed in clusters whose remaining rows all weigh 0, which are empty.
    """

    def __init__(self, x: torch.Tensor, w: torch.Tensor, k: int):
        self.x, self.w, self.k = x, w, k
        self.labels: Optional[torch.Tensor] = None
        self.sums = torch.zeros(k, x.shape[1] + 2, dtype=torch.float64, device=x.device)

    def __call__(self, labels: torch.Tensor) -> torch.Tensor:
        if self.labels is None:
            self.sums = cluster_sums(self.x, self.w, labels, self.k)
        else:
            moved = labels != self.labels
            if bool(moved.any()):
                changed = torch.zeros(self.k, dtype=torch.bool, device=labels.device)
                changed[labels[moved]] = True
                changed[self.labels[moved]] = True
                fresh = cluster_sums(self.x, self.w, labels, self.k, rows=changed[labels].nonzero().flatten())
                self.sums[changed] = fresh[changed]
        self.labels = labels
        return self.sums


def means_from_sums(sums: torch.Tensor, fallback: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(means in fallback's dtype, cluster weights) from cluster_sums summed over the ranks:
    clusters with no row of positive weight (weight not > 0, as centroid_update says) keep
    `fallback`'s row, and their weight is reported as exactly 0."""
    filled = sums[:, -1] > 0
    weight = torch.where(filled, sums[:, -2], 0.0)
    means = torch.where(filled[:, None], sums[:, :-2] / torch.where(filled, weight, 1.0)[:, None],
                        fallback.double())
    return means.to(fallback.dtype), weight


def cluster_means(comm: Collective, x, w, labels, fallback):
    """The global weighted means of the clusters `labels` describes (sharded centroid_update)."""
    return means_from_sums(comm.sum(cluster_sums(x, w, labels, fallback.shape[0])), fallback)


def mean_feature_variance(comm: Collective, x: torch.Tensor, total: int) -> float:
    """_variance.mean_feature_variance over the `total` rows of every rank: the global mean
    from the summed column sums, then the summed squares about it (centred, in double, so
    that features far from the origin relative to their spread do not cancel)."""
    mean = comm.sum(column_sums(x)) / total
    return float(comm.sum(centred_square_sum(x, mean).reshape(1))) / (total * x.shape[1])


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


def lloyd(comm: Collective, backend: ModuleType, x, w, centroids, *, max_iter: int, tol: float, offset: int,
          progress: Optional[Callable[[str], None]] = None, label_tol: float = 0.0):
    """(centroids, labels, sq_dists, n_iter) of Lloyd over every rank's rows; `tol` is absolute.

    labels and sq_dists are this rank's; centroids and n_iter are the same on every rank.
    `progress`, if given, hears of every tenth iteration.
    """
    k = centroids.shape[0]
    labeller = Labeller(backend, x, k)
    local_sums = LocalSums(x, w, k)
    labels_old = labels = None
    n_iter = 0
    converged_on_labels = False
    quanta, total_quanta = global_weight_quanta(comm, w) if label_tol > 0 else (None, 0)
    for n_iter in range(1, max_iter + 1):
        labels = labeller(centroids)
        local = local_sums(labels)
        moved = None if labels_old is None else labels != labels_old
        changed = x.shape[0] if moved is None else int(moved.sum())
        # Quanta are integers below 2^53 in all: their float64 sum is exact in any order.
        changed_quanta = 0 if quanta is None else (int(quanta.sum()) if moved is None else int(quanta[moved].sum()))
        reduced = comm.sum(torch.cat([local.flatten(), torch.tensor([float(changed_quanta), float(changed)],
                                                                     dtype=torch.float64, device=x.device)]))
        new_centroids, weights = means_from_sums(reduced[:-2].view(k, -1), centroids)
        shift = float((new_centroids - centroids).double().pow(2).sum())
        unchanged = labels_old is not None and float(reduced[-1]) == 0
        if progress is not None and n_iter % 10 == 0:
            progress(f"Lloyd iteration {n_iter}: {int(reduced[-1])} labels changed, centre shift {shift:.3g}")
        small_shift = shift <= tol
        # After a relocation no rule stops the loop (the op's `continue`).
        few_changed = few_labels_changed(int(reduced[-2]), total_quanta, label_tol)
        if bool((~(weights > 0)).any()):
            new_centroids = relocate_empty(comm, x, w, labeller.sq_dists(centroids), new_centroids, weights, offset)
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
        labels = labeller(centroids)
    return centroids, labels, labeller.sq_dists(centroids), n_iter


def global_weight_quanta(comm: Collective, w):
    """(this rank's weight quanta, the total over every rank), kmeans.weight_quanta with the
    largest weight of any rank."""
    largest = max(comm.gather_objects(float(w.double().max()) if w.numel() else 0.0))
    quanta = weight_quanta(w, largest)
    total = int(comm.sum(torch.tensor([float(quanta.sum())], dtype=torch.float64, device=w.device))[0])
    return quanta, total


def bytes_per_iteration(k: int, d: int) -> int:
    """What each rank sends in one Lloyd iteration's all-reduce (no empty cluster)."""
    return (k * (d + 2) + 2) * 8
