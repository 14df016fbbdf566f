"""Distinct nearest points of the centroids over sharded rows (csrc/ops.h's nearest_points).

The one-process op serves the centroids in order, each taking its nearest
row by (distance, index) that is neither excluded nor taken, with distances
ranked as ||x||^2 - 2 x.c + ||c||^2 (a float GEMM, the rest in double,
clamped at 0). Here every rank ranks its rows by the same expression, lists
each centroid's `width` first available rows in (distance, global index)
order, and the gathered lists are resolved the same way on every rank.

A rank's list says nothing of its unlisted rows except that each comes
after the list's last entry. So a centroid's pick (the first listed row not
taken) is final only if it comes before the last entry of every rank that
has unlisted rows; otherwise such a rank may hold a nearer free row, and a
new round starts from that centroid: every rank drops the rows taken so far
and lists again, with longer lists. The centroid that stopped the round
then gets the first of the new lists, which is final, so every round serves
at least one centroid; the lists grow fourfold per round, so rounds stay
few even when the budget nears the rows left.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from ._collective import Collective

FIRST_WIDTH = 8
#: Entries (centroids x width) a rank lists in one round, and elements of one
#: distance tile: the centroids of a round and the rows of a tile shrink so that
#: neither the gathered lists nor a tile outgrow a few tens of MB.
_LIST_ENTRIES = 1 << 21
_TILE_ENTRIES = 1 << 22
_MAX_TILE_ROWS = 4096


def ranking_distances(centroids: torch.Tensor, centroids_sq: torch.Tensor, rows: torch.Tensor,
                      rows_sq: torch.Tensor) -> torch.Tensor:
    """(k, m) float64 squared distances as the op ranks them: (||x||^2 + ||c||^2) - 2 x.c,
    the dot products from a GEMM in the rows' dtype, the rest in double, clamped at 0."""
    d = centroids_sq[:, None] + rows_sq[None, :]
    return d.sub_((centroids @ rows.T).double(), alpha=2.0).clamp_min_(0.0)


def _first_in_order(dist: torch.Tensor, index: torch.Tensor, width: int):
    """The `width` first (distance, index) pairs of each row (whose entries are in no order)."""
    by_index = index.sort(dim=1, stable=True).indices
    dist, index = dist.gather(1, by_index), index.gather(1, by_index)
    by_dist = dist.sort(dim=1, stable=True).indices[:, :width]
    return dist.gather(1, by_dist), index.gather(1, by_dist)


def local_lists(x, centroids, available, width: int, offset: int):
    """(k + 1, 2 * width) float64: for each centroid, this rank's `width` first available rows
    by (ranking distance, global index), as distances then global indices (missing entries
    (inf, -1)); the last row holds this rank's number of available rows in its first entry."""
    k = centroids.shape[0]
    best_d = torch.full((k, width), math.inf, dtype=torch.float64, device=x.device)
    best_i = torch.full((k, width), -1, dtype=torch.long, device=x.device)
    c_sq = centroids.double().pow(2).sum(dim=1)
    tile_rows = max(1, min(_MAX_TILE_ROWS, _TILE_ENTRIES // max(k, 1)))
    for start in range(0, x.shape[0], tile_rows):
        rows = x[start:start + tile_rows]
        # Centroids by rows: topk along the contiguous dimension is 3x faster.
        d = ranking_distances(centroids, c_sq, rows, rows.double().pow(2).sum(dim=1))
        free = available[start:start + tile_rows]
        if not bool(free.all()):
            d.masked_fill_(~free[None, :], math.inf)
        take = min(width, rows.shape[0])
        values, where = d.topk(min(take + 1, rows.shape[0]), dim=1, largest=False)
        # topk keeps an arbitrary subset of the rows tied at its last value: where the
        # next row ties with it too, take the tile in (distance, row) order instead.
        if values.shape[1] > take:
            tied = torch.isfinite(values[:, take - 1]) & (values[:, take] == values[:, take - 1])
            values, where = values[:, :take], where[:, :take]
            if bool(tied.any()):
                where = torch.where(tied[:, None], d.sort(dim=1, stable=True).indices[:, :take], where)
                values = d.gather(1, where)
        rows_i = torch.where(torch.isfinite(values), where + (start + offset), torch.full_like(where, -1))
        best_d, best_i = _first_in_order(torch.cat([best_d, values], dim=1), torch.cat([best_i, rows_i], dim=1),
                                         width)
    count = torch.zeros(1, 2 * width, dtype=torch.float64, device=x.device)
    count[0, 0] = float(available.sum())
    return torch.cat([torch.cat([best_d, best_i.double()], dim=1), count])


def nearest_points(comm: Collective, x, centroids, keep: Optional[torch.Tensor], offset: int) -> torch.Tensor:
    """int64 (k,) distinct global row indices, the same on every rank."""
    k, n = centroids.shape[0], x.shape[0]
    available = torch.ones(n, dtype=torch.bool, device=x.device) if keep is None else keep.clone()
    picks = np.full(k, -1, dtype=np.int64)
    first, width = 0, FIRST_WIDTH
    while first < k:
        listed = max(1, min(k - first, _LIST_ENTRIES // width))
        lists = comm.gather_rows(local_lists(x, centroids[first:first + listed], available, width, offset),
                                 [listed + 1] * comm.size)
        lists = lists.view(comm.size, listed + 1, 2 * width).cpu().numpy()
        counts = lists[:, listed, 0]
        served = _resolve(lists[:, :listed], counts, width)
        picks[first:first + len(served)] = served
        if not served and not bool((counts > width).any()):
            raise RuntimeError("nearest_points: no row left to pick (budget larger than the available rows?)")
        first += len(served)
        if len(served) < listed:  # stopped at a centroid that may have a nearer unlisted row
            width = max(1, min(width * 4, int(counts.max())))
        # Rows taken are never listed again.
        mine = [i - offset for i in served if offset <= i < offset + n]
        if mine:
            available[torch.tensor(mine, dtype=torch.long, device=x.device)] = False
    return torch.from_numpy(picks)


def _resolve(lists: np.ndarray, counts: np.ndarray, width: int) -> list:
    """The picks of the listed centroids (lists: ranks x centroids x 2 width), in order, up to
    the first centroid whose pick is not final."""
    leaving_out = [r for r in range(lists.shape[0]) if counts[r] > width]  # ranks with unlisted rows
    served, taken = [], set()
    for j in range(lists.shape[1]):
        dist = lists[:, j, :width].reshape(-1)
        index = lists[:, j, width:].reshape(-1).astype(np.int64)
        pick = None
        for position in np.lexsort((index, dist)):
            i = int(index[position])
            if i >= 0 and i not in taken:
                pick = (float(dist[position]), i)
                break
        if pick is None:
            return served
        # Such a rank's unlisted rows all come after its last listed one.
        if any(pick > (float(lists[r, j, width - 1]), int(lists[r, j, 2 * width - 1])) for r in leaving_out):
            return served
        served.append(pick[1])
        taken.add(pick[1])
    return served
