"""Greedy K-Means++ seeds and the projected warm start over sharded rows.

The subsampled seeding ("fast", "subsample") draws the same global row
sample as one process (kmeans.subsample_rows is a function of N, k and the
seed), gathers just those rows, and seeds on them with the backend's op:
every rank then holds at most max(32 k, 16384) rows. The exact seeding
("k-means++", or a pool no larger than that sample) runs the greedy
K-Means++ of csrc/ops.h over every rank's rows, with four or five collectives per
centre and no rank ever holding more than its own rows and the candidates.
Whatever a rank computes from gathered data is broadcast from rank 0, so
ranks on machines whose kernels round differently still agree.
"""

from __future__ import annotations

import math
from types import ModuleType

import torch

from ..kmeans import draw_uniforms, subsample_rows
from ..warm_start import (MIN_VARIANCE_SHARE, PROJECTED_MAX_ITER, PROJECTION_DIMS, covariance_rows,
                          weighted_principal_directions)
from . import _lloyd
from ._collective import Collective


def gather_sample(comm: Collective, x, w, rows: torch.Tensor, offset: int, counts):
    """(rows of x, their weights) at the sorted global indices `rows`, on every rank, in global order."""
    starts = [sum(counts[:r]) for r in range(len(counts))]
    per_rank = [int(((rows >= s) & (rows < s + c)).sum()) for s, c in zip(starts, counts)]
    mine = rows[(rows >= offset) & (rows < offset + x.shape[0])] - offset
    mine = mine.to(x.device)
    return (comm.gather_rows(x.index_select(0, mine), per_rank),
            comm.gather_rows(w.index_select(0, mine), per_rank))


def seeds(comm: Collective, backend: ModuleType, x, w, k: int, *, seed: int, n_local_trials: int, init: str,
          offset: int, counts) -> torch.Tensor:
    """(k, D) greedy K-Means++ seeds, the same on every rank."""
    uniforms = draw_uniforms(1 + (k - 1) * n_local_trials, seed)
    rows = subsample_rows(sum(counts), k, seed) if init != "k-means++" else None
    if rows is None:
        return kmeanspp(comm, x, w, k, uniforms, n_local_trials, offset)
    sample_x, sample_w = gather_sample(comm, x, w, rows, offset, counts)
    picked = backend.kmeanspp_seed(sample_x, sample_w, k, uniforms.to(x.device), n_local_trials)
    return sample_x.index_select(0, comm.broadcast(picked))


def _draw(comm: Collective, x, mass: torch.Tensor, uniforms: torch.Tensor, offset: int) -> torch.Tensor:
    """(T, D + 1) float64: for each uniform u, the first global row whose cumulative `mass`
    exceeds u times the total, then its global index; every rank gets every row."""
    n, d = x.shape
    cumulative = mass.cumsum(0)
    mine = torch.zeros(comm.size, dtype=torch.float64, device=x.device)
    mine[comm.rank] = cumulative[-1] if n else 0.0
    totals = comm.sum(mine).cpu()
    starts = torch.cumsum(totals, 0) - totals
    targets = uniforms.cpu() * float(totals.sum())
    out = torch.zeros(uniforms.numel(), d + 1, dtype=torch.float64, device=x.device)
    holding = (totals > 0).nonzero().flatten()
    for t, target in enumerate(targets.tolist()):
        ends = (starts + totals)[holding]
        # The first rank whose mass runs past the target (rounding: the last rank holding any).
        owner = int(holding[min(int((ends <= target).sum()), holding.numel() - 1)])
        if owner != comm.rank:
            continue
        local = torch.tensor([target - float(starts[owner])], dtype=torch.float64, device=x.device)
        i = min(int(torch.searchsorted(cumulative, local, right=True)), n - 1)
        out[t, :d] = x[i].double()
        out[t, d] = offset + i
    return comm.sum(out)


