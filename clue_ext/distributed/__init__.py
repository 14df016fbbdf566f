"""CLUE selection over a pool sharded across the ranks of a torch.distributed group.

    torch.distributed.init_process_group("gloo")   # "nccl" with features on GPUs
    picks = clue_ext.distributed.select(my_features, my_probs, budget=1000, seed=0)

Every rank passes its own rows; rank r's rows are numbered after those of
ranks < r, and every rank gets the same global indices back. With one rank
it is clue_ext.select. See `python -m clue_ext.select` for the command line.
"""

from __future__ import annotations

import time
import warnings
from typing import Callable, NamedTuple, Optional

import torch

from .. import _magnitude
from .._precision import full_float32_matmuls
from ..kmeans import DEFAULT_INIT, default_local_trials
from ..selection import select_with
from ..warm_start import worth_projecting
from . import _lloyd, _nearest, _seeding
from ._agreement import Shard, agree
from ._collective import Collective, CollectiveError

__all__ = ["select", "Collective", "CollectiveError"]


def select(
    features,
    probs,
    budget: int,
    *,
    group=None,
    temperature: float = 1.0,
    seed: Optional[int] = None,
    exclude=None,
    init: str = DEFAULT_INIT,
    max_iter: int = 300,
    tol: float = 1e-4,
    weighting: str = "entropy",
    progress: Optional[Callable[[str], None]] = None,
    label_tol: Optional[float] = None,
) -> torch.Tensor:
    """Picks `budget` distinct rows of the pool formed by every rank's `features`, by CLUE.

    Call it on every rank of `group` (default: the default process group),
    with the same arguments except `features` and `probs`.

    Args:
        features: (n_r, D) this rank's embeddings (n_r may be 0), as in
            :func:`clue_ext.select`; the same D and dtype on every rank.
        probs: (n_r, C) this rank's predicted class probabilities.
        budget, temperature, init, max_iter, tol, weighting, label_tol: as in :func:`clue_ext.select`.
        seed: as in :func:`clue_ext.select`; None uses one drawn on rank 0.
        exclude: global row indices, or a bool mask over every rank's rows,
            never to pick (the same on every rank).
        group: the process group; collectives run on the features' device
            for NCCL (the current CUDA device when the features are not on
            one), on the CPU for gloo.
        progress: called with a line at each stage (e.g. ``print`` on rank 0).

    Returns:
        int64 CPU tensor of `budget` distinct global row indices, the same on every rank.

    As in :func:`clue_ext.select`, inputs that require grad are read as values,
    and features whose squared distances would leave their dtype's range are
    multiplied by a power of two, the same on every rank (from the largest
    value of any rank), so the picks are one process's.

    Raises:
        ValueError/TypeError: on every rank, when the input of any rank is
            bad (naming the rank), or when the ranks disagree on an argument.
        CollectiveError: when a rank dies or does not join a collective
            before the group's timeout.
    """
    from .. import ops

    device = features.device if isinstance(features, torch.Tensor) else torch.device("cpu")
    comm = Collective(group, device=device)
    with full_float32_matmuls(device):
        shard = agree(comm, features, probs, budget, temperature=temperature, seed=seed, exclude=exclude,
                      init=init, max_iter=max_iter, tol=tol, weighting=weighting, label_tol=label_tol)
        if comm.size == 1:
            return select_with(ops, shard.x, shard.probs, shard.budget, temperature=shard.temperature,
                               seed=shard.seed, exclude=None if shard.keep is None else ~shard.keep,
                               max_iter=shard.max_iter, tol=shard.tol, init=shard.init,
                               weighting=shard.weighting, label_tol=shard.label_tol).cpu()
        return select_sharded(comm, ops, shard, progress).picks


class ShardedRun(NamedTuple):
    """What select_sharded did: the picks, Lloyd's iterations and weighted objective (over every
    rank), the bytes this rank sent, and the seconds of each stage."""

    picks: torch.Tensor
    n_iter: int
    inertia: float
    bytes_sent: int
    seconds: dict


def _sharded_weights(comm: Collective, shard: Shard) -> torch.Tensor:
    """selection.select_with's weights over every rank's rows: excluded rows weigh 0, and the
    weights are multiplied by the power of two that _magnitude.normalized_weights would choose
    for the largest weight of any rank; uniform (over the rows kept) if every weight is 0."""
    w = shard.weights if shard.keep is None else shard.weights * shard.keep.double()
    mine = torch.zeros(comm.size, dtype=torch.float64, device=w.device)
    mine[comm.rank] = _magnitude.max_abs(w)
    largest = float(comm.sum(mine).max())
    if largest > 0:
        return _magnitude.scaled_by_power_of_two(w, _magnitude.weight_exponent(largest)).to(shard.x.dtype)
    warnings.warn("every sample weight is zero (a fully confident model?): falling back to uniform weights",
                  RuntimeWarning, stacklevel=3)
    ones = torch.ones_like(w, dtype=shard.x.dtype)
    return ones if shard.keep is None else ones * shard.keep.to(ones.dtype)


def select_sharded(comm: Collective, backend, shard: Shard, progress=None) -> ShardedRun:
    """The sharded pipeline on agreed input (any world size, also 1)."""
    say = progress or (lambda line: None)
    x, k, seconds = shard.x, shard.budget, {}
    clock = time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    w = _sharded_weights(comm, shard)
    say(f"seeding {k} centres ({shard.init}) over {shard.total} rows on {comm.size} ranks")
    start = _seeding.seeds(comm, backend, x, w, k, seed=shard.seed, n_local_trials=default_local_trials(k),
                           init=shard.init, offset=shard.offset, counts=shard.counts)
    lap("seeding")
    if shard.init == "fast" and k > 1 and shard.max_iter > 0 and worth_projecting(x.shape[1], k):
        say("warm start on the projection")
        start = _seeding.projected_start(comm, backend, x, w, start, seed=shard.seed, tol=shard.tol, label_tol=shard.label_tol,
                                         offset=shard.offset, counts=shard.counts)
    lap("warm start")
    say("Lloyd")
    tol_abs = _lloyd.mean_feature_variance(comm, x, shard.total) * shard.tol if shard.tol > 0 else 0.0
    centroids, _, sq_dists, n_iter = _lloyd.lloyd(comm, backend, x, w, start, max_iter=shard.max_iter,
                                                  tol=tol_abs, offset=shard.offset, progress=progress,
                                                  label_tol=shard.label_tol)
    inertia = float(comm.sum((w.double() * sq_dists.double()).sum().reshape(1)))
    lap("lloyd")
    say(f"Lloyd: {n_iter} iterations; nearest points")
    picks = _nearest.nearest_points(comm, x, centroids, shard.keep, shard.offset)
    lap("nearest points")
    return ShardedRun(picks, n_iter, inertia, comm.bytes_sent, seconds)