def kmeanspp(comm: Collective, x, w, k: int, uniforms: torch.Tensor, n_local_trials: int, offset: int):
    """Greedy K-Means++ (csrc/ops.h's kmeanspp_seed) over every rank's rows: (k, D) centres."""
    n, d = x.shape
    wd = w.double()
    nearest = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
    chosen = torch.zeros(n, dtype=torch.bool, device=x.device)
    x_norms = x.pow(2).sum(dim=1)
    centres = x.new_empty(k, d)

    def any_anywhere(mask) -> bool:
        return float(comm.sum(mask.sum().double().reshape(1))) > 0

    def mass_to_draw(mass):
        # No mass left (duplicates, zero weights): uniform over the rows not chosen, positive weight first.
        if any_anywhere(mass > 0):
            return mass
        free = ~chosen & (w > 0)
        return (free if any_anywhere(free) else ~chosen).double()

    def distances(candidates):
        c = candidates.to(x.dtype)
        return torch.addmm(x_norms[:, None] + c.pow(2).sum(dim=1)[None, :], x, c.T, alpha=-2).clamp_min_(0).double()

    def take(row):
        index = int(row[d]) - offset
        if 0 <= index < n:
            chosen[index] = True
            nearest[index] = 0.0
        return row[:d].to(x.dtype)

    first = _draw(comm, x, mass_to_draw(wd), uniforms[:1], offset)[0]
    centres[0] = take(first)
    nearest = torch.minimum(nearest, distances(first[None, :d])[:, 0])
    nearest[chosen] = 0.0
    for j in range(1, k):
        trials = uniforms[1 + (j - 1) * n_local_trials: 1 + j * n_local_trials]
        candidates = _draw(comm, x, mass_to_draw(wd * nearest), trials, offset)
        to_candidates = distances(candidates[:, :d])
        for t, index in enumerate(candidates[:, d].tolist()):
            if 0 <= int(index) - offset < n:
                to_candidates[int(index) - offset, t] = 0.0
        potentials = comm.sum((wd[:, None] * torch.minimum(nearest[:, None], to_candidates)).sum(dim=0))
        best = int(torch.argmin(potentials))  # ties: the earlier candidate
        nearest = torch.minimum(nearest, to_candidates[:, best])
        centres[j] = take(candidates[best])
    return centres


def projected_start(comm: Collective, backend: ModuleType, x, w, start, *, seed: int, tol: float, offset: int,
                    counts, label_tol: float = 0.0) -> torch.Tensor:
    """warm_start.projected_lloyd_start over sharded rows: `start` refined on the projection."""
    total, d = sum(counts), x.shape[1]
    q = min(PROJECTION_DIMS, d)
    rows = covariance_rows(total, seed)
    if rows is None:  # a pool of at most COVARIANCE_ROWS rows
        rows = torch.arange(total)
    sample_x, sample_w = gather_sample(comm, x, w, rows, offset, counts)
    found = weighted_principal_directions(sample_x, sample_w, q, MIN_VARIANCE_SHARE)
    packed = torch.full((d + d * q + 1,), -1.0, dtype=torch.float64, device=x.device)
    if found is not None and found[1] is not None:
        packed[:d], packed[d:-1], packed[-1] = found[0].double(), found[1].double().flatten(), found[2]
    packed = comm.broadcast(packed)
    if float(packed[-1]) < MIN_VARIANCE_SHARE:
        return start
    mean, directions = packed[:d].to(x.dtype), packed[d:-1].view(d, q).to(x.dtype)
    shift = mean @ directions
    projected = torch.addmm(shift, x, directions, beta=-1).contiguous()
    projected_start_ = torch.addmm(shift, start, directions, beta=-1).contiguous()
    tol_abs = _lloyd.mean_feature_variance(comm, projected, total) * tol
    _, labels, _, _ = _lloyd.lloyd(comm, backend, projected, w, projected_start_, max_iter=PROJECTED_MAX_ITER,
                                   tol=tol_abs, offset=offset, label_tol=label_tol)
    del projected
    return _lloyd.cluster_means(comm, x, w, labels, start)[0]
